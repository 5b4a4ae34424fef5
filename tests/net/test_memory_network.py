"""The memory network: a send to a node that is going away never raises, as Erlang's sends never fail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.abc import TaskGroup

import genstatem as gs
from genstatem.net import MemoryNetwork

pytestmark = pytest.mark.anyio


class Echo(gs.GenStateMachine):
    """Answers every call with its request; once ticked, casts to its target every half millisecond."""

    async def init(self, arg: Any) -> gs.Init:
        return gs.Init("up", arg)

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Call(caller), request:
                return gs.KeepState(actions=gs.Reply(caller, request))
            case gs.Info(), "tick" | gs.GenericTimeout("tick"), _:
                data.cast("tick")
                return gs.KeepState(actions=gs.GenericTimeout("tick", 0.0005))
        return None


class SlowToStop(gs.GenStateMachine):
    """Takes a while in ``terminate``, holding its node's exit open while its network endpoint is already dead."""

    async def init(self, arg: Any) -> gs.Init:
        return gs.Init("up", None)

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        return None

    async def terminate(self, reason: Any, state: Any, data: Any) -> None:
        await anyio.sleep(0.05)


@asynccontextmanager
async def crashable_node(group: TaskGroup, network: MemoryNetwork, node: str) -> AsyncIterator[anyio.CancelScope]:
    """Run node ``node`` (with an ``Echo`` named ``echo``) in a task of its own; cancel the scope to crash it."""
    ready = anyio.Event()
    scope = anyio.CancelScope()

    async def run() -> None:
        with scope:
            async with gs.ActorSystem(node=node, network=network) as system:
                await system.start(Echo, None, name="echo")
                await system.start(SlowToStop)
                ready.set()
                await anyio.sleep_forever()

    group.start_soon(run)
    await ready.wait()
    yield scope


async def test_casts_to_a_node_whose_system_is_cancelled_never_crash_the_sender() -> None:
    """An actor casting in a loop to a node whose ActorSystem task is cancelled keeps running."""
    network = MemoryNetwork()
    for _ in range(10):
        async with (
            gs.ActorSystem(node="a", network=network) as a,
            anyio.create_task_group() as group,
            crashable_node(group, network, "b") as b,
        ):
            caster = await a.start(Echo, a.remote("b", "echo"))
            assert caster is not None
            caster.send("tick")
            await anyio.sleep(0.001)
            b.cancel()
            await anyio.sleep(0.03)  # b is still stopping its actors: its endpoint is there, but dead
            assert caster.alive
            assert await caster.call("still here", timeout=1) == "still here"


async def test_a_crashed_node_is_seen_down_and_its_name_can_start_again() -> None:
    """After a node's task is cancelled, a monitor on its actor fires; a restarted node of that name answers."""
    network = MemoryNetwork()
    async with gs.ActorSystem(node="a", network=network) as a, anyio.create_task_group() as group:
        async with crashable_node(group, network, "b") as b:
            echo = a.remote("b", "echo")
            assert await echo.call("hello", timeout=1) == "hello"
            watcher = await a.start(Echo, echo)
            assert watcher is not None
            b.cancel()
            await anyio.sleep(0.01)
            echo.cast("into the void")  # never raises
            with pytest.raises((gs.NoProcess, gs.ActorExited)):
                await echo.call("anyone?", timeout=1)
        async with crashable_node(group, network, "b") as b:
            assert await a.remote("b", "echo").call("back", timeout=1) == "back"
            b.cancel()


class Counting(gs.GenStateMachine):
    """Records how many messages wait behind each cast it handles; a call answers the record."""

    async def init(self, arg: Any) -> gs.Init:
        return gs.Init("up", [])

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Call):
            return gs.KeepState(actions=gs.Reply(event_type.caller, list(data)))
        data.append((content, self.message_queue_len()))
        return None


async def test_frames_waiting_together_reach_the_mailbox_together() -> None:
    """Casts sent in one go reach the receiver's mailbox in one turn, as a socket read hands over all that came."""
    network = MemoryNetwork()
    async with gs.ActorSystem(node="a", network=network) as a, gs.ActorSystem(node="b", network=network) as b:
        await a.start(Counting, name="counting")
        remote = b.remote("a", "counting")
        assert await remote.call("seen") == []
        for i in range(5):
            remote.cast(i)
        assert await remote.call("seen") == [(0, 5), (1, 4), (2, 3), (3, 2), (4, 1)]
