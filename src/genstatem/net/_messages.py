"""The distribution protocol's messages: what one node tells another.

Each is a frozen attrs class registered in every node's codec; a frame
carries exactly one. Actors are addressed by ``Address`` (node plus actor id
or registered name); calls, stops and state reads are matched to their
answers by a call id chosen by the asking node.
"""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class Address:
    """An actor on a node: by id, or by registered name when ``pid`` is ``None``.

    ``creation`` names the incarnation of the node the id belongs to (Erlang's
    "creation"): a node that restarts reuses actor ids, so an id from an
    earlier incarnation names an actor that is gone, never the new one that
    got the same id. ``None`` for a name, which follows whoever holds it.
    """

    node: str
    pid: int | None = None
    name: Any = None
    creation: int | None = attrs.field(default=None, repr=False)  # random: kept out of reprs and traces


@attrs.frozen
class RemoteError:
    """An exception that ended an actor on another node, as its type and message.

    Exceptions do not cross nodes (they are not data); this describes one.
    """

    type: str
    message: str

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@attrs.frozen
class SendMsg:
    """A cast (``info=False``) or a plain message (``info=True``)."""

    to: Address
    info: bool
    msg: Any


@attrs.frozen
class CallMsg:
    """A call; answered by ``ReplyMsg`` or ``FailMsg`` with the same ``call_id``."""

    to: Address
    request: Any
    call_id: int


@attrs.frozen
class StopMsg:
    """``ref.stop(reason)``; answered with the exit reason once the actor is gone."""

    to: Address
    reason: Any
    call_id: int


@attrs.frozen
class GetStateMsg:
    """``ref.get_state()``; answered with ``(state, data)``."""

    to: Address
    call_id: int


@attrs.frozen
class ReplyMsg:
    """The answer to a call id."""

    call_id: int
    value: Any


@attrs.frozen
class FailMsg:
    """A call id that will get no answer, and why.

    ``kind`` is ``"noproc"``, ``"exited"`` (``reason``: the exit reason) or
    ``"mailbox_full"`` (``reason``: the callee's mailbox limit; a node that
    predates it reads it as an exit with that number for reason).
    """

    call_id: int
    kind: str
    reason: Any = None


@attrs.frozen
class LinkMsg:
    """Actor ``from_pid`` of the sending node links to ``to``."""

    from_pid: int
    to: Address


@attrs.frozen
class UnlinkMsg:
    """Actor ``from_pid`` of the sending node unlinks from ``to``."""

    from_pid: int
    to: Address


@attrs.frozen
class ExitMsg:
    """An exit signal from ``sender`` (on the sending node) to ``to``; ``linked=False`` for ``"noproc"``.

    ``sender`` carries the name too: the receiver may know the link by either.
    """

    sender: Address
    to: Address
    reason: Any
    linked: bool = True


@attrs.frozen
class MonitorMsg:
    """The sending node's actor ``watcher_pid`` (0: a plain coroutine) monitors ``to``."""

    watcher_pid: int
    to: Address
    monitor_id: int


@attrs.frozen
class DemonitorMsg:
    """Cancel the monitor ``monitor_id`` set by the sending node."""

    monitor_id: int


@attrs.frozen
class DownMsg:
    """The target of the receiving node's monitor ``monitor_id`` exited."""

    monitor_id: int
    target: Address
    reason: Any


@attrs.frozen
class CancelMsg:
    """The sending node gave up waiting for the answer to its call ``call_id``: forget it."""

    call_id: int


@attrs.frozen
class TickMsg:
    """Nothing but a sign of life, sent to a peer nothing else was sent to for a while (``_ticks.py``)."""


WIRE_MESSAGES: tuple[type, ...] = (
    Address,
    RemoteError,
    SendMsg,
    CallMsg,
    StopMsg,
    GetStateMsg,
    ReplyMsg,
    FailMsg,
    LinkMsg,
    UnlinkMsg,
    ExitMsg,
    MonitorMsg,
    DemonitorMsg,
    DownMsg,
    CancelMsg,
    TickMsg,
)
"""Registered in every node's codec with type ids 1, 2, ... in this order."""
