"""A node: one ActorSystem's side of the distribution protocol.

Local actors reach remote ones through ``RemoteRef`` (a kind of
``ActorRef``); links and monitors across nodes go through proxies that
implement the core's ``Peer`` protocol, so the core treats a remote actor
like a local one. When the connection to a node is lost, every link and
monitor across it fires with ``"noconnection"`` and every call waiting on
it fails, as in Erlang.
"""

from __future__ import annotations

import collections
import itertools
import secrets
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

from .._core import (
    CALLER_TYPES,
    ActorExited,
    ActorRef,
    ActorSystem,
    Caller,
    LocalRef,
    MailboxFull,
    Monitor,
    NoProcess,
    Peer,
    deliver_call,
    deliver_state_request,
    deliver_stop,
    find_actor,
    get_logger,
    new_caller,
)
from ._backlog import NodeStatistics, _Inbox
from ._codec import Codec, DecodeError
from ._messages import (
    WIRE_MESSAGES,
    Address,
    CallMsg,
    CancelMsg,
    DemonitorMsg,
    DownMsg,
    ExitMsg,
    FailMsg,
    GetStateMsg,
    LinkMsg,
    MonitorMsg,
    ReplyMsg,
    SendMsg,
    StopMsg,
    TickMsg,
    UnlinkMsg,
)
from ._ref_encoding import RefEncoding
from ._registry import default_registry
from ._remote import (
    NodeUnreachable,
    RemoteRef,
    _local_id,
    _RefState,
    _RemoteCaller,
    _RemotePeer,
    _RemoteWatcher,
)
from ._ticks import DEFAULT_TICK_TIME, Ticker
from ._transport import ReceiveBackpressure, ReportsRefusals, Transport

log = get_logger("genstatem.net")

MAX_PEER_ENTRIES = 100_000
"""The most monitors one peer may hold on this node's actors, and the most of its actors linked to them.

Past it a monitor is answered at once with ``Down`` and a link with an exit,
both with reason ``"system_limit"`` (Erlang's word for a limit reached), so
no peer, authenticated or not, can grow this node's tables without bound.
``Node.max_peer_entries`` changes it for one node.
"""

_LOGGED_COUNTS = frozenset(10**power for power in range(12))  # the 1st, 10th, 100th... of a kind

_REF_TYPE_ID = 100
_REMOTE_REF_TYPE_ID = 101
_CALLER_TYPE_ID = 102


class Node(RefEncoding):
    """Runs the distribution protocol for one ``ActorSystem`` over a transport.

    It is the system's ``Distribution``: built by a network's ``attach``.

    Args:
        creation: this incarnation's number, carried in every ref by id; by
            default random, so a node restarted in a new OS process differs.
        tick_time: seconds a connected node may be silent before it is
            declared down (``"noconnection"``); ``None`` never (``_ticks.py``).
    """

    def __init__(
        self,
        system: ActorSystem,
        transport: Transport,
        codec: Codec,
        *,
        creation: int | None = None,
        tick_time: float | None = DEFAULT_TICK_TIME,
    ) -> None:
        self.system = system
        self.name: str = system.node
        self.transport = transport
        self.codec = codec
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[Address, Caller]] = {}
        self._exported: weakref.WeakValueDictionary[int, Caller] = weakref.WeakValueDictionary()
        self._export_ids: weakref.WeakKeyDictionary[Caller, int] = weakref.WeakKeyDictionary()
        self._peers: dict[tuple[str, int | None, Any], _RemotePeer] = {}
        self._watching: dict[int, tuple[_RemotePeer, Monitor, Peer]] = {}
        self._watchers: dict[str, dict[int, tuple[Peer, Monitor]]] = {}  # peer -> its monitor id -> local target
        self._proxies: collections.Counter[str] = collections.Counter()  # peer -> proxies of its actors in _peers
        self.max_peer_entries = MAX_PEER_ENTRIES
        self._refusals: collections.Counter[str] = collections.Counter()
        self._exit_waiters: dict[int, tuple[str, Caller]] = {}
        # This incarnation of the node, carried in every ref by id it hands out.
        self.creation: int = secrets.randbits(32) if creation is None else creation
        # The local refs sent to other nodes, so one that comes home is the same ref, even once its actor is gone.
        self._sent_refs: weakref.WeakValueDictionary[int, ActorRef] = weakref.WeakValueDictionary()
        # Nodes whose connection was lost and not made again; of those, the ones a connect to failed since.
        self._down: set[str] = set()
        self._unreachable_nodes: set[str] = set()
        self._checking_down: set[str] = set()
        self._ref_states: weakref.WeakValueDictionary[Address, _RefState] = weakref.WeakValueDictionary()
        self._incoming: dict[tuple[str, int], _RemoteCaller] = {}
        self._inboxes: dict[str, _Inbox] = {}
        self._charging = False  # only a transport that asks for the backlog needs it counted
        self.ticker = Ticker(
            system, tick_time, send_tick=lambda peer: self.send_to(peer, TickMsg()), disconnect=transport.disconnect
        )
        self._register_codec()

    # -- set-up ------------------------------------------------------------------

    def _register_codec(self) -> None:
        for type_id, cls in enumerate(WIRE_MESSAGES, start=1):
            self.codec.register(cls, type_id)
        self.codec.register_custom(LocalRef, _REF_TYPE_ID, self._encode_ref, self._decode_ref)
        self.codec.register_custom(RemoteRef, _REMOTE_REF_TYPE_ID, self._encode_ref, self._decode_ref)
        for offset, caller_type in enumerate(_caller_types()):
            self.codec.register_custom(caller_type, _CALLER_TYPE_ID + offset, self._encode_caller, self._decode_caller)

    @classmethod
    async def join(
        cls,
        system: ActorSystem,
        transport: Transport,
        *,
        max_size: int | None = None,
        creation: int | None = None,
        tick_time: float | None = DEFAULT_TICK_TIME,
    ) -> Node:
        """Put ``system`` on a network through ``transport``: what a network's ``attach`` does.

        Builds the node's codec (genstatem's types and those of the default
        registry), the node, and starts the transport.

        Args:
            system: the system joining, as ``system.node``.
            transport: its endpoint on the network.
            max_size: the largest message the codec encodes or decodes, in
                bytes; ``None`` for the codec's default.
            creation: this incarnation's number, carried in every ref it hands
                out; random by default (the simulator counts them, to replay).
            tick_time: seconds a connected node may be silent before it is
                declared down; ``None`` never.
        """
        codec = Codec() if max_size is None else Codec(max_size=max_size)
        default_registry.install(codec)
        node = cls(system, transport, codec, creation=creation, tick_time=tick_time)
        await node.start()
        return node

    async def start(self) -> None:
        if isinstance(self.transport, ReceiveBackpressure):
            self.transport.watch_backlog(self.backlog)
            self._charging = True
        if isinstance(self.transport, ReportsRefusals):
            self.transport.watch_refusals(self.on_peer_refused)
        await self.transport.start(self.name, self.on_frame, self.on_peer_up, self.on_peer_down)

    async def stop(self) -> None:
        self.ticker.stop()
        await self.transport.stop()

    def statistics(self) -> NodeStatistics:
        """The size of the node's tables now: for tests, dashboards and the soak script."""
        backlog = sum(inbox.settle() for inbox in self._inboxes.values())
        return NodeStatistics(
            pending_calls=len(self._pending),
            incoming_calls=len(self._incoming),
            remote_actors=len(self._peers),
            monitors=len(self._watching) + sum(map(len, self._watchers.values())) + len(self._exit_waiters),
            remote_refs=len(self._ref_states),
            backlog_bytes=backlog,
        )

    # -- refs --------------------------------------------------------------------

    def remote_ref(self, node: str, name: Any) -> ActorRef:
        """A ref to the actor registered as ``name`` on ``node``."""
        if node == self.name:
            local = self.system.whereis(name)
            if local is not None:
                return local
        return RemoteRef(self, Address(node, None, name))

    def peer(self, ref: ActorRef) -> Peer:
        """The proxy this system's links and monitors talk to for the remote actor ``ref``."""
        if not isinstance(ref, RemoteRef):
            raise TypeError(f"{ref!r} is not a ref to an actor on another node")
        return self.peer_for(ref)

    def ref_state(self, address: Address) -> _RefState:
        """The state shared by the refs to ``address``; kept only while one of them is."""
        state = self._ref_states.get(address)
        if state is None:
            state = self._ref_states[address] = _RefState()
        return state

    def believes_alive(self, address: Address) -> bool:
        state = self._ref_states.get(address)
        return state is None or not state.dead

    def _mark_dead(self, address: Address) -> None:
        """Remember an actor id is gone; a name is not: another actor may take it."""
        if address.pid is not None:
            state = self._ref_states.get(address)
            if state is not None:
                state.dead = True

    def release(self, remote: _RemotePeer) -> None:
        """Forget the proxy ``remote`` once no local actor is linked to it or monitors through it."""
        if not remote.linked and not remote.monitors:
            address = remote.address
            key = (address.node, address.pid, address.name)
            if self._peers.get(key) is remote:
                del self._peers[key]
                self._proxies[address.node] -= 1

    def forget_incoming(self, peer: str, call_id: int, caller: _RemoteCaller) -> None:
        """The call ``call_id`` from ``peer`` is answered or given up: stop tracking it."""
        if self._incoming.get((peer, call_id)) is caller:
            del self._incoming[(peer, call_id)]

    def peer_for(self, ref: RemoteRef) -> _RemotePeer:
        key = (ref._address.node, ref._address.pid, ref._address.name)
        peer = self._peers.get(key)
        if peer is None:
            peer = self._peers[key] = _RemotePeer(self, ref._address)
            self._proxies[ref._address.node] += 1
        return peer

    # -- sending -----------------------------------------------------------------

    def send(self, message: SendMsg) -> None:
        self.send_to(message.to.node, message)

    def send_to(self, node: str, message: Any) -> None:
        """Encode ``message`` (``EncodeError`` here, at the sender) and hand it to the transport."""
        frame = self.codec.encode(message)
        if node == self.name:
            self.on_frame(node, frame)
            return
        if not self.transport.send(node, frame):
            log.warning("send buffer full; message dropped", peer=node, message=type(message).__name__)
        self.ticker.sent(node)
        if node in self._unreachable_nodes:
            self.on_connect_failed(node)  # the last connect failed: so does this send, unless one is made now

    async def request(self, address: Address, build: Callable[[int], Any], timeout: float | None) -> Any:
        """Send a message that expects an answer, and wait for it."""
        call_id = next(self._ids)
        caller = new_caller(self.system)
        self._pending[call_id] = (address, caller)
        try:
            self.send_to(address.node, build(call_id))
            return await caller.wait(timeout)
        except NoProcess:
            self._mark_dead(address)
            raise
        finally:
            if self._pending.pop(call_id, None) is not None and address.node != self.name:
                # Timed out or cancelled, with the connection still up: the callee may forget it.
                # Best effort: a full buffer or a stopped transport drops it, and the peer's
                # going (``on_peer_down``) makes the callee forget it anyway.
                self.transport.send(address.node, self.codec.encode(CancelMsg(call_id)))

    def watch(self, peer: _RemotePeer, monitor: Monitor, watcher: Peer) -> int:
        monitor_id = next(self._ids)
        self._watching[monitor_id] = (peer, monitor, watcher)
        self.send_to(peer.address.node, MonitorMsg(_local_id(watcher), peer.address, monitor_id))
        return monitor_id

    def unwatch(self, node: str, monitor_id: int) -> None:
        if self._watching.pop(monitor_id, None) is not None:
            self.send_to(node, DemonitorMsg(monitor_id))

    def forget_watcher(self, peer: str, monitor_id: int) -> None:
        watchers = self._watchers.get(peer)
        if watchers is not None:
            watchers.pop(monitor_id, None)
            if not watchers:
                del self._watchers[peer]

    async def wait_exit(self, address: Address) -> Any:
        monitor_id = next(self._ids)
        caller = new_caller(self.system)
        self._exit_waiters[monitor_id] = (address.node, caller)
        try:
            self.send_to(address.node, MonitorMsg(0, address, monitor_id))
            return await caller.wait(None)
        finally:
            self._exit_waiters.pop(monitor_id, None)

    # -- receiving ---------------------------------------------------------------

    def backlog(self, peer: str) -> int:
        """Bytes of the frames from ``peer`` whose messages still wait in local mailboxes (at most)."""
        inbox = self._inboxes.get(peer)
        return 0 if inbox is None else inbox.settle()

    def on_frame(self, peer: str, frame: bytes) -> None:
        self.ticker.heard(peer)
        try:
            message = self.codec.decode(frame)
        except DecodeError as exc:
            log.warning("undecodable message dropped; closing the connection", peer=peer, reason=str(exc))
            self.transport.disconnect(peer)
            return
        handler = self._handlers.get(type(message))
        if handler is None:
            log.warning("unexpected message dropped; closing the connection", peer=peer, type=type(message).__name__)
            self.transport.disconnect(peer)
            return
        target = handler(self, peer, message)
        if target is not None and self._charging and peer != self.name:
            inbox = self._inboxes.get(peer)
            if inbox is None:
                inbox = self._inboxes[peer] = _Inbox()
            inbox.charge(target, len(frame))

    # Each handler returns the local actor whose mailbox it put a message in, if any.

    def _target(self, address: Address) -> LocalRef | None:
        if address.node != self.name:
            return None
        if address.creation is not None and address.creation != self.creation:
            return None  # an actor of an earlier incarnation of this node: gone, whoever has its id now
        if address.pid is not None:
            return find_actor(self.system, address.pid)
        return self.system.whereis(address.name)

    def _on_send(self, peer: str, message: SendMsg) -> LocalRef | None:
        target = self._target(message.to)
        if target is not None:
            if message.info:
                target.send(message.msg)
            else:
                target.cast(message.msg)
        return target

    def _on_call(self, peer: str, message: CallMsg) -> LocalRef | None:
        return self._deliver_request(
            peer, message.to, message.call_id, lambda ref, caller: deliver_call(ref, caller, message.request)
        )

    def _on_get_state(self, peer: str, message: GetStateMsg) -> LocalRef | None:
        return self._deliver_request(peer, message.to, message.call_id, deliver_state_request)

    def _deliver_request(
        self, peer: str, to: Address, call_id: int, deliver: Callable[[LocalRef, Caller], bool]
    ) -> LocalRef | None:
        """Deliver a request that expects an answer to a local actor, or answer ``noproc``."""
        target = self._target(to)
        caller = _RemoteCaller(self, peer, call_id, target)
        if target is None or not deliver(target, caller):
            self.send_to(peer, FailMsg(call_id, "noproc"))
            return None
        if peer != self.name:
            self._incoming[(peer, call_id)] = caller
        return target

    def _on_cancel(self, peer: str, message: CancelMsg) -> None:
        caller = self._incoming.pop((peer, message.call_id), None)
        if caller is not None:
            caller.forget()

    def _on_stop(self, peer: str, message: StopMsg) -> LocalRef | None:
        target = self._target(message.to)
        waiter = _RemoteCaller(self, peer, message.call_id, None, exit_waiter=True)
        if target is None or not deliver_stop(target, message.reason, waiter):
            self.send_to(peer, FailMsg(message.call_id, "noproc"))
            return None
        return target

    def _on_reply(self, peer: str, message: ReplyMsg) -> None:
        pending = self._pending.pop(message.call_id, None)
        caller = pending[1] if pending is not None else self._exported.pop(message.call_id, None)
        if caller is not None:
            caller.resolve(message.value)

    def _on_fail(self, peer: str, message: FailMsg) -> None:
        pending = self._pending.pop(message.call_id, None)
        if pending is None:
            return
        if message.kind == "noproc":
            pending[1].fail(NoProcess("the actor is not alive on its node"))
        elif message.kind == "mailbox_full":
            limit = message.reason if type(message.reason) is int else 0
            pending[1].fail(MailboxFull(RemoteRef(self, pending[0]), limit))
        else:
            pending[1].fail(ActorExited(message.reason))

    def _local_peer(self, address: Address) -> Peer | None:
        target = self._target(address)
        return None if target is None else self.system.peer(target)

    def _on_link(self, peer: str, message: LinkMsg) -> None:
        if (peer, message.from_pid, None) not in self._peers and self._proxies[peer] >= self.max_peer_entries:
            self._over_limit(peer, "linked actors")
            self.send_to(peer, ExitMsg(message.to, Address(peer, message.from_pid), "system_limit", linked=False))
            return
        remote = self._peer(peer, message.from_pid)
        local = self._local_peer(message.to)
        if local is None or not local.accept_link(remote):
            self.send_to(peer, ExitMsg(message.to, Address(peer, message.from_pid), "noproc", linked=False))
            self.release(remote)
            return
        remote.linked[local] = None

    def _on_unlink(self, peer: str, message: UnlinkMsg) -> None:
        local = self._local_peer(message.to)
        if local is not None:
            remote = self._peer(peer, message.from_pid)
            remote.linked.pop(local, None)
            local.drop_link(remote)
            self.release(remote)

    def _on_exit(self, peer: str, message: ExitMsg) -> LocalRef | None:
        target = self._target(message.to)
        if target is None:
            return None
        local = self.system.peer(target)
        remote = self._linked_peer(local, message.sender)
        remote.linked.pop(local, None)
        if not message.linked:
            local.drop_link(remote)
        local.exit_signal(remote, message.reason, linked=message.linked)
        self.release(remote)
        return target  # an actor trapping exits gets it as a message

    def _linked_peer(self, local: Peer, sender: Address) -> _RemotePeer:
        """The proxy ``local`` knows ``sender`` by: linked by id, by a ref with id and name, or by registered name."""
        keys = [(sender.node, sender.pid, sender.name)]
        if sender.name is not None:
            keys.append((sender.node, None, sender.name))
        for key in keys:
            linked = self._peers.get(key)
            if linked is not None and local in linked.linked:
                return linked
        return self._peer(sender.node, sender.pid if sender.pid is not None else 0)

    def _on_monitor(self, peer: str, message: MonitorMsg) -> None:
        target = self._target(message.to)
        if target is None or not target.alive:
            self.send_to(peer, DownMsg(message.monitor_id, message.to, "noproc"))
            return
        watchers = self._watchers.setdefault(peer, {})
        if len(watchers) >= self.max_peer_entries:
            self._over_limit(peer, "monitors")
            self.send_to(peer, DownMsg(message.monitor_id, message.to, "system_limit"))
            return
        local = self.system.peer(target)
        monitor = Monitor(self.system.next_actor_id())
        local.accept_monitor(monitor, _RemoteWatcher(self, peer, message.monitor_id, target))
        watchers[message.monitor_id] = (local, monitor)

    def _over_limit(self, peer: str, what: str) -> None:
        """Log that ``peer`` reached ``max_peer_entries`` (the 1st, 10th, 100th... time)."""
        self._refusals[peer] += 1
        if self._refusals[peer] in _LOGGED_COUNTS:
            log.warning(
                "peer over its limit: refused with system_limit",
                node=self.name,
                peer=peer,
                what=what,
                limit=self.max_peer_entries,
                refusals=self._refusals[peer],
            )

    def _on_demonitor(self, peer: str, message: DemonitorMsg) -> None:
        watched = self._watchers.get(peer, {}).pop(message.monitor_id, None)
        if watched is not None:
            watched[0].drop_monitor(watched[1])

    def _on_down(self, peer: str, message: DownMsg) -> None:
        self._mark_dead(message.target)
        waiter = self._exit_waiters.pop(message.monitor_id, None)
        if waiter is not None:
            waiter[1].resolve(message.reason)
            return
        watching = self._watching.pop(message.monitor_id, None)
        if watching is not None:
            remote, monitor, watcher = watching
            remote.monitors.pop(monitor, None)
            self.release(remote)
            watcher.deliver_down(monitor, remote.ref, message.reason)

    def _on_tick(self, peer: str, message: TickMsg) -> None:
        """Nothing to do: that it arrived was the point (``on_frame`` took note)."""

    _handlers: ClassVar[dict[type, Callable[[Node, str, Any], LocalRef | None]]] = {
        SendMsg: _on_send,
        CallMsg: _on_call,
        GetStateMsg: _on_get_state,
        StopMsg: _on_stop,
        ReplyMsg: _on_reply,
        FailMsg: _on_fail,
        LinkMsg: _on_link,
        UnlinkMsg: _on_unlink,
        ExitMsg: _on_exit,
        MonitorMsg: _on_monitor,
        DemonitorMsg: _on_demonitor,
        DownMsg: _on_down,
        CancelMsg: _on_cancel,
        TickMsg: _on_tick,
    }

    def _peer(self, node: str, pid: int) -> _RemotePeer:
        key = (node, pid, None)
        peer = self._peers.get(key)
        if peer is None:
            peer = self._peers[key] = _RemotePeer(self, Address(node, pid))
            self._proxies[node] += 1
        return peer

    # -- connections ---------------------------------------------------------------

    def on_peer_up(self, peer: str) -> None:
        self._down.discard(peer)
        self._unreachable_nodes.discard(peer)
        self.ticker.up(peer)
        log.info("node connected", node=self.name, peer=peer)

    def on_peer_down(self, peer: str) -> None:
        """The connection to ``peer`` is lost: everything across it fires ``"noconnection"``."""
        log.warning("node connection lost", node=self.name, peer=peer)
        self.ticker.down(peer)
        self._down.add(peer)
        self._inboxes.pop(peer, None)
        for incoming in [incoming for incoming in self._incoming if incoming[0] == peer]:
            self._incoming.pop(incoming).forget()  # nobody is left to answer
        self._unreachable(peer, ActorExited("noconnection"))

    def on_peer_refused(self, peer: str, reason: str) -> None:
        """``peer`` refused the connection (the transport logged why): what waits on it fails now, naming why."""
        self._unreachable(peer, NodeUnreachable(peer, reason))

    def on_connect_failed(self, peer: str) -> None:
        """A transport's attempt to connect to ``peer`` failed (TCP: it redials in the background).

        For a node whose connection was lost, that is the answer to whatever
        waits on it: calls, monitors and links made since fail with
        ``"noconnection"`` now, as on the other networks and in Erlang,
        rather than waiting out their timeouts while the transport redials.
        """
        if peer in self._down and peer not in self._checking_down:
            self._checking_down.add(peer)
            self.system.call_later(0, lambda: self._still_down(peer))

    def _still_down(self, peer: str) -> None:
        """Fail what waits on ``peer`` if no connection was made since; later sends check again."""
        self._checking_down.discard(peer)
        if peer in self._down:
            self._unreachable_nodes.add(peer)
            self._unreachable(peer, ActorExited("noconnection"))

    def _unreachable(self, peer: str, lost: ActorExited) -> None:
        """Fail the calls waiting on ``peer`` with ``lost``; links and monitors across it fire ``"noconnection"``."""
        for call_id, (address, caller) in list(self._pending.items()):
            if address.node == peer:
                del self._pending[call_id]
                caller.fail(lost)
        for monitor_id, (node, caller) in list(self._exit_waiters.items()):
            if node == peer:
                del self._exit_waiters[monitor_id]
                caller.resolve("noconnection")
        for monitor_id, (remote, monitor, watcher) in list(self._watching.items()):
            if remote.address.node == peer:
                del self._watching[monitor_id]
                remote.monitors.pop(monitor, None)
                watcher.deliver_down(monitor, remote.ref, "noconnection")
        for key, remote in list(self._peers.items()):
            if remote.address.node == peer:
                del self._peers[key]
                self._proxies[peer] -= 1
                for local in list(remote.linked):
                    local.exit_signal(remote, "noconnection")
                remote.linked.clear()
        for local, monitor in self._watchers.pop(peer, {}).values():
            local.drop_monitor(monitor)


def _caller_types() -> list[type[Caller]]:
    """The reply handles a message may carry: the runtime's own, then remote ones.

    Every node must number them alike, so only genstatem's own classes count,
    in a fixed order; a reply handle of any other class cannot cross nodes.
    """
    return [*CALLER_TYPES, _RemoteCaller]
