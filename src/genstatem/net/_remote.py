"""Remote actors as local code sees them: refs, reply handles and link/monitor proxies across nodes.

A ``RemoteRef`` is used exactly like a local ``ActorRef``; a ``_RemoteCaller``
is the reply handle of a call that came from another node; ``_RemotePeer``
and ``_RemoteWatcher`` stand in for actors across the network in the core's
links and monitors (its ``Peer`` protocol). The ``Node`` they talk through
is in ``_node.py``.
"""

from __future__ import annotations

import reprlib
from typing import TYPE_CHECKING, Any

from .._core import (
    ActorExited,
    ActorRef,
    Caller,
    CallTimeout,
    LocalRef,
    MailboxFull,
    Monitor,
    Peer,
    call_timed_out,
    forget_caller,
    get_logger,
)
from ._codec import EncodeError
from ._messages import (
    Address,
    CallMsg,
    DownMsg,
    ExitMsg,
    FailMsg,
    GetStateMsg,
    LinkMsg,
    RemoteError,
    ReplyMsg,
    SendMsg,
    StopMsg,
    UnlinkMsg,
)

log = get_logger("genstatem.net")


if TYPE_CHECKING:
    from ._node import Node


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


class NodeUnreachable(ActorExited):
    """The node a call went to refused this node's connection; ``reason`` is ``"noconnection"``.

    Raised by a ``call`` (and ``get_state``, ``stop``) instead of waiting for
    its timeout, when the transport can tell the peer will not have this
    node: a wrong secret, another handshake version, TLS failing.

    Attributes:
        node: the node that could not be reached.
        cause: why, in words (what the transport logged).
    """

    def __init__(self, node: str, cause: str) -> None:
        super().__init__("noconnection")
        self.args = (f"cannot reach node {node!r}: {cause}",)
        self.node = node
        self.cause = cause


class RemoteRef(ActorRef):
    """A ref to an actor on another node; used exactly like a local one.

    ``alive`` is ``True`` until this node learns the actor is gone (a call
    answered ``NoProcess``, or a ``Down``); the node remembers that only
    while some ref to the actor is still held here.
    """

    __slots__ = ("_address", "_node", "_state")

    def __init__(self, node: Node, address: Address) -> None:
        self._node = node
        self._address = address
        self._state = node.ref_state(address)

    @property
    def alive(self) -> bool:
        return not self._state.dead

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


class _RefState:
    """What this node knows of a remote actor, shared by every ``RemoteRef`` to it, and gone with the last."""

    __slots__ = ("__weakref__", "dead")

    def __init__(self) -> None:
        self.dead = False


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
        """Tell the caller's node the call failed: ``MailboxFull`` as itself, anything else as an exit."""
        if self._finish():
            return
        if isinstance(error, MailboxFull):
            self._node.send_to(self._peer, FailMsg(self._call_id, "mailbox_full", error.limit))
            return
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
            self._node.forget_incoming(self._peer, self._call_id, self)
        return done

    def forget(self) -> None:
        """The caller gave up: nobody waits for an answer, so the actor need not keep this handle."""
        self._finish()

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
        self.node.release(self)

    def exit_signal(self, sender: Peer, reason: Any, *, linked: bool = True) -> None:
        self.linked.pop(sender, None)
        from_address = Address(self.node.name, _local_id(sender), sender.ref.name, self.node.creation)
        self.node.send_to(self.address.node, ExitMsg(from_address, self.address, wire_reason(reason), linked))
        self.node.release(self)

    def accept_monitor(self, monitor: Monitor, watcher: Peer) -> bool:
        monitor_id = self.node.watch(self, monitor, watcher)
        self.monitors[monitor] = monitor_id
        return True

    def drop_monitor(self, monitor: Monitor) -> None:
        monitor_id = self.monitors.pop(monitor, None)
        if monitor_id is not None:
            self.node.unwatch(self.address.node, monitor_id)
        self.node.release(self)

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


def _local_id(peer: Peer) -> int:
    """The actor id of a local actor's peer, as the wire names it."""
    ref = peer.ref
    if not isinstance(ref, LocalRef):
        raise TypeError(f"{ref!r} is not a local actor")
    return ref.id
