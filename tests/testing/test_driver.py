"""StateMachineDriver: handlers run one event at a time, checked by the engine's rules, with no actor."""

from __future__ import annotations

from typing import Any

import pytest

import genstatem as gs
from genstatem.testing import StateMachineDriver, Step

pytestmark = pytest.mark.anyio


class Door(gs.GenStateMachine):
    """The code lock of the spec: state functions, enter calls, timeouts, postpone, calls."""

    callback_mode = "state_functions"
    state_enter = True

    async def init(self, code: str) -> gs.Init:
        return gs.Init("locked", {"code": code, "typed": "", "opened": 0}, gs.GenericTimeout("audit", 60, "check"))

    async def locked(self, event_type: Any, content: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Enter(), _:
                return gs.KeepState({**data, "typed": ""})
            case gs.Cast(), ("button", digit):
                typed = data["typed"] + digit
                if typed == data["code"]:
                    return gs.NextState("open", data, gs.StateTimeout(10, "lock"))
                return gs.KeepState({**data, "typed": typed}, gs.EventTimeout(30, "reset"))
            case gs.EventTimeout(), "reset":
                return gs.KeepState({**data, "typed": ""})
            case gs.Call(caller), "status":
                return gs.KeepState(actions=gs.Reply(caller, "locked"))
            case gs.Call(caller), "whoami":
                return gs.KeepState(actions=gs.Reply(caller, self.ref))
            case gs.Call(caller), "shutdown":
                return gs.Stop("shutdown", {**data, "typed": ""}, gs.Reply(caller, "bye"))
        return None

    async def open(self, event_type: Any, content: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Enter(), _:
                return gs.KeepState({**data, "opened": data["opened"] + 1}, gs.StateTimeout(5, "enter"))
            case gs.StateTimeout(), "lock":
                return gs.NextState("locked", data)
            case gs.Cast(), ("button", _):
                return gs.KeepState(actions=gs.Postpone())
            case gs.Call(caller), "status":
                gs.reply(caller, "open")
                return None
        return None


class Counter(gs.GenStateMachine):
    """handle_event_function with plain ``def`` handlers: states are ints, no enter calls."""

    def init(self, arg: Any) -> gs.Init:  # type: ignore[override]
        return gs.Init(0, [])

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Cast(), "add":
                return gs.NextState(state + 1, [*data, "add"])
            case gs.Cast(), "add twice":
                return gs.KeepState(actions=[gs.NextEvent(gs.Internal(), "add"), gs.NextEvent(gs.Internal(), "add")])
            case gs.Internal(), "add":
                return gs.NextState(state + 1, [*data, "internal"])
            case gs.Cast(), "same":
                return gs.NextState(state, data)
            case gs.Cast(), "timers":
                actions = (gs.GenericTimeout(n, 1, n) for n in ("a", "b", "a"))
                return gs.KeepState(actions=actions)
            case gs.Info(), "stop":
                return gs.Stop()
        return None


class Returns(gs.GenStateMachine):
    """Returns whatever it is told: a call's request is the result; in ``other`` the data is the enter result."""

    callback_mode = "state_functions"
    state_enter = True

    async def init(self, arg: Any) -> Any:
        return arg if arg is not None else gs.Init("idle", None)

    def idle(self, event_type: Any, content: Any, data: Any) -> Any:
        return None if isinstance(event_type, gs.Enter) else content

    def other(self, event_type: Any, content: Any, data: Any) -> Any:
        return data if isinstance(event_type, gs.Enter) else None


class Repeater(gs.GenStateMachine):
    """An enter call that repeats itself until it has counted to three."""

    state_enter = True

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Enter):
            if data < 3:
                return gs.RepeatState(data + 1, gs.EventTimeout(data, f"enter {data}"))
            return None
        if content == "again":
            return gs.RepeatState(0)
        return None


async def test_init_step_reports_inits_actions_and_the_initial_enter_call() -> None:
    """start runs init then the initial enter call; init_step reports both calls' actions and data."""
    driver = await StateMachineDriver.start(Door, "12")
    step = driver.init_step
    assert (driver.state, driver.data) == ("locked", {"code": "12", "typed": "", "opened": 0})
    assert step.event is None
    assert step.generic_timeouts == {"audit": gs.GenericTimeout("audit", 60, "check")}
    assert step.actions == [gs.GenericTimeout("audit", 60, "check")]
    assert not step.stopped


async def test_state_functions_machine_keeps_state_and_reports_the_event_timeout() -> None:
    """In state_functions mode the current state's method handles the event; KeepState's timeout is reported."""
    driver = await StateMachineDriver.start(Door, "12")
    step = await driver.feed(gs.Cast(), ("button", "1"))
    assert step.state == "locked"
    assert step.data["typed"] == "1"
    assert step.event == (gs.Cast(), ("button", "1"))
    assert step.event_timeout == gs.EventTimeout(30, "reset")
    assert step.actions == [gs.EventTimeout(30, "reset")]
    assert (step.state_timeout, step.generic_timeouts, step.next_events, step.postponed) == (None, {}, [], False)


async def test_a_state_change_runs_the_enter_call_and_reports_its_actions_after_the_handlers() -> None:
    """After NextState the new state's enter call runs; its data wins and its timeout of a kind wins too."""
    driver = await StateMachineDriver.start(Door, "12")
    await driver.feed(gs.Cast(), ("button", "1"))
    step = await driver.feed(gs.Cast(), ("button", "2"))
    assert step.state == "open"
    assert step.data["opened"] == 1
    assert step.actions == [gs.StateTimeout(10, "lock"), gs.StateTimeout(5, "enter")]
    assert step.state_timeout == gs.StateTimeout(5, "enter")


async def test_fire_feeds_a_reported_timeout_as_its_event() -> None:
    """fire(timeout) hands the timeout itself to the handler, with its content."""
    driver = await StateMachineDriver.start(Door, "1")
    opened = await driver.feed(gs.Cast(), ("button", "1"))
    assert opened.state_timeout is not None
    step = await driver.fire(gs.StateTimeout(10, "lock"))
    assert step.event == (gs.StateTimeout(10, "lock"), "lock")
    assert step.state == "locked"
    assert step.data["typed"] == ""


async def test_fire_refuses_a_cancelling_timeout() -> None:
    """A timeout with time=None cancels a timer and never fires: fire raises ValueError."""
    driver = await StateMachineDriver.start(Door, "1")
    with pytest.raises(ValueError, match="never fires"):
        await driver.fire(gs.StateTimeout(None, "lock"))


async def test_replies_from_actions_and_from_gs_reply_are_captured() -> None:
    """A Reply action and a direct gs.reply both reach the driver's caller, step by step."""
    driver = await StateMachineDriver.start(Door, "1")
    caller = driver.caller()
    step = await driver.feed(gs.Call(caller), "status")
    assert step.replies == [(caller, "locked")]
    assert step.actions == [gs.Reply(caller, "locked")]
    await driver.feed(gs.Cast(), ("button", "1"))
    other = driver.caller()
    step = await driver.feed(gs.Call(other), "status")
    assert step.replies == [(other, "open")]
    assert driver.replies_to(caller) == ["locked"]
    assert driver.replies_to(other) == ["open"]
    assert repr(caller) != repr(other)


async def test_postpone_is_reported_and_leaves_state_and_data_alone() -> None:
    """A postponed event is reported as such; state and data are unchanged."""
    driver = await StateMachineDriver.start(Door, "1")
    before = (await driver.feed(gs.Cast(), ("button", "1"))).data
    step = await driver.feed(gs.Cast(), ("button", "9"))
    assert step.postponed
    assert (step.state, step.data) == ("open", before)
    assert step.actions == [gs.Postpone()]


async def test_handle_event_machine_with_sync_handlers_reports_next_events_in_order() -> None:
    """handle_event mode with def callbacks: NextEvent actions are reported, not run; feeding them runs them."""
    driver = await StateMachineDriver.start(Counter)
    assert driver.state == 0
    step = await driver.feed(gs.Cast(), "add twice")
    assert step.next_events == [(gs.Internal(), "add"), (gs.Internal(), "add")]
    assert (step.state, step.data) == (0, [])
    for event_type, content in step.next_events:
        step = await driver.feed(event_type, content)
    assert (step.state, step.data) == (2, ["internal", "internal"])


async def test_none_keeps_state_and_data_with_no_actions() -> None:
    """A handler returning None is KeepState(): nothing changes and nothing is reported."""
    driver = await StateMachineDriver.start(Counter)
    await driver.feed(gs.Cast(), "add")
    step = await driver.feed(gs.Cast(), "unknown")
    assert step == Step(event=(gs.Cast(), "unknown"), state=1, data=["add"], actions=[], replies=[], next_events=[])


async def test_enter_calls_run_only_on_a_state_change_or_repeat_state() -> None:
    """NextState to the same state runs no enter call; RepeatState runs it, and its own RepeatState repeats it."""
    driver = await StateMachineDriver.start(Repeater, ("s", 0))
    assert driver.data == 3
    assert driver.init_step.event_timeout == gs.EventTimeout(2, "enter 2")
    assert len(driver.init_step.actions) == 3
    step = await driver.feed(gs.Cast(), "again")
    assert step.data == 3
    assert [action.content for action in step.actions] == ["enter 0", "enter 1", "enter 2"]
    counter = await StateMachineDriver.start(Counter)
    step = await counter.feed(gs.Cast(), "same")
    assert (step.state, step.actions) == (0, [])


async def test_actions_given_as_a_generator_are_both_applied_and_reported() -> None:
    """A one-shot iterable of actions is checked once and still listed; the last timer of a name wins."""
    driver = await StateMachineDriver.start(Counter)
    step = await driver.feed(gs.Cast(), "timers")
    assert [action.name for action in step.actions] == ["a", "b", "a"]
    assert step.generic_timeouts == {"a": gs.GenericTimeout("a", 1, "a"), "b": gs.GenericTimeout("b", 1, "b")}


async def test_stop_reports_reason_data_and_replies_and_ends_the_run() -> None:
    """Stop is reported with its reason, new data and replies; the machine then refuses events."""
    driver = await StateMachineDriver.start(Door, "12")
    await driver.feed(gs.Cast(), ("button", "1"))
    caller = driver.caller()
    step = await driver.feed(gs.Call(caller), "shutdown")
    assert (step.stopped, step.reason) == (True, "shutdown")
    assert step.replies == [(caller, "bye")]
    assert step.data["typed"] == ""
    assert driver.stopped
    with pytest.raises(RuntimeError, match="stopped with reason 'shutdown'"):
        await driver.feed(gs.Cast(), ("button", "1"))


async def test_stop_from_an_enter_call_is_reported() -> None:
    """An enter call returning Stop stops the machine, in the new state."""
    driver = await StateMachineDriver.start(Returns)
    step = await driver.feed(gs.Cast(), gs.NextState("other", gs.Stop("from enter")))
    assert (step.state, step.stopped, step.reason) == ("other", True, "from enter")


async def test_a_step_that_stops_reports_no_inserted_events_and_no_timeouts() -> None:
    """A stop from the enter call leaves the handler's NextEvent and timeout unreported: no actor would run them."""
    driver = await StateMachineDriver.start(Returns)
    actions = [gs.NextEvent(gs.Internal(), "never"), gs.StateTimeout(1, "never")]
    step = await driver.feed(gs.Cast(), gs.NextState("other", gs.Stop("from enter"), actions))
    assert (step.stopped, step.next_events, step.state_timeout) == (True, [], None)
    assert step.actions == actions


async def test_info_stop_with_defaults_keeps_data() -> None:
    """Stop() stops with reason "normal" and leaves the data as it was."""
    driver = await StateMachineDriver.start(Counter)
    step = await driver.feed(gs.Info(), "stop")
    assert (step.stopped, step.reason, step.data) == (True, "normal", [])


BAD_RESULTS = [
    pytest.param("oops", id="not-a-result"),
    pytest.param(gs.KeepState(actions="x"), id="actions-a-str"),  # type: ignore[arg-type]
    pytest.param(gs.KeepState(actions=[1]), id="not-an-action"),  # type: ignore[list-item]
    pytest.param(gs.KeepState(actions=gs.NextEvent("x")), id="next-event-not-an-event-type"),  # type: ignore[arg-type]
    pytest.param(gs.KeepState(actions=gs.Reply("nobody", 1)), id="reply-to-a-non-caller"),  # type: ignore[arg-type]
    pytest.param(gs.NextState("nowhere", None), id="state-names-no-method"),
    pytest.param(gs.NextState("other", gs.KeepState(actions=gs.Postpone())), id="postpone-in-enter"),
    pytest.param(gs.NextState("other", gs.NextState("idle", None)), id="enter-changes-state"),
    pytest.param(gs.NextState("other", 42), id="enter-returns-junk"),
    pytest.param(gs.Stop(replies=[1]), id="stop-reply-not-a-reply"),  # type: ignore[list-item]
]


@pytest.mark.parametrize("result", BAD_RESULTS)
async def test_a_bad_result_raises_bad_return_with_the_engines_message(result: Any) -> None:
    """Each bad result or action raises BadReturn with exactly the message a running actor crashes with."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Returns)
        assert ref is not None
        with pytest.raises(gs.ActorExited) as crashed:
            await ref.call(result)
    assert isinstance(crashed.value.reason, gs.BadReturn)
    driver = await StateMachineDriver.start(Returns)
    with pytest.raises(gs.BadReturn) as raised:
        await driver.feed(gs.Call(driver.caller()), result)
    assert str(raised.value) == str(crashed.value.reason)


async def test_a_bad_init_result_raises_bad_return() -> None:
    """init returning something other than Init, Ignore or Stop raises the engine's BadReturn."""
    with pytest.raises(gs.BadReturn, match=r"bad return from init \(want Init, Ignore or Stop\): 'nope'"):
        await StateMachineDriver.start(Returns, "nope")


async def test_init_stop_and_ignore_raise_start_error() -> None:
    """init's Stop(reason) raises StartError with that reason; Ignore() raises it with the Ignore."""
    with pytest.raises(gs.StartError) as stopped:
        await StateMachineDriver.start(Returns, gs.Stop("no thanks"))
    assert stopped.value.reason == "no thanks"
    with pytest.raises(gs.StartError) as ignored:
        await StateMachineDriver.start(Returns, gs.Ignore())
    assert ignored.value.reason == gs.Ignore()


async def test_a_handler_exception_propagates_unchanged() -> None:
    """An exception raised by a handler reaches the test as it is, not wrapped."""

    class Raises(gs.GenStateMachine):
        def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
            raise KeyError(content)

    driver = await StateMachineDriver.start(Raises, ("s", None))
    with pytest.raises(KeyError, match="boom"):
        await driver.feed(gs.Cast(), "boom")


async def test_self_ref_under_the_driver_says_no_actor_is_running() -> None:
    """A handler touching self.ref gets a RuntimeError naming the driver, not an AttributeError."""
    driver = await StateMachineDriver.start(Door, "1")
    with pytest.raises(RuntimeError, match="no actor is running: Door is driven by StateMachineDriver"):
        await driver.feed(gs.Call(driver.caller()), "whoami")
    with pytest.raises(RuntimeError, match="no actor is running"):
        _ = driver.machine.system


async def test_feed_refuses_what_is_not_an_event_type() -> None:
    """feed raises TypeError for a non-event type, Enter included (enter calls run by themselves)."""
    driver = await StateMachineDriver.start(Door, "1")
    with pytest.raises(TypeError, match="not an event type"):
        await driver.feed("cast", "x")
    with pytest.raises(TypeError, match="enter calls run by themselves"):
        await driver.feed(gs.Enter(), "locked")


async def test_setting_state_checks_it_and_skips_the_enter_call() -> None:
    """driver.state = s arranges a test's starting state (checked in state_functions mode), with no enter call."""
    driver = await StateMachineDriver.start(Door, "1")
    driver.state = "open"
    driver.data = {**driver.data, "typed": "x"}
    assert (driver.state, driver.data["opened"], driver.data["typed"]) == ("open", 0, "x")
    with pytest.raises(gs.BadReturn, match="must name a handler method of Door"):
        driver.state = "ajar"


async def test_the_driver_agrees_with_a_running_actor() -> None:
    """The same events leave the driver and a real actor in the same state with the same data."""
    events = [("button", "1"), ("button", "2"), ("button", "3"), ("button", "9")]
    async with gs.ActorSystem() as system:
        ref = await system.start(Door, "123")
        assert ref is not None
        for event in events:
            ref.cast(event)
        actor_state = await ref.get_state()
    driver = await StateMachineDriver.start(Door, "123")
    for event in events:
        await driver.feed(gs.Cast(), event)
    assert (driver.state, driver.data) == actor_state
    assert actor_state[0] == "open"
