"""Monitors and wait_exit: one Down each, noproc, demonitor, and ordering."""

from __future__ import annotations

import anyio
import attrs
import pytest

import genstatem as gs

from .helpers import TrappingProbe, start_probe

pytestmark = pytest.mark.anyio


async def test_a_monitor_delivers_exactly_one_down_with_the_reason() -> None:
    """When the watched actor exits, the watcher gets one Info with Down(monitor, ref, reason)."""
    async with gs.ActorSystem() as system:
        watcher, record = await start_probe(system)
        target, _ = await start_probe(system)
        monitor = await watcher.call(("monitor", target))
        assert isinstance(monitor, gs.Monitor)
        target.cast(("stop", "done"))
        await target.wait_exit()
        assert await watcher.call("ping") == "pong"
        assert record.entries == [gs.Down(monitor, target, "done")]


async def test_a_monitor_is_one_way() -> None:
    """A crash of the watched actor does not stop the watcher, and the watcher's exit does not reach it."""
    async with gs.ActorSystem() as system:
        watcher, record = await start_probe(system)
        target, _ = await start_probe(system)
        other, _ = await start_probe(system)
        monitor = await watcher.call(("monitor", target))
        await other.call(("monitor", watcher))
        target.cast("crash")
        crash = await target.wait_exit()
        assert await watcher.call("ping") == "pong"
        assert record.entries == [gs.Down(monitor, target, crash)]
        watcher.cast("crash")
        await watcher.wait_exit()
        assert await other.call("ping") == "pong"


async def test_monitors_stack() -> None:
    """Each monitor of the same target delivers its own Down, with its own handle."""
    async with gs.ActorSystem() as system:
        watcher, record = await start_probe(system)
        target, _ = await start_probe(system)
        first = await watcher.call(("monitor", target))
        second = await watcher.call(("monitor", target))
        assert first != second
        target.cast(("stop", "done"))
        await target.wait_exit()
        assert await watcher.call("ping") == "pong"
        assert record.entries == [gs.Down(first, target, "done"), gs.Down(second, target, "done")]


async def test_monitoring_a_dead_actor_delivers_noproc_at_once() -> None:
    """A monitor on an actor already gone delivers Down(monitor, ref, "noproc") at once."""
    async with gs.ActorSystem() as system:
        watcher, record = await start_probe(system)
        target, _ = await start_probe(system)
        await target.stop()
        monitor = await watcher.call(("monitor", target))
        assert await watcher.call("ping") == "pong"
        assert record.entries == [gs.Down(monitor, target, "noproc")]


async def test_demonitor_means_no_down() -> None:
    """After demonitor returns, no Down arrives for that monitor; others still do."""
    async with gs.ActorSystem() as system:
        watcher, record = await start_probe(system)
        target, _ = await start_probe(system)
        dropped = await watcher.call(("monitor", target))
        kept = await watcher.call(("monitor", target))
        await watcher.call(("demonitor", dropped))
        target.cast(("stop", "done"))
        await target.wait_exit()
        assert await watcher.call("ping") == "pong"
        assert record.entries == [gs.Down(kept, target, "done")]


async def test_demonitor_drops_a_down_already_queued() -> None:
    """A Down queued before demonitor returns is dropped."""
    async with gs.ActorSystem() as system:
        watcher, record = await start_probe(system)
        target, _ = await start_probe(system)
        monitor = await watcher.call(("monitor", target))
        release = anyio.Event()
        watcher.cast(("block_then", release, ("demonitor", monitor)))
        target.cast(("stop", "done"))
        await target.wait_exit()  # its Down now waits in the watcher's mailbox
        release.set()
        assert await watcher.call("ping") == "pong"
        assert record.entries == []


async def test_a_trapping_watcher_gets_down_not_exit() -> None:
    """Monitors ignore trap_exits: a trapping watcher that is not linked gets only the Down."""
    async with gs.ActorSystem() as system:
        watcher, record = await start_probe(system, TrappingProbe)
        target, _ = await start_probe(system)
        monitor = await watcher.call(("monitor", target))
        target.cast(("stop", "normal"))
        await target.wait_exit()
        assert await watcher.call("ping") == "pong"
        assert record.entries == [gs.Down(monitor, target, "normal")]


async def test_messages_sent_before_exit_arrive_before_the_down() -> None:
    """What the watched actor sent before it exited reaches the watcher before its Down."""
    async with gs.ActorSystem() as system:
        watcher, record = await start_probe(system)
        target, _ = await start_probe(system)
        monitor = await watcher.call(("monitor", target))
        await target.call(("send", watcher, "last words"))
        target.cast(("stop", "done"))
        await target.wait_exit()
        assert await watcher.call("ping") == "pong"
        assert record.entries == ["last words", gs.Down(monitor, target, "done")]


async def test_link_and_monitor_both_report_in_send_order() -> None:
    """A trapping actor that links and monitors gets the message, then Exit, then Down."""
    async with gs.ActorSystem() as system:
        watcher, record = await start_probe(system, TrappingProbe)
        target, _ = await start_probe(system)
        await watcher.call(("link", target))
        monitor = await watcher.call(("monitor", target))
        await target.call(("send", watcher, "hello"))
        target.cast(("stop", "done"))
        await target.wait_exit()
        assert await watcher.call("ping") == "pong"
        assert record.entries == ["hello", gs.Exit(target, "done"), gs.Down(monitor, target, "done")]


async def test_wait_exit_returns_the_reason_to_a_plain_coroutine() -> None:
    """ref.wait_exit() completes when the actor exits, with its reason; several waiters all hear it."""
    async with gs.ActorSystem() as system:
        target, _ = await start_probe(system)
        reasons: list[object] = []

        async def wait() -> None:
            reasons.append(await target.wait_exit())

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            assert reasons == []
            target.cast(("stop", "done"))
        assert reasons == ["done", "done"]


async def test_wait_exit_on_a_dead_actor_returns_its_reason_at_once() -> None:
    """wait_exit on an actor already gone returns the reason it exited with, not "noproc"."""
    async with gs.ActorSystem() as system:
        target, _ = await start_probe(system)
        target.cast("crash")
        crash = await target.wait_exit()
        assert isinstance(crash, RuntimeError)
        with anyio.fail_after(1):
            assert await target.wait_exit() is crash


async def test_down_and_monitor_are_values_and_handles() -> None:
    """Down compares by value and is frozen; a Monitor equals only itself."""
    async with gs.ActorSystem() as system:
        watcher, _ = await start_probe(system)
        target, _ = await start_probe(system)
        first = await watcher.call(("monitor", target))
        second = await watcher.call(("monitor", target))
        assert first == first
        assert first != second
        assert len({first, second}) == 2
        assert gs.Down(first, target, "x") == gs.Down(first, target, "x")
        assert gs.Down(first, target, "x") != gs.Down(second, target, "x")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            gs.Down(first, target, "x").reason = "y"  # type: ignore[misc]
