"""Mermaid diagrams of what a run did: state transitions and messages.

Every piece of text taken from the run (states, event contents, names) is
shortened and escaped with Mermaid's ``#code;`` entities, so no repr can
break the diagram's syntax: only letters, digits and a few harmless
punctuation marks are written as they are.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Any

from .._core import ActorRef, TraceEvent
from ..statem import GenericTimeout
from ._records import MessageRecord

_SAFE = frozenset(string.ascii_letters + string.digits + " _.,()[]'=+*/?!$^|~-@")
_INDENT = "    "


def state_diagram(events: Iterable[TraceEvent], *, actor: ActorRef | None = None, max_label: int = 40) -> str:
    """Draw the state changes in a trace as a Mermaid ``stateDiagram-v2``.

    Each state change (a ``"transition"`` whose next state differs) becomes
    one edge, labelled with the event type's class name and a short repr of
    the content; identical edges are drawn once. The first state in the
    trace is marked as the start.

    Args:
        events: trace events, e.g. collected with ``ActorSystem(tracer=events.append)``.
        actor: draw only this actor's events (an ``ActorRef``); needed when
            the trace holds more than one actor.
        max_label: the longest a state name or edge label may be; longer
            ones are cut short with ``…``.

    Returns:
        The diagram's text, one statement per line.

    Raises:
        ValueError: the events come from more than one actor and ``actor`` is not given.
    """
    ids: dict[str, str] = {}
    declarations: list[str] = []
    edges: dict[tuple[str, str, str], None] = {}
    first: str | None = None
    seen: Any = None

    def node(state: Any) -> str:
        key = repr(state)
        if key not in ids:
            ids[key] = f"s{len(ids)}"
            declarations.append(f'state "{_escape(_state_name(state), max_label)}" as {ids[key]}')
        return ids[key]

    for event in events:
        if actor is None:
            if seen is not None and event.actor != seen:
                raise ValueError(f"the trace holds more than one actor ({seen!r}, {event.actor!r}): pass actor=")
            seen = event.actor
        elif event.actor != actor:
            continue
        if first is None:
            first = node(event.state)
        if event.kind == "transition" and event.next_state != event.state:
            label = _escape(_event_label(event.event_type, event.content, max_label), max_label)
            edges[(node(event.state), node(event.next_state), label)] = None
    lines = ["stateDiagram-v2"]
    lines += [_INDENT + line for line in declarations]
    if first is not None:
        lines.append(f"{_INDENT}[*] --> {first}")
    lines += [f"{_INDENT}{source} --> {target} : {label}" for source, target, label in edges]
    return "\n".join(lines) + "\n"


def sequence_diagram(records: Iterable[MessageRecord], *, show_time: bool = False, max_label: int = 40) -> str:
    """Draw messages between participants as a Mermaid ``sequenceDiagram``.

    Participants appear in the order they are first seen; messages in the
    order given. A dropped message is drawn with a cross (``-x``).

    Args:
        records: the messages, oldest first.
        show_time: start each label with the message's time.
        max_label: the longest a label or participant name may be; longer
            ones are cut short with ``…``.

    Returns:
        The diagram's text, one statement per line.
    """
    ids: dict[str, str] = {}
    declarations: list[str] = []
    messages: list[str] = []

    def participant(name: str) -> str:
        name = str(name)
        if name not in ids:
            ids[name] = f"p{len(ids)}"
            declarations.append(f"participant {ids[name]} as {_escape(name, max_label)}")
        return ids[name]

    for record in records:
        sender, receiver = participant(record.sender), participant(record.receiver)
        label = f"[{record.time:g}] {record.label}" if show_time else record.label
        arrow = "-x" if record.dropped else "->>"
        messages.append(f"{sender}{arrow}{receiver}: {_escape(label, max_label)}")
    lines = ["sequenceDiagram"]
    lines += [_INDENT + line for line in declarations + messages]
    return "\n".join(lines) + "\n"


def _state_name(state: Any) -> str:
    """A plain ``str`` state as it is (``locked``, not ``'locked'``); anything else as its repr."""
    plain = isinstance(state, str) and state.isprintable() and state == state.strip() != ""
    return state if plain else repr(state)


def _event_label(event_type: Any, content: Any, limit: int) -> str:
    name = type(event_type).__name__
    if isinstance(event_type, GenericTimeout):
        name = f"{name}({_shorten(repr(event_type.name), limit)})"
    return f"{name} {_shorten(repr(content), limit)}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _escape(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, every character outside a safe set as a ``#code;`` entity."""
    text = _shorten(text, limit)
    return "".join(ch if ch in _SAFE else f"#{ord(ch)};" for ch in text)
