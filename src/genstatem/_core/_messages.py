"""What arrives in a mailbox: the kinds of message and the system notices.

``Call``, ``Cast`` and ``Info`` are the runtime's message kinds; the state
machine layer hands them to handlers unchanged as event types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ._caller import Caller
    from ._ref import ActorRef


@attrs.frozen
class Call:
    """A request from ``call``: answer it with ``Reply(caller, value)``."""

    caller: Caller


@attrs.frozen
class Cast:
    """A message from ``cast``."""


@attrs.frozen
class Info:
    """A plain message from ``send``, or a system notice (``Down``, ``Exit``)."""


CAST = Cast()
INFO = Info()


class Monitor:
    """An opaque monitor handle, equal only to itself.

    Its number is for reading logs and traces: unique per system, and the
    same from one run to the next.
    """

    __slots__ = ("__weakref__", "number")

    def __init__(self, number: int = 0) -> None:
        self.number = number

    def __repr__(self) -> str:
        return f"<Monitor #{self.number}>"


@attrs.frozen
class Down:
    """The actor ``ref`` watched by ``monitor`` exited with ``reason``."""

    monitor: Monitor
    ref: ActorRef
    reason: Any


@attrs.frozen
class Exit:
    """An exit signal from the linked actor ``ref``, delivered to a trapping actor."""

    ref: ActorRef
    reason: Any


class SystemMessage:
    """Base of the messages the runtime itself sends an actor, in mailbox order."""

    __slots__ = ()


class GetState(SystemMessage):
    """``get_state``: reply with ``(state, data)`` between events."""

    __slots__ = ("caller",)

    def __init__(self, caller: Caller) -> None:
        self.caller = caller


class StopRequest(SystemMessage):
    """``stop``: stop as if the handler had returned ``Stop(reason)``."""

    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason


SYSTEM = object()
"""First element of a mailbox item holding a :class:`SystemMessage`."""
