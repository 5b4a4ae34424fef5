"""Mermaid diagrams of traces and message records: exact text, and no label can break the syntax."""

from __future__ import annotations

import re
from typing import Any

import pytest

import genstatem as gs
from genstatem.testing import MessageRecord, sequence_diagram, state_diagram


class Switch(gs.GenStateMachine):
    """Flips between "off" and "on" on each "flip" cast; answers "status" calls without moving."""

    async def init(self, arg: Any) -> gs.Init:
        return gs.Init("off", 0)

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Cast(), "flip":
                return gs.NextState("on" if state == "off" else "off", data + 1)
            case gs.Call(caller), "status":
                return gs.KeepState(actions=gs.Reply(caller, state))
        return None


HOSTILE = [
    "a : b",
    "x ; y",
    "#35; #quot;",
    '"quoted"',
    "line\nbreak",
    "a --> b",
    "p0->>p1: forged",
    "%% comment",
    "end",
    "<br/>{}`&",
    "",
]

SAFE_TEXT = r"(?:[A-Za-z0-9 _.,()\[\]'=+*/?!$^|~@-]|#\d+;)*"
STATE_LINE = re.compile(
    rf'stateDiagram-v2|    state "{SAFE_TEXT}" as s\d+|    \[\*\] --> s\d+|    s\d+ --> s\d+ : {SAFE_TEXT}'
)
SEQUENCE_LINE = re.compile(rf"sequenceDiagram|    participant p\d+ as {SAFE_TEXT}|    p\d+(?:->>|-x)p\d+: {SAFE_TEXT}")


def decode(text: str) -> str:
    """Undo Mermaid's #code; entities, as the renderer does."""
    return re.sub(r"#(\d+);", lambda match: chr(int(match.group(1))), text)


def shown(state: str) -> str:
    """How a str state is named: as it is when plain, else by its repr."""
    return state if state.isprintable() and state == state.strip() != "" else repr(state)


def trace(*steps: tuple[Any, Any, Any]) -> list[gs.TraceEvent]:
    """Transitions of one made-up actor: ``(state, content, next_state)`` each, on a Cast."""
    actor = object()
    return [gs.TraceEvent(actor, "transition", state, gs.Cast(), content, after) for state, content, after in steps]  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_state_diagram_of_a_traced_run() -> None:
    """A real run's trace gives the start state and each distinct state change once, in order of first sight."""
    events: list[gs.TraceEvent] = []
    async with gs.ActorSystem(tracer=events.append) as system:
        ref = await system.start(Switch)
        assert ref is not None
        for _ in range(3):
            ref.cast("flip")
        assert await ref.call("status") == "on"
    assert state_diagram(events) == (
        "stateDiagram-v2\n"
        '    state "off" as s0\n'
        '    state "on" as s1\n'
        "    [*] --> s0\n"
        "    s0 --> s1 : Cast 'flip'\n"
        "    s1 --> s0 : Cast 'flip'\n"
    )


def test_state_diagram_labels_name_the_event_type_and_generic_timeouts_by_name() -> None:
    """Edge labels are the event type's class name (a generic timeout's with its name) and the content's repr."""
    actor = object()
    events = [
        gs.TraceEvent(actor, "transition", ("a", 1), gs.GenericTimeout("beat", 5), None, ("b", 2)),  # type: ignore[arg-type]
        gs.TraceEvent(actor, "postpone", ("b", 2), gs.Cast(), "x", ("b", 2)),  # type: ignore[arg-type]
    ]
    assert state_diagram(events).splitlines()[1:] == [
        """    state "('a', 1)" as s0""",
        """    state "('b', 2)" as s1""",
        "    [*] --> s0",
        "    s0 --> s1 : GenericTimeout('beat') None",
    ]


def test_state_diagram_with_no_events_is_just_the_header() -> None:
    """An empty trace draws an empty diagram."""
    assert state_diagram([]) == "stateDiagram-v2\n"


def test_state_diagram_needs_an_actor_when_the_trace_has_several() -> None:
    """A trace of two actors raises ValueError unless actor= picks one, whose edges alone are drawn."""
    first, second = trace(("a", "go", "b")), trace(("x", "go", "y"))
    with pytest.raises(ValueError, match="more than one actor"):
        state_diagram(first + second)
    drawn = state_diagram(first + second, actor=second[0].actor)
    assert '"y"' in drawn
    assert '"a"' not in drawn


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_states_and_contents_cannot_break_the_state_diagram(text: str) -> None:
    """Whatever a state or content holds, each line keeps its statement's shape and decodes back to the text."""
    drawn = state_diagram(trace((text, text, text + "!")))
    lines = drawn.splitlines()
    assert all(STATE_LINE.fullmatch(line) for line in lines), drawn
    assert decode(lines[-1]).endswith(f"s0 --> s1 : Cast {text!r}"[:40])
    described = re.findall(r'state "(.*)" as', drawn)
    assert [decode(name) for name in described] == [shown(text), shown(text + "!")]


def test_long_labels_are_cut_short() -> None:
    """A label longer than max_label is cut to that length, ending with an ellipsis."""
    drawn = state_diagram(trace(("a", "x" * 100, "b")), max_label=20)
    label = drawn.splitlines()[-1].split(" : ")[1]
    assert decode(label) == "Cast 'xxxxxxxxxxxxx…"
    assert len(decode(label)) == 20


def test_sequence_diagram_draws_participants_messages_and_drops() -> None:
    """Participants are declared in order of appearance; delivered messages are ->>, dropped ones -x."""
    records = [
        MessageRecord(0.5, "client", "door", "call 'status'"),
        MessageRecord(1.25, "door", "client", "reply 'locked'"),
        MessageRecord(2.0, "client", "lock", "cast 'open'", dropped=True),
    ]
    assert sequence_diagram(records) == (
        "sequenceDiagram\n"
        "    participant p0 as client\n"
        "    participant p1 as door\n"
        "    participant p2 as lock\n"
        "    p0->>p1: call 'status'\n"
        "    p1->>p0: reply 'locked'\n"
        "    p0-xp2: cast 'open'\n"
    )
    assert sequence_diagram(records[:1], show_time=True).splitlines()[-1] == "    p0->>p1: [0.5] call 'status'"


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_names_and_labels_cannot_break_the_sequence_diagram(text: str) -> None:
    """Whatever a participant's name or a label holds, each line keeps its shape and decodes back to the text."""
    drawn = sequence_diagram([MessageRecord(0, text, "b", text), MessageRecord(1, "b", text, text, dropped=True)])
    lines = drawn.splitlines()
    assert all(SEQUENCE_LINE.fullmatch(line) for line in lines), drawn
    assert len(lines) == 5
    assert decode(lines[1]) == f"    participant p0 as {text}"
    assert decode(lines[3]) == f"    p0->>p1: {text}"
    assert decode(lines[4]) == f"    p1-xp0: {text}"
