"""Small machines shared by the state machine tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

import genstatem as gs

Script = Callable[[Any, Any, Any, Any], Any]


class Scripted(gs.GenStateMachine):
    """Records every event as ``(state, event_type, content)`` and answers with a script.

    ``init`` takes ``(state, log, script)``: ``script(event_type, content, state, data)``
    returns the result (``None`` keeps state). Calls with content ``"log"`` are
    answered with the log so far, never recorded.
    """

    async def init(self, arg: Any) -> gs.Init:
        state, log, script = arg
        self.log: list[tuple[Any, Any, Any]] = log
        self.script: Script = script
        return gs.Init(state, None)

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Call) and content == "log":
            return gs.KeepState(actions=gs.Reply(event_type.caller, list(self.log)))
        self.log.append((state, event_type, content))
        return self.script(event_type, content, state, data)


def contents(log: list[tuple[Any, Any, Any]]) -> list[Any]:
    """Just the contents of a log, in order."""
    return [content for _, _, content in log]


class Timed(Scripted):
    """A Scripted machine that also records when each event came."""

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if not (isinstance(event_type, gs.Call) and content == "log"):
            self.times.append((content, round(anyio.current_time() - self.t0, 6)))
        return await super().handle_event(event_type, content, state, data)

    async def init(self, arg: Any) -> gs.Init:
        self.times: list[tuple[Any, float]] = arg[3]
        self.t0 = anyio.current_time()
        return await super().init(arg[:3])


async def run_script(
    script: Any, feed: list[tuple[float, Any]], *, until: float, state: Any = "a", machine: type[Timed] = Timed
) -> list[Any]:
    """Start a Timed machine, cast each ``(at, msg)`` at virtual time ``at``; return ``(content, time)``s."""
    log: list[Any] = []
    times: list[Any] = []
    async with gs.ActorSystem() as system:
        t0 = anyio.current_time()
        ref = await system.start(machine, (state, log, script, times))
        assert ref is not None
        for at, msg in feed:
            await anyio.sleep(max(0.0, at - (anyio.current_time() - t0)))
            ref.cast(msg)
        await anyio.sleep(max(0.0, until - (anyio.current_time() - t0)))
        await ref.call("log")
    return times


async def cast_and_log(script: Script, messages: list[Any], *, state: Any = "a") -> list[tuple[Any, Any, Any]]:
    """Start a Scripted machine in ``state``, cast every message at once, and return its log once all are handled."""
    log: list[tuple[Any, Any, Any]] = []
    async with gs.ActorSystem() as system:
        ref = await system.start(Scripted, (state, log, script))
        assert ref is not None
        for message in messages:
            ref.cast(message)
        await ref.call("log")
    return log
