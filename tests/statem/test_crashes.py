"""Crashes and bad values: terminate, callers, names, logs, and init's results."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest
import structlog

import genstatem as gs

pytestmark = pytest.mark.anyio


class Fragile(gs.GenStateMachine):
    """Does what each cast says; records terminate calls in the list it was given."""

    async def init(self, arg: Any) -> gs.Init:
        self.terminated: list[Any] = arg
        return gs.Init("calm", 0)

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match content:
            case "raise":
                raise ValueError("boom")
            case ("return", value):
                return value
            case ("actions", actions):
                return gs.KeepState(actions=actions)
        if isinstance(event_type, gs.Call):
            return gs.KeepState(actions=gs.Reply(event_type.caller, "ok"))
        return None

    async def terminate(self, reason: Any, state: Any, data: Any) -> None:
        self.terminated.append((reason, state))


async def test_a_crash_runs_terminate_frees_the_name_and_spares_the_rest() -> None:
    """An exception runs terminate with it, frees the name, and leaves the system and others running."""
    terminated: list[Any] = []
    async with gs.ActorSystem() as system:
        ref = await system.start(Fragile, terminated, name="fragile")
        other = await system.start(Fragile, [])
        assert ref is not None
        assert other is not None
        ref.cast("raise")
        reason = await ref.wait_exit()
        assert isinstance(reason, ValueError)
        assert terminated == [(reason, "calm")]
        assert system.whereis("fragile") is None
        assert await other.call("alive?") == "ok"
        again = await system.start(Fragile, [], name="fragile")
        assert again is not None
        assert again is not ref


async def test_a_crash_is_logged_once_with_actor_state_and_traceback() -> None:
    """A crash is one structured error event naming the actor, its state and the exception."""
    with structlog.testing.capture_logs() as logs:
        async with gs.ActorSystem() as system:
            ref = await system.start(Fragile, [], name="fragile")
            assert ref is not None
            ref.cast("raise")
            await ref.wait_exit()
    errors = [entry for entry in logs if entry["log_level"] == "error"]
    assert len(errors) == 1
    (error,) = errors
    assert "'fragile'" in error["actor"]
    assert error["state"] == "'calm'"
    assert isinstance(error["exc_info"], ValueError)
    assert error["exc_info"].__traceback__ is not None


async def test_normal_starts_and_stops_are_logged_below_error() -> None:
    """Start and clean stop are structured events, not errors."""
    with structlog.testing.capture_logs() as logs:
        async with gs.ActorSystem() as system:
            ref = await system.start(Fragile, [])
            assert ref is not None
            await ref.stop()
    events = [(entry["event"], entry["log_level"]) for entry in logs]
    assert ("actor started", "debug") in events
    assert ("actor stopped", "debug") in events


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param(
            ("return", "oops"),
            "bad return from state handler (want NextState, KeepState, RepeatState, Stop or None): 'oops'",
            id="bad result",
        ),
        pytest.param(("return", ("next_state", "x")), "bad return", id="erlang tuple"),
        pytest.param(("actions", "not an action"), "bad actions", id="bad actions"),
        pytest.param(("actions", [gs.Postpone(), 42]), "bad action: 42", id="bad action item"),
        pytest.param(("actions", gs.NextEvent("nope", 1)), "not an event type", id="bad next event"),
        pytest.param(("actions", gs.Reply("nobody", 1)), "caller", id="bad reply"),
        pytest.param(("return", gs.Init("x", 1)), "bad return", id="init result from handler"),
    ],
)
async def test_invalid_results_and_actions_crash_naming_the_value_and_state(content: Any, fragment: str) -> None:
    """A bad result or action crashes the actor with BadReturn naming the value and the state; terminate runs."""
    terminated: list[Any] = []
    async with gs.ActorSystem() as system:
        ref = await system.start(Fragile, terminated)
        assert ref is not None
        ref.cast(content)
        reason = await ref.wait_exit()
    assert isinstance(reason, gs.BadReturn)
    assert fragment in str(reason)
    assert "(in state 'calm')" in str(reason)
    assert reason.state == "calm"
    assert terminated == [(reason, "calm")]


async def test_terminate_that_raises_is_logged_and_the_actor_still_exits() -> None:
    """A terminate that raises does not stop the actor from exiting with its reason."""

    class BadTerminate(Fragile):
        async def terminate(self, reason: Any, state: Any, data: Any) -> None:
            raise RuntimeError("terminate broke")

    with structlog.testing.capture_logs() as logs:
        async with gs.ActorSystem() as system:
            ref = await system.start(BadTerminate, [])
            assert ref is not None
            await ref.stop("normal")
            assert await ref.wait_exit() == "normal"
    assert any(entry["event"] == "terminate raised" for entry in logs)


class Starter(gs.GenStateMachine):
    """``init`` returns or raises whatever it is given."""

    async def init(self, arg: Any) -> Any:
        self.seen = (self.ref, self.system)
        if isinstance(arg, BaseException):
            raise arg
        return arg

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Call):
            return gs.KeepState(actions=gs.Reply(event_type.caller, (state, data, self.seen[0] is not None)))
        return None


async def test_init_stop_or_exception_raises_start_error_and_frees_the_name() -> None:
    """Stop(reason) or an exception from init raises StartError with the reason; the name is free again."""
    async with gs.ActorSystem() as system:
        with pytest.raises(gs.StartError) as stopped:
            await system.start(Starter, gs.Stop("no thanks"), name="n")
        assert stopped.value.reason == "no thanks"
        error = KeyError("missing")
        with pytest.raises(gs.StartError) as raised:
            await system.start(Starter, error, name="n")
        assert raised.value.reason is error
        assert system.whereis("n") is None
        assert system.actors() == []


async def test_init_bad_return_raises_start_error_naming_the_value() -> None:
    """init returning anything but Init, Ignore or Stop is a StartError carrying a BadReturn."""
    async with gs.ActorSystem() as system:
        with pytest.raises(gs.StartError) as bad:
            await system.start(Starter, ("state", "data"))
        assert isinstance(bad.value.reason, gs.BadReturn)
        assert "('state', 'data')" in str(bad.value.reason)
        with pytest.raises(gs.StartError) as bad_action:
            await system.start(Starter, gs.Init("s", None, "nope"))
        assert isinstance(bad_action.value.reason, gs.BadReturn)


async def test_init_ignore_returns_none() -> None:
    """Ignore() from init makes start return None and leaves no actor behind."""
    async with gs.ActorSystem() as system:
        assert await system.start(Starter, gs.Ignore(), name="ignored") is None
        assert system.whereis("ignored") is None
        assert system.actors() == []


async def test_init_sees_its_ref_and_system_and_postpone_is_ignored() -> None:
    """self.ref and self.system are set before init; Postpone in init's actions is ignored."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Starter, gs.Init("s", 1, [gs.Postpone()]))
        assert ref is not None
        assert await ref.call("?") == ("s", 1, True)


async def test_a_taken_name_raises_already_started_with_the_holder() -> None:
    """Starting under a live actor's name raises AlreadyStarted whose .ref is the holder."""
    async with gs.ActorSystem() as system:
        holder = await system.start(Starter, gs.Init("s", None), name="taken")
        with pytest.raises(gs.AlreadyStarted) as taken:
            await system.start(Starter, gs.Init("s", None), name="taken")
        assert taken.value.ref is holder


async def test_a_crash_in_the_initial_enter_call_is_an_ordinary_crash() -> None:
    """start returns before the initial enter call; a crash there is a crash of a running actor."""

    class EnterCrash(gs.GenStateMachine):
        state_enter = True

        def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
            raise RuntimeError("enter failed")

    async with gs.ActorSystem() as system:
        ref = await system.start(EnterCrash, ("s", None))
        assert ref is not None
        assert isinstance(await ref.wait_exit(), RuntimeError)


async def test_an_actor_crash_never_propagates_out_of_the_system() -> None:
    """Leaving the block after a crash raises nothing."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Fragile, [])
        assert ref is not None
        ref.cast("raise")
        await ref.wait_exit()
        await anyio.lowlevel.checkpoint()


async def test_an_exception_in_init_is_the_start_errors_cause_and_is_logged() -> None:
    """StartError from a raising init chains the exception (the user's line shows) and logs a crash report."""
    with structlog.testing.capture_logs() as logs:
        async with gs.ActorSystem() as system:
            with pytest.raises(gs.StartError) as raised:
                await system.start(Starter, ValueError("bad config"), name="starter")
    assert raised.value.__cause__ is raised.value.reason
    assert isinstance(raised.value.__cause__, ValueError)
    errors = [entry for entry in logs if entry["log_level"] == "error"]
    assert [entry["event"] for entry in errors] == ["actor failed to start"]
    assert "'starter'" in errors[0]["actor"]
    assert errors[0]["exc_info"] is raised.value.reason


async def test_stop_from_init_is_no_crash_report() -> None:
    """init returning Stop(reason) raises StartError with no cause and logs no error."""
    with structlog.testing.capture_logs() as logs:
        async with gs.ActorSystem() as system:
            with pytest.raises(gs.StartError) as stopped:
                await system.start(Starter, gs.Stop("no thanks"))
    assert stopped.value.__cause__ is None
    assert [entry for entry in logs if entry["log_level"] == "error"] == []


async def test_the_default_init_without_state_and_data_says_what_it_wants() -> None:
    """The default init given no (state, data) fails with a StartError that says what to pass."""

    class NoInit(gs.GenStateMachine):
        def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
            return None

    async with gs.ActorSystem() as system:
        with pytest.raises(gs.StartError) as failed:
            await system.start(NoInit)
        assert await system.start(NoInit, ("idle", 0)) is not None
    assert isinstance(failed.value.reason, TypeError)
    assert "NoInit" in str(failed.value.reason)
    assert "(state, data)" in str(failed.value.reason)


@pytest.mark.parametrize(
    ("machine", "wanted"),
    [
        pytest.param("handler", "want NextState, KeepState, RepeatState, Stop or None", id="state handler"),
        pytest.param("enter", "want KeepState, RepeatState, NextState to the same state, Stop or None", id="enter"),
    ],
)
async def test_a_bad_result_lists_the_results_allowed_there(machine: str, wanted: str) -> None:
    """A bad result from a state handler or an enter call names the results allowed there, as init's does."""

    class BadResult(gs.GenStateMachine):
        state_enter = machine == "enter"

        def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
            return "oops" if machine == "enter" or event_type == gs.Cast() else None

    async with gs.ActorSystem() as system:
        ref = await system.start(BadResult, ("s", None))
        assert ref is not None
        ref.cast("go")
        reason = await ref.wait_exit()
    assert isinstance(reason, gs.BadReturn)
    assert wanted in str(reason)
