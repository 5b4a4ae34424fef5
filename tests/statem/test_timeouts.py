"""Event, state and generic timeouts, on virtual time (asyncio and trio)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import genstatem as gs

from .helpers import Scripted, Timed, contents, run_script

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend(virtual_anyio_backend: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Every test here runs on virtual time."""
    return virtual_anyio_backend


async def test_event_timeout_fires_after_its_time_with_its_content() -> None:
    """An event timeout with no event in between fires once, after its time, carrying its content."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        return gs.KeepState(actions=gs.EventTimeout(5, "idle")) if content == "go" else None

    assert await run_script(script, [(0, "go")], until=20) == [("go", 0.0), ("idle", 5.0)]


async def test_the_delivered_timeout_event_is_the_action_that_set_it() -> None:
    """The event type delivered is the very timer action, so class patterns can match it by name."""
    log: list[Any] = []
    action = gs.GenericTimeout("beat", 1, "tick")

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        return gs.KeepState(actions=action) if content == "go" else None

    async with gs.ActorSystem() as system:
        ref = await system.start(Scripted, ("a", log, script))
        assert ref is not None
        ref.cast("go")
        await anyio.sleep(2)
        await ref.call("log")
    assert log[1] == ("a", action, "tick")
    match log[1][1]:
        case gs.GenericTimeout("beat"):
            pass
        case _:
            pytest.fail("GenericTimeout('beat') did not match the delivered event type")


async def test_any_event_cancels_the_event_timeout() -> None:
    """An event arriving before the event timeout cancels it."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        return gs.KeepState(actions=gs.EventTimeout(5, "idle")) if content == "go" else None

    assert await run_script(script, [(0, "go"), (3, "poke")], until=20) == [("go", 0.0), ("poke", 3.0)]


async def test_an_inserted_event_cancels_the_event_timeout() -> None:
    """A NextEvent handled after the transition cancels the event timeout set by it."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.KeepState(actions=[gs.EventTimeout(5, "idle"), gs.NextEvent(gs.Internal(), "inner")])
        return None

    assert await run_script(script, [(0, "go")], until=20) == [("go", 0.0), ("inner", 0.0)]


async def test_a_retried_postponed_event_cancels_the_event_timeout() -> None:
    """The event timeout is not started when postponed events are retried by the same transition."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if state == "a" and content == "p":
            return gs.KeepState(actions=gs.Postpone())
        if content == "go":
            return gs.NextState("b", None, gs.EventTimeout(5, "idle"))
        return None

    assert await run_script(script, [(0, "p"), (1, "go")], until=20) == [("p", 0.0), ("go", 1.0), ("p", 1.0)]


async def test_event_timeout_is_restarted_by_each_transition_that_sets_it() -> None:
    """Each transition that sets the event timeout starts it afresh."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        return gs.KeepState(actions=gs.EventTimeout(5, "idle")) if content in ("go", "poke") else None

    assert await run_script(script, [(0, "go"), (3, "poke")], until=20) == [
        ("go", 0.0),
        ("poke", 3.0),
        ("idle", 8.0),
    ]


async def test_state_timeout_survives_keep_and_repeat_state() -> None:
    """The state timeout keeps running through KeepState and RepeatState."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.KeepState(actions=gs.StateTimeout(5, "st"))
        return {"keep": gs.KeepState(), "repeat": gs.RepeatState(), "same": gs.NextState("a", None)}.get(content)

    assert await run_script(script, [(0, "go"), (1, "keep"), (2, "repeat"), (3, "same")], until=20) == [
        ("go", 0.0),
        ("keep", 1.0),
        ("repeat", 2.0),
        ("same", 3.0),
        ("st", 5.0),
    ]


async def test_state_timeout_is_cancelled_by_a_state_change() -> None:
    """A state change cancels a running state timeout."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.KeepState(actions=gs.StateTimeout(5, "st"))
        return gs.NextState("b", None) if content == "change" else None

    assert await run_script(script, [(0, "go"), (1, "change")], until=20) == [("go", 0.0), ("change", 1.0)]


async def test_state_timeout_set_with_a_state_change_runs_in_the_new_state() -> None:
    """A state timeout set by the transition that changes state belongs to the new state."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.NextState("b", None, gs.StateTimeout(5, "st"))
        return None

    assert await run_script(script, [(0, "go")], until=20) == [("go", 0.0), ("st", 5.0)]


async def test_setting_a_running_timer_again_restarts_it() -> None:
    """A state or generic timeout set again while running starts over with the new time and content."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.KeepState(actions=[gs.StateTimeout(5, "st1"), gs.GenericTimeout("g", 5, "g1")])
        if content == "again":
            return gs.KeepState(actions=[gs.StateTimeout(5, "st2"), gs.GenericTimeout("g", 6, "g2")])
        return None

    assert await run_script(script, [(0, "go"), (3, "again")], until=20) == [
        ("go", 0.0),
        ("again", 3.0),
        ("st2", 8.0),
        ("g2", 9.0),
    ]


async def test_none_cancels_a_running_timer() -> None:
    """Setting a timer with time None cancels it."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.KeepState(actions=[gs.StateTimeout(5, "st"), gs.GenericTimeout("g", 5, "g")])
        if content == "cancel":
            return gs.KeepState(actions=[gs.StateTimeout(None), gs.GenericTimeout("g", None)])
        return None

    assert await run_script(script, [(0, "go"), (1, "cancel")], until=20) == [("go", 0.0), ("cancel", 1.0)]


async def test_generic_timeouts_are_independent_by_name_and_survive_state_changes() -> None:
    """Generic timeouts of different names run side by side and survive state changes."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.KeepState(actions=[gs.GenericTimeout("x", 5, "x"), gs.GenericTimeout("y", 7, "y")])
        if content == "change":
            return gs.NextState("b", None)
        return None

    assert await run_script(script, [(0, "go"), (1, "change")], until=20) == [
        ("go", 0.0),
        ("change", 1.0),
        ("x", 5.0),
        ("y", 7.0),
    ]


async def test_the_last_timer_of_each_kind_in_one_transition_wins() -> None:
    """When one transition sets a timer kind twice, only the last one runs."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.KeepState(
                actions=[
                    gs.StateTimeout(5, "st-first"),
                    gs.GenericTimeout("g", 2, "g-first"),
                    gs.EventTimeout(3, "ev-first"),
                    gs.StateTimeout(6, "st-last"),
                    gs.GenericTimeout("g", 4, "g-last"),
                    gs.EventTimeout(9, "ev-last"),
                ]
            )
        return None

    assert await run_script(script, [(0, "go")], until=20) == [("go", 0.0), ("g-last", 4.0), ("st-last", 6.0)]


async def test_zero_timeout_fires_after_queued_events_before_the_mailbox() -> None:
    """A zero timeout comes after inserted and retried events, and before any mailbox message."""
    log: list[Any] = []

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if state == "a" and content == "p":
            return gs.KeepState(actions=gs.Postpone())
        if content == "go":
            return gs.NextState("b", None, [gs.GenericTimeout("g", 0, "zero"), gs.NextEvent(gs.Internal(), "inserted")])
        return None

    async with gs.ActorSystem() as system:
        ref = await system.start(Scripted, ("a", log, script))
        assert ref is not None
        ref.cast("p")
        ref.cast("go")
        ref.cast("mailbox")
        assert contents(await ref.call("log")) == ["p", "go", "inserted", "p", "zero", "mailbox"]


async def test_zero_event_timeout_fires_when_nothing_is_queued() -> None:
    """A zero event timeout with an empty queue fires before the next mailbox message."""
    log: list[Any] = []

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        return gs.KeepState(actions=gs.EventTimeout(0, "zero")) if content == "go" else None

    async with gs.ActorSystem() as system:
        ref = await system.start(Scripted, ("a", log, script))
        assert ref is not None
        ref.cast("go")
        ref.cast("mailbox")
        assert contents(await ref.call("log")) == ["go", "zero", "mailbox"]


async def test_event_timeout_is_not_started_when_events_are_queued() -> None:
    """An event timeout set together with NextEvent never fires, even with time 0."""
    log: list[Any] = []

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.KeepState(actions=[gs.EventTimeout(0, "zero"), gs.NextEvent(gs.Internal(), "inner")])
        return None

    async with gs.ActorSystem() as system:
        ref = await system.start(Scripted, ("a", log, script))
        assert ref is not None
        ref.cast("go")
        await anyio.sleep(1)
        assert contents(await ref.call("log")) == ["go", "inner"]


async def test_zero_state_timeout_given_first_cancels_a_zero_event_timeout() -> None:
    """A zero state timeout given before a zero event timeout is delivered first, and the event timeout is not."""
    log: list[Any] = []

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.KeepState(actions=[gs.StateTimeout(0, "st"), gs.EventTimeout(0, "ev")])
        return None

    async with gs.ActorSystem() as system:
        ref = await system.start(Scripted, ("a", log, script))
        assert ref is not None
        ref.cast("go")
        await anyio.sleep(1)
        assert contents(await ref.call("log")) == ["go", "st"]


async def test_zero_event_timeout_given_first_is_delivered_before_a_zero_state_timeout() -> None:
    """Zero event then state timeout: both are delivered, in the order of the actions (OTP's state_timeout case)."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.KeepState(actions=[gs.EventTimeout(0, "ev"), gs.StateTimeout(0, "st")])
        return None

    assert await run_script(script, [(0, "go")], until=1) == [("go", 0.0), ("ev", 0.0), ("st", 0.0)]


@pytest.mark.parametrize(
    ("actions", "delivered"),
    [
        pytest.param(
            [gs.EventTimeout(0, "ev"), gs.GenericTimeout("g", 0, "g"), gs.StateTimeout(0, "st")],
            ["ev", "g", "st"],
            id="event-first",
        ),
        pytest.param(
            [gs.GenericTimeout("g", 0, "g"), gs.EventTimeout(0, "ev"), gs.StateTimeout(0, "st")],
            ["g", "st"],
            id="event-after-generic",
        ),
        pytest.param(
            [gs.StateTimeout(0, "st"), gs.GenericTimeout("g", 0, "g"), gs.GenericTimeout("h", 0, "h")],
            ["st", "g", "h"],
            id="no-event-timeout",
        ),
    ],
)
async def test_zero_timeouts_are_delivered_in_the_order_of_their_actions(actions: Any, delivered: Any) -> None:
    """Zero generic, state and event timeouts queue in action order; a zero event timeout after another is dropped."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        return gs.KeepState(actions=actions) if content == "go" else None

    assert [content for content, _ in await run_script(script, [(0, "go")], until=1)] == ["go", *delivered]


@pytest.mark.parametrize(
    ("actions", "delivered"),
    [
        pytest.param(
            [gs.EventTimeout(0, "ev1"), gs.StateTimeout(0, "st"), gs.EventTimeout(0, "ev2")],
            ["st"],
            id="event-set-again-after-state",
        ),
        pytest.param(
            [gs.StateTimeout(0, "st1"), gs.GenericTimeout("g", 0, "g"), gs.StateTimeout(0, "st2")],
            ["g", "st2"],
            id="state-set-again-after-generic",
        ),
    ],
)
async def test_a_zero_timeout_set_twice_takes_the_place_of_its_last_action(actions: Any, delivered: Any) -> None:
    """When one transition sets a kind of timeout twice, the last action counts, at its own place in the order."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        return gs.KeepState(actions=actions) if content == "go" else None

    assert [content for content, _ in await run_script(script, [(0, "go")], until=1)] == ["go", *delivered]


class TimedEntering(Timed):
    """A Timed machine with enter calls (their content, the previous state, is recorded too)."""

    state_enter = True


async def test_an_enter_calls_zero_timeouts_come_after_the_handlers() -> None:
    """An enter call's timeouts count after the handler's: its zero state timeout goes behind their event timeout."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Enter):
            return gs.KeepState(actions=gs.StateTimeout(0, "st-enter")) if state == "b" else None
        if content == "go":
            return gs.NextState("b", None, [gs.StateTimeout(0, "st"), gs.EventTimeout(0, "ev")])
        return None

    times = await run_script(script, [(0, "go")], until=1, machine=TimedEntering)
    assert [content for content, _ in times] == ["a", "go", "a", "ev", "st-enter"]


async def test_zero_state_timeout_never_leaks_into_the_next_state() -> None:
    """A queued zero state timeout is dropped when an earlier queued event changes the state."""
    log: list[Any] = []

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.KeepState(actions=[gs.StateTimeout(0, "st"), gs.NextEvent(gs.Internal(), "change")])
        if content == "change":
            return gs.NextState("b", None)
        return None

    async with gs.ActorSystem() as system:
        ref = await system.start(Scripted, ("a", log, script))
        assert ref is not None
        ref.cast("go")
        ref.cast("after")
        await anyio.sleep(1)
        assert await ref.call("log") == [
            ("a", gs.Cast(), "go"),
            ("a", gs.Internal(), "change"),
            ("b", gs.Cast(), "after"),
        ]


async def test_a_cancelled_timers_late_fire_is_dropped() -> None:
    """A timer cancelled after its fire was queued is not delivered."""
    log: list[Any] = []
    gate = anyio.Event()

    class Busy(Scripted):
        async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
            if content == "block":
                await gate.wait()  # the generic timer fires into the mailbox meanwhile
            return await super().handle_event(event_type, content, state, data)

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.KeepState(actions=gs.GenericTimeout("g", 1, "late"))
        if content == "block":
            return gs.KeepState(actions=gs.GenericTimeout("g", None))
        return None

    async with gs.ActorSystem() as system:
        ref = await system.start(Busy, ("a", log, script))
        assert ref is not None
        ref.cast("go")
        ref.cast("block")
        await anyio.sleep(5)
        gate.set()
        await anyio.sleep(5)
        assert contents(await ref.call("log")) == ["go", "block"]


def test_timer_time_must_be_none_or_non_negative_seconds() -> None:
    """A negative or non-numeric timer time is refused when the action is built."""
    for bad in (-1, "5", True):
        with pytest.raises(ValueError, match="time"):
            gs.StateTimeout(bad)
