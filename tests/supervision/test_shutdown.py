"""Stopping children: shutdown times, a hanging or raising terminate, brutal_kill, the restart period.

These run on virtual time (asyncio's virtual loop, trio's MockClock): a
timeout of seconds passes at once and fires exactly when it is due, so the
tests can measure it without sleeping or flaking.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

import genstatem as gs

from .helpers import HangingWorker, Journal, RaisingWorker, SlowWorker, child, children, crash, worker

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend(virtual_anyio_backend: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """asyncio and trio, both on virtual time."""
    return virtual_anyio_backend


async def start_sup(system: gs.ActorSystem, specs: list[gs.ChildSpec], **options: Any) -> gs.ActorRef:
    ref = await system.start(gs.Supervisor, gs.SupervisorSpec(specs, **options), name="sup")
    assert ref is not None
    return ref


async def test_a_hanging_terminate_is_killed_after_the_shutdown_time() -> None:
    """A child whose terminate hangs is killed ("killed") once its shutdown time is up, not before."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "h", HangingWorker, shutdown=2.0)])
        ref = await child("sup", "h")
        started = anyio.current_time()
        with capture_logs() as logs:
            await gs.Supervisor.terminate_child("sup", "h")
        assert anyio.current_time() - started == pytest.approx(2.0, abs=0.01)
        assert await ref.wait_exit() == "killed"
        assert ("terminate", "h", "shutdown") in journal.entries
        assert "child did not stop cleanly" in [entry["event"] for entry in logs]


async def test_a_hanging_child_does_not_hold_up_the_others_at_shutdown() -> None:
    """At shutdown a hanging child is killed after its time and the children before it still stop."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(
            system, [worker(journal, "a"), worker(journal, "h", HangingWorker, shutdown=1.0), worker(journal, "z")]
        )
        journal.clear()
        started = anyio.current_time()
        await sup.stop("shutdown")
        assert anyio.current_time() - started == pytest.approx(1.0, abs=0.01)
        assert journal.events() == [
            ("terminate", "z", "shutdown"),
            ("terminate", "h", "shutdown"),
            ("terminate", "a", "shutdown"),
        ]
        assert system.actors() == []


async def test_a_raising_terminate_is_logged_and_the_shutdown_goes_on() -> None:
    """A child whose terminate raises still exits with "shutdown"; the others stop; it is logged."""
    journal = Journal()
    with capture_logs() as logs:
        async with gs.ActorSystem() as system:
            sup = await start_sup(system, [worker(journal, "a"), worker(journal, "r", RaisingWorker)])
            ref = await child("sup", "r")
            journal.clear()
            await sup.stop()
            assert await ref.wait_exit() == "shutdown"
    assert journal.events() == [("terminate", "r", "shutdown"), ("terminate", "a", "shutdown")]
    assert "terminate raised" in [entry["event"] for entry in logs if entry["log_level"] == "error"]


async def test_brutal_kill_kills_at_once_with_no_terminate() -> None:
    """A "brutal_kill" child is killed at once: reason "killed", no terminate, no time passes."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "b", HangingWorker, shutdown="brutal_kill")])
        ref = await child("sup", "b")
        journal.clear()
        started = anyio.current_time()
        await gs.Supervisor.terminate_child("sup", "b")
        assert anyio.current_time() == started
        assert await ref.wait_exit() == "killed"
        assert journal.entries == []


async def test_shutdown_none_waits_as_long_as_terminate_takes() -> None:
    """shutdown=None waits for terminate however long it takes (here an hour): the child is not killed."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "s", SlowWorker, shutdown=None)])
        ref = await child("sup", "s")
        started = anyio.current_time()
        await gs.Supervisor.terminate_child("sup", "s")
        assert anyio.current_time() - started >= 3600
        assert await ref.wait_exit() == "shutdown"
        assert ("terminate", "s", "shutdown") in journal.entries


async def test_a_terminate_that_ends_in_time_is_not_killed() -> None:
    """A child that stops within its shutdown time exits "shutdown"; the kill timer is dropped."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "s", SlowWorker, shutdown=7200.0)])
        ref = await child("sup", "s")
        await gs.Supervisor.terminate_child("sup", "s")
        assert await ref.wait_exit() == "shutdown"
        await anyio.sleep(7200)  # the timer, had it survived, would have fired by now
        assert await children("sup") == {"s": None}


async def test_a_call_timeout_applies_to_a_busy_supervisor() -> None:
    """An API call with timeout= raises CallTimeout while the supervisor waits on a slow child."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "s", SlowWorker, shutdown=None)])
        async with anyio.create_task_group() as tg:
            tg.start_soon(gs.Supervisor.terminate_child, "sup", "s")
            await journal.wait_for(lambda entries: ("stopping", "s") in entries)
            with pytest.raises(gs.CallTimeout):
                await gs.Supervisor.which_children("sup", timeout=1.0)
        assert await children("sup") == {"s": None}


async def test_a_supervisor_stopped_while_stopping_a_child_still_waits_for_it() -> None:
    """If the supervisor is stopped while it stops a child, its terminate waits for that child first."""
    journal = Journal()
    outcome: list[Any] = []

    async def terminate_child(sup: gs.ActorRef) -> None:
        try:
            await gs.Supervisor.terminate_child(sup, "s")
        except gs.ActorExited as exc:
            outcome.append(exc.reason)

    async with anyio.create_task_group() as tg, gs.ActorSystem(shutdown_timeout=10**5) as system:
        sup = await start_sup(system, [worker(journal, "a"), worker(journal, "s", SlowWorker, shutdown=None)])
        tg.start_soon(terminate_child, sup)
        await journal.wait_for(lambda entries: ("stopping", "s") in entries)
        journal.clear()
        # leaving the block stopped the supervisor in the middle of terminate_child
    assert journal.events() == [("terminate", "s", "shutdown"), ("terminate", "a", "shutdown")]
    assert outcome == ["shutdown"]
    assert system.actors() == []


async def test_restarts_older_than_the_period_do_not_count() -> None:
    """Only restarts within the last `period` seconds count toward the intensity."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "a")], intensity=1, period=10.0)
        await crash("sup", "a")
        await anyio.sleep(11)
        await crash("sup", "a")
        assert sup.alive
        (await child("sup", "a")).cast("crash")
        assert await sup.wait_exit() == "shutdown"
        assert journal.inits("a") == 3


async def test_the_system_exit_gives_each_child_its_shutdown_time() -> None:
    """On system exit, a hanging child is killed after its own shutdown time, then the rest stop."""
    journal = Journal()
    async with gs.ActorSystem(shutdown_timeout=100.0) as system:
        await start_sup(system, [worker(journal, "a"), worker(journal, "h", HangingWorker, shutdown=3.0)])
        journal.clear()
        started = anyio.current_time()
    assert anyio.current_time() - started == pytest.approx(3.0, abs=0.01)
    assert journal.events() == [("terminate", "h", "shutdown"), ("terminate", "a", "shutdown")]
    assert system.actors() == []


async def test_a_killed_supervisor_takes_its_children_down() -> None:
    """A supervisor killed while its children hang in terminate leaves nothing running: they are killed too."""
    journal = Journal()
    async with gs.ActorSystem(shutdown_timeout=1.0) as system:
        await start_sup(system, [worker(journal, "h", HangingWorker, shutdown=None)])
        hanging = await child("sup", "h")
    assert await hanging.wait_exit() == "killed"
    assert system.actors() == []
