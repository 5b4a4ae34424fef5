"""What handlers and ``init`` return, and the actions results carry."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from .._core import Caller
from ._events import EventTimeout, EventType, GenericTimeout, StateTimeout


class _Unchanged:
    """Leave the data as it is (``keep_state_and_data``)."""

    _instance: _Unchanged | None = None

    def __new__(cls) -> _Unchanged:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()


# -- actions ---------------------------------------------------------------


@attrs.frozen
class Reply:
    """``{reply, From, Reply}``: answer the call ``caller`` with ``value``."""

    caller: Caller
    value: Any


@attrs.frozen
class Postpone:
    """Keep this event and retry it after the next state change."""


@attrs.frozen
class NextEvent:
    """Insert an event, handled before anything already queued."""

    event_type: EventType
    content: Any = None


Action = Reply | Postpone | NextEvent | EventTimeout | StateTimeout | GenericTimeout
Actions = Action | Iterable[Action]
ACTION_TYPES = (Reply, Postpone, NextEvent, EventTimeout, StateTimeout, GenericTimeout)


# -- results -----------------------------------------------------------------


@attrs.frozen
class NextState:
    """``{next_state, State, Data, Actions}``: go to ``state`` with ``data``."""

    state: Any
    data: Any
    actions: Actions = ()


@attrs.frozen
class KeepState:
    """``{keep_state, Data, Actions}``; with no data, ``keep_state_and_data``."""

    data: Any = UNCHANGED
    actions: Actions = ()


@attrs.frozen
class RepeatState:
    """Like ``KeepState``, but runs the state enter call again."""

    data: Any = UNCHANGED
    actions: Actions = ()


@attrs.frozen
class Stop:
    """Stop with ``reason``; ``replies`` are sent before ``terminate`` runs."""

    reason: Any = "normal"
    data: Any = UNCHANGED
    replies: Reply | Iterable[Reply] = ()


@attrs.frozen
class Init:
    """What ``init`` returns to start in ``state`` with ``data``."""

    state: Any
    data: Any
    actions: Actions = ()


@attrs.frozen
class Ignore:
    """What ``init`` returns to start no actor (``start`` returns ``None``)."""


Result = NextState | KeepState | RepeatState | Stop | None
InitResult = Init | Ignore | Stop
