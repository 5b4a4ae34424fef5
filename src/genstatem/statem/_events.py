"""Event types a handler sees, besides the runtime's ``Call``, ``Cast`` and ``Info``.

The timeout classes are both the actions that set timers and the event types
delivered when they fire: the delivered instance is the one that set it.
"""

from __future__ import annotations

from typing import Any

import attrs

from .._core import Call, Cast, Info


@attrs.frozen
class Internal:
    """An event inserted by ``NextEvent(Internal(), content)``."""


@attrs.frozen
class Enter:
    """A state enter call; the content is the previous state."""


def _check_time(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{type(instance).__name__}.{attribute.name} must be None or seconds >= 0, got {value!r}")


@attrs.frozen
class EventTimeout:
    """``{timeout, Time, Content}``: fires unless an event arrives first."""

    time: float | None = attrs.field(default=None, validator=_check_time)
    content: Any = None


@attrs.frozen
class StateTimeout:
    """``{state_timeout, Time, Content}``: fires unless the state changes first."""

    time: float | None = attrs.field(default=None, validator=_check_time)
    content: Any = None


@attrs.frozen
class GenericTimeout:
    """``{{timeout, Name}, Time, Content}``: one timer per name; survives state changes."""

    name: Any
    time: float | None = attrs.field(default=None, validator=_check_time)
    content: Any = None


Timeout = EventTimeout | StateTimeout | GenericTimeout
EventType = Call | Cast | Info | Internal | Enter | EventTimeout | StateTimeout | GenericTimeout

EVENT_TYPES = (Call, Cast, Info, Internal, EventTimeout, StateTimeout, GenericTimeout)
"""What ``NextEvent`` may insert (an ``Enter`` is never inserted by hand)."""
