"""ActorSystem: shutdown order, bounded terminate, exceptions, tracing."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import genstatem as gs

pytestmark = pytest.mark.anyio


class Recorder(gs.GenStateMachine):
    """Records ``(name, reason)`` in the list it was given when it terminates."""

    async def init(self, arg: Any) -> gs.Init:
        self.name, self.record = arg
        return gs.Init("idle", None)

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Call):
            return gs.KeepState(actions=gs.Reply(event_type.caller, content))
        return None

    async def terminate(self, reason: Any, state: Any, data: Any) -> None:
        self.record.append((self.name, reason))


async def test_exit_stops_live_actors_newest_first_with_shutdown() -> None:
    """Leaving the block calls terminate("shutdown") on each live actor, newest first."""
    record: list[Any] = []
    async with gs.ActorSystem() as system:
        for name in ("a", "b", "c"):
            await system.start(Recorder, (name, record))
        b = system.actors()[1]
        await b.stop()
    assert record == [("b", "normal"), ("c", "shutdown"), ("a", "shutdown")]
    assert system.actors() == []


async def test_a_hanging_or_raising_terminate_does_not_hang_the_exit() -> None:
    """An actor whose terminate hangs is killed after shutdown_timeout; one that raises is logged."""
    record: list[Any] = []

    class Hangs(Recorder):
        async def terminate(self, reason: Any, state: Any, data: Any) -> None:
            await anyio.sleep_forever()

    class Raises(Recorder):
        async def terminate(self, reason: Any, state: Any, data: Any) -> None:
            raise RuntimeError("no")

    with anyio.fail_after(5):
        async with gs.ActorSystem(shutdown_timeout=0.1) as system:
            first = await system.start(Recorder, ("first", record))
            hangs = await system.start(Hangs, ("hangs", record))
            raises = await system.start(Raises, ("raises", record))
    assert record == [("first", "shutdown")]
    assert first is not None
    assert hangs is not None
    assert raises is not None
    assert await hangs.wait_exit() == "killed"
    assert await raises.wait_exit() == "shutdown"


async def test_a_handler_stuck_in_a_callback_is_stopped_at_exit() -> None:
    """An actor awaiting forever inside a handler is cancelled there and terminates on exit."""
    record: list[Any] = []

    class Stuck(Recorder):
        async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
            await anyio.sleep_forever()

    with anyio.fail_after(5):
        async with gs.ActorSystem() as system:
            ref = await system.start(Stuck, ("stuck", record))
            assert ref is not None
            ref.cast("go")
    assert record == [("stuck", "shutdown")]


async def test_the_blocks_own_exception_propagates_after_actors_stop() -> None:
    """An exception raised in the block propagates once every actor has stopped."""
    record: list[Any] = []

    async def main() -> None:
        async with gs.ActorSystem() as system:
            await system.start(Recorder, ("a", record))
            raise LookupError("mine")

    with pytest.raises(LookupError, match="mine"):
        await main()
    assert record == [("a", "shutdown")]


async def test_starting_outside_a_running_system_fails_clearly() -> None:
    """start on a system that is not running raises RuntimeError."""
    system = gs.ActorSystem()
    with pytest.raises(RuntimeError, match="not running"):
        await system.start(Recorder, ("a", []))


async def test_trace_reports_events_and_transitions_when_on() -> None:
    """ref.trace records every event and transition; off, it records nothing."""
    seen: list[gs.TraceEvent] = []

    class Flip(gs.GenStateMachine):
        def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
            if isinstance(event_type, gs.Call):
                return gs.KeepState(actions=gs.Reply(event_type.caller, state))
            return gs.NextState("on" if state == "off" else "off", data)

    async with gs.ActorSystem() as system:
        ref = await system.start(Flip, ("off", None))
        assert ref is not None
        ref.cast("untraced")
        await ref.call("sync")
        ref.trace(tracer=seen.append)
        ref.cast("flip")
        await ref.call("sync")
        ref.trace(False)
        ref.cast("untraced")
        await ref.call("sync")
    kinds = [(event.kind, event.state, event.content, event.next_state) for event in seen]
    assert kinds[:2] == [("event", "on", "flip", None), ("transition", "on", "flip", "off")]
    assert all(event.actor is ref for event in seen)
    assert all(event.content != "untraced" for event in seen)


async def test_a_system_tracer_traces_every_actor() -> None:
    """ActorSystem(tracer=...) traces every actor started in it."""
    seen: list[gs.TraceEvent] = []
    async with gs.ActorSystem(tracer=seen.append) as system:
        ref = await system.start(Recorder, ("a", []))
        assert ref is not None
        await ref.call("hello")
    assert ("event", "hello") in [(event.kind, event.content) for event in seen]


async def test_default_tracer_logs_structured_events() -> None:
    """ref.trace() with no tracer logs each step as a structlog event."""
    import structlog

    with structlog.testing.capture_logs() as logs:
        async with gs.ActorSystem() as system:
            ref = await system.start(Recorder, ("a", []))
            assert ref is not None
            ref.trace()
            await ref.call("hello")
    assert any(entry["event"] == "trace" and "hello" in entry["content"] for entry in logs)


class _Doom(BaseException):
    """Not an Exception: nothing in an actor may swallow it."""


async def test_a_base_exception_escaping_an_actor_fails_the_system() -> None:
    """A BaseException out of an actor (a runtime bug, not a crash) is raised from the block, not lost."""

    class Doomed(Recorder):
        def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
            return gs.Stop("normal")

        async def terminate(self, reason: Any, state: Any, data: Any) -> None:
            raise _Doom("runtime bug")

    async def main() -> None:
        async with gs.ActorSystem() as system:
            ref = await system.start(Doomed, ("doomed", []))
            assert ref is not None
            ref.cast("go")
            await ref.wait_exit()

    with pytest.raises(BaseExceptionGroup) as failed:
        await main()
    assert _Doom in _leaf_types(failed.value)


def _leaf_types(group: BaseExceptionGroup[Any]) -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for error in group.exceptions:
        found.extend(_leaf_types(error) if isinstance(error, BaseExceptionGroup) else [type(error)])
    return found
