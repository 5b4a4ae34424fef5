"""A node: one ActorSystem's side of the distribution protocol.

Local actors reach remote ones through ``RemoteRef`` (a kind of
``ActorRef``); links and monitors across nodes go through proxies that
implement the core's ``Peer`` protocol, so the core treats a remote actor
like a local one. When the connection to a node is lost, every link and
monitor across it fires with ``"noconnection"`` and every call waiting on
it fails, as in Erlang.
"""

from __future__ import annotations

import itertools
import reprlib
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
    CallTimeout,
    LocalRef,
    Monitor,
    NoProcess,
    Peer,
    call_timed_out,
    deliver_call,
    deliver_state_request,
    deliver_stop,
    find_actor,
    forget_caller,
    get_logger,
    new_caller,
)
from ._codec import Codec, DecodeError, EncodeError
from ._messages import (
    WIRE_MESSAGES,
    Address,
    CallMsg,
    DemonitorMsg,
    DownMsg,
    ExitMsg,
    FailMsg,
    GetStateMsg,
    LinkMsg,
    MonitorMsg,
    RemoteError,
    ReplyMsg,
    SendMsg,
    StopMsg,
    TickMsg,
    UnlinkMsg,
)
from ._registry import default_registry
from ._ticks import DEFAULT_TICK_TIME, Ticker
from ._transport import Transport

log = get_logger("genstatem.net")

_REF_TYPE_ID = 100
_REMOTE_REF_TYPE_ID = 101
_CALLER_TYPE_ID = 102


def wire_reason(reason: Any) -> Any:
    """An exit reason as data: exceptions become :class:`RemoteError`."""
    if isinstance(reason, BaseException):
        return RemoteError(type(reason).__qualname__, str(reason))
    return reason


def _describe(value: Any) -> str:
    try:
        return _SHORT.repr(value)
    except Exception as exc:  # a broken __repr__ must not stop the caller from hearing of the exit
        return f"<unrepresentable: {type(exc).__name__}>"


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60


class RemoteRef(ActorRef):
    """A ref to an actor on another node; used exactly like a local one.

    ``alive`` is ``True`` until this node learns the actor is gone (a call
    answered ``NoProcess``, a ``Down``, or the connection lost).
    """

    __slots__ = ("_address", "_node")

    def __init__(self, node: Node, address: Address) -> None:
        self._node = node
        self._address = address

    @property
    def alive(self) -> bool:
        return self._node.believes_alive(self._address)

    @property
    def name(self) -> Any:
        return self._address.name

    @property
    def node(self) -> str:
        """The node the actor lives on."""
        return self._address.node

    def __repr__(self) -> str:
        address = self._address
        parts = [f"#{address.pid}"] if address.pid is not None else []
        if address.name is not None:
            parts.append(repr(address.name))
        return f"<ActorRef {' '.join(parts)} @{address.node}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteRef) and other._address == self._address

    def __hash__(self) -> int:
        return hash(self._address)

    def cast(self, msg: Any) -> None:
        self._node.send(SendMsg(self._address, False, msg))

    def send(self, msg: Any) -> None:
        self._node.send(SendMsg(self._address, True, msg))

    async def call(self, request: Any, timeout: float | None = 5.0) -> Any:
        try:
            return await self._node.request(
                self._address, lambda call_id: CallMsg(self._address, request, call_id), timeout
            )
        except CallTimeout:
            raise call_timed_out(self, request, timeout) from None

    async def stop(self, reason: Any = "normal", timeout: float | None = None) -> None:
        try:
            await self._node.request(self._address, lambda call_id: StopMsg(self._address, reason, call_id), timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{self!r} did not stop within {timeout}s") from exc

    async def get_state(self, timeout: float | None = 5.0) -> tuple[Any, Any]:
        state: tuple[Any, Any] = await self._node.request(
            self._address, lambda call_id: GetStateMsg(self._address, call_id), timeout
        )
        return state

    async def wait_exit(self) -> Any:
        return await self._node.wait_exit(self._address)

    def trace(self, enabled: bool = True, *, tracer: Any = None) -> None:
        raise NotImplementedError("tracing is set on the actor's own node")


class _RemoteCaller(Caller):
    """The reply handle of a call that came from another node: answers go back over the wire."""

    __slots__ = ("_call_id", "_done", "_exit_waiter", "_node", "_peer", "_target")

    def __init__(
        self, node: Node, peer: str, call_id: int, target: LocalRef | None, *, exit_waiter: bool = False
    ) -> None:
        self._node = node
        self._peer = peer
        self._call_id = call_id
        self._target = target  # the actor asked, which must not fail this caller once answered
        self._exit_waiter = exit_waiter  # answered with an exit reason, from the runtime's own exit path
        self._done = False

    def resolve(self, value: Any) -> None:
        """Send the reply; one the wire cannot carry fails the caller at once, then raises at the replier.

        The caller hears ``ActorExited`` carrying the ``EncodeError``, and the
        replying actor crashes with it, as it would on any unencodable send.
        """
        if self._finish():
            return
        try:
            self._node.send_to(self._peer, ReplyMsg(self._call_id, wire_reason(value) if self._exit_waiter else value))
        except EncodeError as exc:
            self._node.send_to(self._peer, FailMsg(self._call_id, "exited", wire_reason(exc)))
            if not self._exit_waiter:
                raise

    def fail(self, error: BaseException) -> None:
        if not self._finish():
            reason = error.reason if isinstance(error, ActorExited) else error
            try:
                self._node.send_to(self._peer, FailMsg(self._call_id, "exited", wire_reason(reason)))
            except EncodeError:  # an exit reason that is not data: say what it was
                described = RemoteError(type(reason).__qualname__, _describe(reason))
                self._node.send_to(self._peer, FailMsg(self._call_id, "exited", described))

    def _finish(self) -> bool:
        done, self._done = self._done, True
        if self._target is not None:
            forget_caller(self._target, self)
        return done

    async def wait(self, timeout: float | None) -> Any:
        raise RuntimeError("a remote caller is answered, not awaited")


class _RemotePeer:
    """A remote actor as the core's links and monitors see it (the ``Peer`` protocol)."""

    __slots__ = ("address", "linked", "monitors", "node", "ref")

    def __init__(self, node: Node, address: Address) -> None:
        self.node = node
        self.address = address
        self.ref = RemoteRef(node, address)
        self.linked: dict[Peer, None] = {}  # the local actors linked to this one
        self.monitors: dict[Monitor, int] = {}

    def accept_link(self, other: Peer) -> bool:
        self.linked[other] = None
        self.node.send_to(self.address.node, LinkMsg(_local_id(other), self.address))
        return True

    def drop_link(self, other: Peer) -> None:
        if self.linked.pop(other, 0) is None:
            self.node.send_to(self.address.node, UnlinkMsg(_local_id(other), self.address))

    def exit_signal(self, sender: Peer, reason: Any, *, linked: bool = True) -> None:
        self.linked.pop(sender, None)
        from_address = Address(self.node.name, _local_id(sender), sender.ref.name, self.node.creation)
        self.node.send_to(self.address.node, ExitMsg(from_address, self.address, wire_reason(reason), linked))

    def accept_monitor(self, monitor: Monitor, watcher: Peer) -> bool:
        monitor_id = self.node.watch(self, monitor, watcher)
        self.monitors[monitor] = monitor_id
        return True

    def drop_monitor(self, monitor: Monitor) -> None:
        monitor_id = self.monitors.pop(monitor, None)
        if monitor_id is not None:
            self.node.unwatch(self.address.node, monitor_id)

    def deliver_down(self, monitor: Monitor, ref: ActorRef, reason: Any) -> None:
        raise AssertionError("a remote actor never watches through a local proxy")


class _RemoteWatcher:
    """A monitor set by another node on a local actor: its ``Down`` goes back over the wire."""

    __slots__ = ("monitor_id", "node", "peer", "target")

    def __init__(self, node: Node, peer: str, monitor_id: int, target: LocalRef) -> None:
        self.node = node
        self.peer = peer
        self.monitor_id = monitor_id
        self.target = target

    @property
    def ref(self) -> ActorRef:
        return self.target

    def deliver_down(self, monitor: Monitor, ref: ActorRef, reason: Any) -> None:
        self.node.forget_watcher(self.peer, self.monitor_id)
        address = Address(self.node.name, self.target.id, self.target.name, self.node.creation)
        self.node.send_to(self.peer, DownMsg(self.monitor_id, address, wire_reason(reason)))

    def accept_link(self, other: Any) -> bool:
        raise AssertionError("a remote watcher is not a link end")

    def drop_link(self, other: Any) -> None:
        raise AssertionError("a remote watcher is not a link end")

    def exit_signal(self, sender: Any, reason: Any, *, linked: bool = True) -> None:
        raise AssertionError("a remote watcher is not a link end")

    def accept_monitor(self, monitor: Monitor, watcher: Any) -> bool:
        raise AssertionError("a remote watcher is never watched")

    def drop_monitor(self, monitor: Monitor) -> None:
        raise AssertionError("a remote watcher is never watched")


class Node:
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
        self._pending: dict[int, tuple[str, Caller]] = {}
        self._exported: weakref.WeakValueDictionary[int, Caller] = weakref.WeakValueDictionary()
        self._export_ids: weakref.WeakKeyDictionary[Caller, int] = weakref.WeakKeyDictionary()
        self._peers: dict[tuple[str, int | None, Any], _RemotePeer] = {}
        self._watching: dict[int, tuple[_RemotePeer, Monitor, Peer]] = {}
        self._watchers: dict[tuple[str, int], tuple[Peer, Monitor]] = {}
        self._exit_waiters: dict[int, tuple[str, Caller]] = {}
        self._known_dead: set[Address] = set()
        # This incarnation of the node, carried in every ref by id it hands out.
        self.creation: int = secrets.randbits(32) if creation is None else creation
        # The local refs sent to other nodes, so one that comes home is the same ref, even once its actor is gone.
        self._sent_refs: weakref.WeakValueDictionary[int, ActorRef] = weakref.WeakValueDictionary()
        # Nodes whose connection was lost and not made again; of those, the ones a connect to failed since.
        self._down: set[str] = set()
        self._unreachable: set[str] = set()
        self._checking_down: set[str] = set()
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
        await self.transport.start(self.name, self.on_frame, self.on_peer_up, self.on_peer_down)

    async def stop(self) -> None:
        self.ticker.stop()
        await self.transport.stop()

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

    def believes_alive(self, address: Address) -> bool:
        return address not in self._known_dead

    def _mark_dead(self, address: Address) -> None:
        """Remember an actor id is gone; a name is not: another actor may take it."""
        if address.pid is not None:
            self._known_dead.add(address)

    def peer_for(self, ref: RemoteRef) -> _RemotePeer:
        key = (ref._address.node, ref._address.pid, ref._address.name)
        peer = self._peers.get(key)
        if peer is None:
            peer = self._peers[key] = _RemotePeer(self, ref._address)
        return peer

    def _encode_ref(self, ref: ActorRef) -> Any:
        if isinstance(ref, RemoteRef):
            address = ref._address
            return [address.node, address.pid, address.name, address.creation]
        assert isinstance(ref, LocalRef)
        self._sent_refs[ref.id] = ref
        return [self.name, ref.id, ref.name, self.creation]

    def _decode_ref(self, data: Any) -> ActorRef:
        node, pid, name, creation = data
        if node == self.name and pid is not None:
            if creation == self.creation:
                return self._home_ref(pid, name)
            dead = Address(node, pid, name, creation)  # an actor of an earlier incarnation of this node
            self._known_dead.add(dead)
            return RemoteRef(self, dead)
        return RemoteRef(self, Address(node, pid, name, creation))

    def _home_ref(self, pid: int, name: Any) -> ActorRef:
        """A ref to a local actor by id, come home: the very ref sent out, alive or not."""
        local = find_actor(self.system, pid)
        if local is not None:
            return local
        sent = self._sent_refs.get(pid)
        if sent is not None:
            return sent
        gone = Address(self.name, pid, name, self.creation)  # its ref is held nowhere here: no ref to be equal to
        self._known_dead.add(gone)
        return RemoteRef(self, gone)

    def _encode_caller(self, caller: Caller) -> Any:
        if isinstance(caller, _RemoteCaller):
            return [caller._peer, caller._call_id]
        export_id = self._export_ids.get(caller)
        if export_id is None:
            export_id = next(self._ids)
            self._exported[export_id] = caller
            self._export_ids[caller] = export_id
        return [self.name, export_id]

    def _decode_caller(self, data: Any) -> Caller:
        node, call_id = data
        if node == self.name:
            pending = self._pending.get(call_id)
            if pending is not None:
                return pending[1]
            exported = self._exported.get(call_id)
            if exported is not None:
                return exported
        return _RemoteCaller(self, node, call_id, None)

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
        if node in self._unreachable:
            self.on_connect_failed(node)  # the last connect failed: so does this send, unless one is made now

    async def request(self, address: Address, build: Callable[[int], Any], timeout: float | None) -> Any:
        """Send a message that expects an answer, and wait for it."""
        call_id = next(self._ids)
        caller = new_caller(self.system)
        self._pending[call_id] = (address.node, caller)
        try:
            self.send_to(address.node, build(call_id))
            return await caller.wait(timeout)
        except NoProcess:
            self._mark_dead(address)
            raise
        finally:
            self._pending.pop(call_id, None)

    def watch(self, peer: _RemotePeer, monitor: Monitor, watcher: Peer) -> int:
        monitor_id = next(self._ids)
        self._watching[monitor_id] = (peer, monitor, watcher)
        self.send_to(peer.address.node, MonitorMsg(_local_id(watcher), peer.address, monitor_id))
        return monitor_id

    def unwatch(self, node: str, monitor_id: int) -> None:
        if self._watching.pop(monitor_id, None) is not None:
            self.send_to(node, DemonitorMsg(monitor_id))

    def forget_watcher(self, peer: str, monitor_id: int) -> None:
        self._watchers.pop((peer, monitor_id), None)

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
        handler(self, peer, message)

    def _target(self, address: Address) -> LocalRef | None:
        if address.node != self.name:
            return None
        if address.creation is not None and address.creation != self.creation:
            return None  # an actor of an earlier incarnation of this node: gone, whoever has its id now
        if address.pid is not None:
            return find_actor(self.system, address.pid)
        return self.system.whereis(address.name)

    def _on_send(self, peer: str, message: SendMsg) -> None:
        target = self._target(message.to)
        if target is not None:
            if message.info:
                target.send(message.msg)
            else:
                target.cast(message.msg)

    def _on_call(self, peer: str, message: CallMsg) -> None:
        self._deliver_request(
            peer, message.to, message.call_id, lambda ref, caller: deliver_call(ref, caller, message.request)
        )

    def _on_get_state(self, peer: str, message: GetStateMsg) -> None:
        self._deliver_request(peer, message.to, message.call_id, deliver_state_request)

    def _deliver_request(
        self, peer: str, to: Address, call_id: int, deliver: Callable[[LocalRef, Caller], bool]
    ) -> None:
        """Deliver a request that expects an answer to a local actor, or answer ``noproc``."""
        target = self._target(to)
        if target is None or not deliver(target, _RemoteCaller(self, peer, call_id, target)):
            self.send_to(peer, FailMsg(call_id, "noproc"))

    def _on_stop(self, peer: str, message: StopMsg) -> None:
        target = self._target(message.to)
        waiter = _RemoteCaller(self, peer, message.call_id, None, exit_waiter=True)
        if target is None or not deliver_stop(target, message.reason, waiter):
            self.send_to(peer, FailMsg(message.call_id, "noproc"))

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
        else:
            pending[1].fail(ActorExited(message.reason))

    def _local_peer(self, address: Address) -> Peer | None:
        target = self._target(address)
        return None if target is None else self.system.peer(target)

    def _on_link(self, peer: str, message: LinkMsg) -> None:
        remote = self._peer(peer, message.from_pid)
        local = self._local_peer(message.to)
        if local is None or not local.accept_link(remote):
            self.send_to(peer, ExitMsg(message.to, Address(peer, message.from_pid), "noproc", linked=False))
            return
        remote.linked[local] = None

    def _on_unlink(self, peer: str, message: UnlinkMsg) -> None:
        local = self._local_peer(message.to)
        if local is not None:
            remote = self._peer(peer, message.from_pid)
            remote.linked.pop(local, None)
            local.drop_link(remote)

    def _on_exit(self, peer: str, message: ExitMsg) -> None:
        local = self._local_peer(message.to)
        if local is None:
            return
        remote = self._linked_peer(local, message.sender)
        remote.linked.pop(local, None)
        if not message.linked:
            local.drop_link(remote)
        local.exit_signal(remote, message.reason, linked=message.linked)

    def _linked_peer(self, local: Peer, sender: Address) -> _RemotePeer:
        """The proxy ``local`` knows ``sender`` by: linked by id, or by registered name."""
        by_name = self._peers.get((sender.node, None, sender.name)) if sender.name is not None else None
        if by_name is not None and local in by_name.linked:
            return by_name
        return self._peer(sender.node, sender.pid if sender.pid is not None else 0)

    def _on_monitor(self, peer: str, message: MonitorMsg) -> None:
        target = self._target(message.to)
        if target is None or not target.alive:
            self.send_to(peer, DownMsg(message.monitor_id, message.to, "noproc"))
            return
        local = self.system.peer(target)
        monitor = Monitor(self.system.next_actor_id())
        local.accept_monitor(monitor, _RemoteWatcher(self, peer, message.monitor_id, target))
        self._watchers[(peer, message.monitor_id)] = (local, monitor)

    def _on_demonitor(self, peer: str, message: DemonitorMsg) -> None:
        watched = self._watchers.pop((peer, message.monitor_id), None)
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
            watcher.deliver_down(monitor, remote.ref, message.reason)

    def _on_tick(self, peer: str, message: TickMsg) -> None:
        """Nothing to do: that it arrived was the point (``on_frame`` took note)."""

    _handlers: ClassVar[dict[type, Callable[[Node, str, Any], None]]] = {
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
        TickMsg: _on_tick,
    }

    def _peer(self, node: str, pid: int) -> _RemotePeer:
        key = (node, pid, None)
        peer = self._peers.get(key)
        if peer is None:
            peer = self._peers[key] = _RemotePeer(self, Address(node, pid))
        return peer

    # -- connections ---------------------------------------------------------------

    def on_peer_up(self, peer: str) -> None:
        self._down.discard(peer)
        self._unreachable.discard(peer)
        self.ticker.up(peer)
        log.info("node connected", node=self.name, peer=peer)

    def on_peer_down(self, peer: str) -> None:
        """The connection to ``peer`` is lost: everything across it fires ``"noconnection"``."""
        log.warning("node connection lost", node=self.name, peer=peer)
        self.ticker.down(peer)
        self._down.add(peer)
        self._noconnection(peer)

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
            self._unreachable.add(peer)
            self._noconnection(peer)

    def _noconnection(self, peer: str) -> None:
        """Fire ``"noconnection"`` on every call, monitor and link across to ``peer``."""
        lost = ActorExited("noconnection")
        for call_id, (node, caller) in list(self._pending.items()):
            if node == peer:
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
                for local in list(remote.linked):
                    local.exit_signal(remote, "noconnection")
                remote.linked.clear()
        for watch_key, (local, monitor) in list(self._watchers.items()):
            if watch_key[0] == peer:
                del self._watchers[watch_key]
                local.drop_monitor(monitor)


def _caller_types() -> list[type[Caller]]:
    """The reply handles a message may carry: the runtime's own, then remote ones.

    Every node must number them alike, so only genstatem's own classes count,
    in a fixed order; a reply handle of any other class cannot cross nodes.
    """
    return [*CALLER_TYPES, _RemoteCaller]


def _local_id(peer: Peer) -> int:
    """The actor id of a local actor's peer, as the wire names it."""
    ref = peer.ref
    if not isinstance(ref, LocalRef):
        raise TypeError(f"{ref!r} is not a local actor")
    return ref.id
