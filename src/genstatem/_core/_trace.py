"""Tracing: a record of every event an actor handles and every transition.

Like ``sys:trace``: off by default, and then it costs one attribute check
per event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ._log import get_logger

if TYPE_CHECKING:
    from ._ref import ActorRef

log = get_logger("genstatem.trace")


@attrs.frozen
class TraceEvent:
    """One step of an actor, as the tracer sees it.

    ``kind`` is ``"event"`` (an event is handed to a handler), ``"enter"``
    (a state enter call; ``content`` is the previous state), ``"postpone"``
    or ``"transition"`` (the handler's result was applied; ``next_state`` is
    the state after it), or ``"terminate"`` (``content`` is the reason).
    """

    actor: ActorRef
    kind: str
    state: Any
    event_type: Any = None
    content: Any = None
    next_state: Any = None
    time: float = 0.0


Tracer = Callable[[TraceEvent], None]


def log_trace(event: TraceEvent) -> None:
    """The default tracer: one ``info`` event per step on the ``genstatem.trace`` logger."""
    log.info(
        "trace",
        actor=repr(event.actor),
        kind=event.kind,
        state=repr(event.state),
        event_type=repr(event.event_type),
        content=repr(event.content),
        next_state=repr(event.next_state),
    )
