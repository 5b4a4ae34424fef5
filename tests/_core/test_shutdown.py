"""The system's exit always ends: actors stop concurrently, within the shutdown timeout, on asyncio and trio."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

import genstatem as gs
from genstatem._core._system import KILL_GRACE

pytestmark = pytest.mark.anyio

TIMEOUT = 5.0


@pytest.fixture
def anyio_backend(virtual_anyio_backend: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Virtual time on asyncio and trio: a hanging terminate costs no real time."""
    return virtual_anyio_backend


class Hangs(gs.GenStateMachine):
    """Its terminate waits for the event it was given, shielded from cancellation if asked."""

    async def init(self, arg: tuple[anyio.Event, bool, list[Any]]) -> gs.Init:
        self.release, self.shielded, self.record = arg
        return gs.Init("up", None)

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        return None

    async def terminate(self, reason: Any, state: Any, data: Any) -> None:
        self.record.append("terminating")
        with anyio.CancelScope(shield=self.shielded):
            await self.release.wait()
        self.record.append("released")


async def test_actors_whose_terminate_hangs_stop_together_within_the_timeout() -> None:
    """Twenty hanging terminates take one shutdown timeout in all, not twenty, and each one began."""
    release = anyio.Event()
    record: list[Any] = []
    async with gs.ActorSystem(shutdown_timeout=TIMEOUT) as system:
        refs = [await system.start(Hangs, (release, False, record)) for _ in range(20)]
        began = anyio.current_time()
    took = anyio.current_time() - began
    assert TIMEOUT <= took <= TIMEOUT + KILL_GRACE
    assert record == ["terminating"] * 20
    assert [await ref.wait_exit() for ref in refs if ref is not None] == ["killed"] * 20


async def test_a_terminate_hanging_in_a_shielded_scope_ends_the_exit_all_the_same(anyio_backend: Any) -> None:
    """A terminate shielded from cancellation is killed (asyncio) or abandoned with an error (trio), in time."""
    release = anyio.Event()
    record: list[Any] = []
    try:
        with capture_logs() as logs:
            async with gs.ActorSystem(shutdown_timeout=TIMEOUT) as system:
                stubborn = await system.start(Hangs, (release, True, record))
                polite = await system.start(Hangs, (release, False, record))
                began = anyio.current_time()
            took = anyio.current_time() - began
        assert took <= TIMEOUT + KILL_GRACE
        assert polite is not None
        assert await polite.wait_exit() == "killed"
        abandoned = [entry["actor"] for entry in logs if entry["event"] == "actor did not stop when killed; abandoned"]
        if anyio_backend[0] == "trio":  # trio cannot cancel through a shield
            assert abandoned == [repr(stubborn)]
            assert stubborn is not None
            assert stubborn.alive
            assert system.actors() == []
        else:  # asyncio cancels the task through anyio's shield
            assert abandoned == []
            assert stubborn is not None
            assert await stubborn.wait_exit() == "killed"
    finally:
        release.set()  # let an abandoned task end, so the run can
    assert record.count("terminating") == 2
