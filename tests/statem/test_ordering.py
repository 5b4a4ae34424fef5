"""Event ordering: arrival order, inserted events, postponing and enter calls."""

from __future__ import annotations

from typing import Any

import pytest

import genstatem as gs

from .helpers import Scripted, cast_and_log, contents

pytestmark = pytest.mark.anyio


async def test_events_are_handled_one_at_a_time_in_arrival_order() -> None:
    """Casts, sends and calls are handled in the order they arrived."""
    log: list[Any] = []
    async with gs.ActorSystem() as system:
        ref = await system.start(Scripted, ("s", log, lambda *_: None))
        assert ref is not None
        for i in range(5):
            ref.cast(i)
            ref.send(("info", i))
        assert await ref.call("log") == [
            entry for i in range(5) for entry in (("s", gs.Cast(), i), ("s", gs.Info(), ("info", i)))
        ]


async def test_async_handler_finishes_before_the_next_event() -> None:
    """An async handler that awaits is not interleaved with the next event."""
    import anyio

    seen: list[str] = []

    class Slow(gs.GenStateMachine):
        async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
            if isinstance(event_type, gs.Call):
                return gs.KeepState(actions=gs.Reply(event_type.caller, list(seen)))
            seen.append(f"start {content}")
            await anyio.sleep(0.01)
            seen.append(f"end {content}")
            return None

    async with gs.ActorSystem() as system:
        ref = await system.start(Slow, ("s", None))
        assert ref is not None
        ref.cast(1)
        ref.cast(2)
        assert await ref.call("?") == ["start 1", "end 1", "start 2", "end 2"]


async def test_next_events_come_before_queued_events_in_the_order_given() -> None:
    """NextEvent events are handled before anything already queued, in the order given."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return gs.KeepState(
                actions=[gs.NextEvent(gs.Internal(), "first"), gs.NextEvent(gs.Cast(), "second")],
            )
        return None

    log = await cast_and_log(script, ["go", "queued"], state="s")
    assert log == [
        ("s", gs.Cast(), "go"),
        ("s", gs.Internal(), "first"),
        ("s", gs.Cast(), "second"),
        ("s", gs.Cast(), "queued"),
    ]


async def test_postponed_events_wait_for_a_state_change() -> None:
    """A postponed event is not retried after KeepState, RepeatState or NextState to the same state."""
    log: list[Any] = []

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if state == "a" and content == "p":
            return gs.KeepState(actions=gs.Postpone())
        if content == "keep":
            return gs.KeepState()
        if content == "repeat":
            return gs.RepeatState()
        if content == "same":
            return gs.NextState("a", None)
        if content == "change":
            return gs.NextState("b", None)
        return None

    async with gs.ActorSystem() as system:
        ref = await system.start(Scripted, ("a", log, script))
        assert ref is not None
        for msg in ("p", "keep", "repeat", "same"):
            ref.cast(msg)
        assert contents(await ref.call("log")) == ["p", "keep", "repeat", "same"]
        ref.cast("change")
        assert await ref.call("log") == [
            ("a", gs.Cast(), "p"),
            ("a", gs.Cast(), "keep"),
            ("a", gs.Cast(), "repeat"),
            ("a", gs.Cast(), "same"),
            ("a", gs.Cast(), "change"),
            ("b", gs.Cast(), "p"),
        ]


async def test_postponed_events_retry_oldest_first_after_inserted_and_before_queued() -> None:
    """After a state change: inserted events, then postponed oldest first, then the rest of the queue."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if state == "a" and content in ("p1", "p2"):
            return gs.KeepState(actions=gs.Postpone())
        if content == "change":
            return gs.NextState("b", None, gs.NextEvent(gs.Internal(), "inserted"))
        return None

    log = await cast_and_log(script, ["p1", "p2", "change", "later"])
    assert contents(log) == ["p1", "p2", "change", "inserted", "p1", "p2", "later"]


async def test_the_current_event_postponed_with_a_state_change_is_retried_at_once() -> None:
    """Postpone together with a state change retries the event in the new state, after older postponed ones."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if state == "a" and content == "old":
            return gs.KeepState(actions=gs.Postpone())
        if state == "a" and content == "switch":
            return gs.NextState("b", None, gs.Postpone())
        return None

    log = await cast_and_log(script, ["old", "switch", "next"])
    assert log[2:] == [("b", gs.Cast(), "old"), ("b", gs.Cast(), "switch"), ("b", gs.Cast(), "next")]


async def test_postponed_event_is_retried_each_state_change_until_handled() -> None:
    """An event postponed again in the new state waits for the next change, keeping its age."""

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if state != "c" and content == "p":
            return gs.KeepState(actions=gs.Postpone())
        if content == "next":
            return gs.NextState({"a": "b", "b": "c"}[state], None)
        return None

    log = await cast_and_log(script, ["p", "next", "next"])
    assert [(s, c) for s, _, c in log] == [("a", "p"), ("a", "next"), ("b", "p"), ("b", "next"), ("c", "p")]


class Entering(gs.GenStateMachine):
    """Records enter calls and events; ``init`` takes ``(log, script)``."""

    state_enter = True

    async def init(self, arg: Any) -> gs.Init:
        self.log, self.script = arg
        return gs.Init("a", 0, gs.NextEvent(gs.Internal(), "from init"))

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Call):
            return gs.KeepState(actions=gs.Reply(event_type.caller, (state, data, list(self.log))))
        self.log.append((state, type(event_type).__name__, content))
        return self.script(event_type, content, state, data)


async def test_enter_call_runs_after_init_before_any_event() -> None:
    """With state_enter the initial enter call gets the initial state, before inserted events."""
    log: list[Any] = []
    async with gs.ActorSystem() as system:
        ref = await system.start(Entering, (log, lambda *_: None))
        assert ref is not None
        await ref.call("sync")
        assert log == [("a", "Enter", "a"), ("a", "Internal", "from init")]


async def test_enter_call_runs_after_each_state_change_and_repeat_state() -> None:
    """Enter calls follow every state change and RepeatState, but not KeepState or a same-state NextState."""
    log: list[Any] = []

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        return {
            "change": gs.NextState("b", data),
            "repeat": gs.RepeatState(),
            "keep": gs.KeepState(),
            "same": gs.NextState(state, data),
        }.get(content)

    async with gs.ActorSystem() as system:
        ref = await system.start(Entering, (log, script))
        assert ref is not None
        for msg in ("keep", "same", "change", "repeat"):
            ref.cast(msg)
        await ref.call("sync")
        assert [entry for entry in log if entry[1] == "Enter"] == [
            ("a", "Enter", "a"),
            ("b", "Enter", "a"),
            ("b", "Enter", "b"),
        ]


async def test_enter_call_may_set_data_timers_and_reply() -> None:
    """An enter call's data is kept and its actions run before the next event."""
    log: list[Any] = []

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Enter):
            return gs.KeepState(data + 1, gs.StateTimeout(0, "entered"))
        return None

    async with gs.ActorSystem() as system:
        ref = await system.start(Entering, (log, script))
        assert ref is not None
        state, data, seen = await ref.call("sync")
        assert (state, data) == ("a", 1)
        assert seen == [("a", "Enter", "a"), ("a", "Internal", "from init"), ("a", "StateTimeout", "entered")]


async def test_repeat_state_from_an_enter_call_repeats_it_with_the_same_previous_state() -> None:
    """RepeatState returned by an enter call runs the enter call again with the same previous state."""
    log: list[Any] = []

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Enter) and data < 2:
            return gs.RepeatState(data + 1)
        return None

    async with gs.ActorSystem() as system:
        ref = await system.start(Entering, (log, script))
        assert ref is not None
        _, data, seen = await ref.call("sync")
        assert data == 2
        assert seen[:3] == [("a", "Enter", "a")] * 3


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: gs.NextState("elsewhere", 0), id="state change"),
        pytest.param(lambda: gs.KeepState(actions=gs.Postpone()), id="postpone"),
        pytest.param(lambda: gs.KeepState(actions=gs.NextEvent(gs.Internal(), 1)), id="next event"),
    ],
)
async def test_enter_call_may_not_change_state_postpone_or_insert(bad: Any) -> None:
    """An enter call that changes state or uses Postpone/NextEvent crashes the actor with a clear error."""
    log: list[Any] = []

    def script(event_type: Any, content: Any, state: Any, data: Any) -> Any:
        return bad() if isinstance(event_type, gs.Enter) else None

    async with gs.ActorSystem() as system:
        ref = await system.start(Entering, (log, script))
        assert ref is not None
        reason = await ref.wait_exit()
        assert isinstance(reason, gs.BadReturn)
        assert "enter" in str(reason)
        assert "'a'" in str(reason)


async def test_state_functions_mode_dispatches_on_the_state_name() -> None:
    """In state_functions mode each state's method handles its events; a sync def works too."""

    class Light(gs.GenStateMachine):
        callback_mode = "state_functions"

        async def init(self, arg: Any) -> gs.Init:
            return gs.Init("off", 0)

        def off(self, event_type: Any, content: Any, data: Any) -> Any:
            if isinstance(event_type, gs.Call):
                return gs.KeepState(actions=gs.Reply(event_type.caller, ("off", data)))
            return gs.NextState("on", data + 1)

        async def on(self, event_type: Any, content: Any, data: Any) -> Any:
            if isinstance(event_type, gs.Call):
                return gs.KeepState(actions=gs.Reply(event_type.caller, ("on", data)))
            return gs.NextState("off", data)

    async with gs.ActorSystem() as system:
        ref = await system.start(Light)
        assert ref is not None
        ref.cast("flip")
        assert await ref.call("?") == ("on", 1)
        ref.cast("flip")
        ref.cast("flip")
        assert await ref.call("?") == ("on", 2)


async def test_state_functions_mode_rejects_a_state_with_no_handler() -> None:
    """A state that names no handler method crashes the actor, naming the state."""

    class Broken(gs.GenStateMachine):
        callback_mode = "state_functions"

        async def init(self, arg: Any) -> gs.Init:
            return gs.Init("a", None)

        def a(self, event_type: Any, content: Any, data: Any) -> Any:
            return gs.NextState("nowhere", data)

    async with gs.ActorSystem() as system:
        ref = await system.start(Broken)
        assert ref is not None
        ref.cast("go")
        reason = await ref.wait_exit()
        assert isinstance(reason, gs.BadReturn)
        assert "'nowhere'" in str(reason)


def test_unknown_callback_mode_is_refused_at_class_creation() -> None:
    """A misspelt callback_mode fails when the class is defined."""
    with pytest.raises(TypeError, match="callback_mode"):

        class Wrong(gs.GenStateMachine):
            callback_mode = "state_function"
