"""A peer cannot grow a node's tables without bound: monitors and links past the limit get system_limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

import genstatem as gs

from .test_node import Agent, Trapper, two_nodes

pytestmark = pytest.mark.anyio

LIMIT = 5


async def eventually(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait until ``condition()`` holds (what it waits on is the other node's tables: nothing to await)."""
    with anyio.fail_after(5):
        while not await condition():  # noqa: ASYNC110 - the tables of another node have no event to wait on
            await anyio.sleep(0.01)


async def test_monitors_past_the_limit_fire_at_once_with_system_limit() -> None:
    """Past ``max_peer_entries`` monitors from one peer, a monitor is answered with Down system_limit."""
    out, seen = anyio.create_memory_object_stream[Any](100)
    with out, seen:
        async with two_nodes() as (net, a, b):
            node_b = net.node("b")
            node_b.max_peer_entries = LIMIT
            await b.start(Agent, None, name="target")
            target = a.remote("b", "target")
            watcher = await a.start(Agent, out)
            monitors = [await watcher.call(("monitor", target)) for _ in range(LIMIT + 3)]
            with anyio.fail_after(5):
                downs = [await seen.receive() for _ in range(3)]
            assert [down.reason for down in downs] == ["system_limit"] * 3
            assert {down.monitor for down in downs} == set(monitors[LIMIT:])
            assert node_b.statistics().monitors == LIMIT

            async def monitors_on_b_are(count: int) -> bool:
                return bool(node_b.statistics().monitors == count)

            await watcher.call(("demonitor", monitors[0]))
            await eventually(lambda: monitors_on_b_are(LIMIT - 1))
            await watcher.call(("monitor", target))  # room again: this one holds
            await eventually(lambda: monitors_on_b_are(LIMIT))
            with pytest.raises(anyio.WouldBlock):
                seen.receive_nowait()


async def test_links_from_more_remote_actors_than_the_limit_are_refused_with_system_limit() -> None:
    """Past ``max_peer_entries`` linked actors of one peer, a new link gets an exit with system_limit."""
    async with two_nodes() as (net, a, b):
        net.node("b").max_peer_entries = LIMIT
        await b.start(Agent, None, name="target")
        target = a.remote("b", "target")
        linkers = [await a.start(Trapper, None) for _ in range(LIMIT + 2)]
        for linker in linkers:
            assert await linker.call(("link", target)) == "ok"

        async def exits() -> list[Any]:
            return [message for linker in linkers for message in await linker.call("seen")]

        async def two_exits() -> bool:
            return len(await exits()) >= 2

        await eventually(two_exits)
        assert [(type(message), message.reason) for message in await exits()] == [(gs.Exit, "system_limit")] * 2
        assert net.node("b").statistics().remote_actors <= LIMIT
