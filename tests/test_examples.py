"""The code lock example (examples/code_lock.py) and its ``python -m genstatem code-lock`` demo."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

import genstatem as gs

from .helpers import load_example

code_lock = load_example("code_lock")

LONG = 60.0
"""A timeout no test waits for."""


class TimeoutSeen:
    """A tracer that sets ``event`` once a handler has handled an event of ``kind``."""

    def __init__(self, kind: type[Any]) -> None:
        self.kind = kind
        self.event = anyio.Event()

    def __call__(self, step: gs.TraceEvent) -> None:
        if step.kind == "transition" and isinstance(step.event_type, self.kind):
            self.event.set()


async def start_lock(system: gs.ActorSystem, *, open_for: float = LONG, forget_after: float = LONG) -> gs.ActorRef:
    """A lock with code 1234 and the given timeouts."""
    ref = await system.start(code_lock.CodeLock, code_lock.Settings("1234", open_for, forget_after))
    assert ref is not None
    return ref


async def typed(lock: gs.ActorRef) -> str:
    """The buttons the lock holds right now (between events)."""
    _, data = await lock.get_state()
    result: str = data.typed
    return result


@pytest.fixture
async def system() -> AsyncIterator[gs.ActorSystem]:
    """A running actor system, stopped after the test."""
    async with gs.ActorSystem() as system:
        yield system


@pytest.mark.anyio
async def test_the_lock_starts_locked(system: gs.ActorSystem) -> None:
    """A new lock is locked and holds no buttons."""
    lock = await start_lock(system)
    assert await code_lock.status(lock) == "locked"
    assert await lock.get_state() == ("locked", code_lock.LockData(code_lock.Settings("1234", LONG, LONG)))


@pytest.mark.anyio
async def test_the_right_code_opens_the_door(system: gs.ActorSystem) -> None:
    """Typing the code opens the door and clears the buttons held."""
    lock = await start_lock(system)
    code_lock.press(lock, "1234")
    assert await code_lock.status(lock) == "open"
    assert await typed(lock) == ""


@pytest.mark.anyio
async def test_a_wrong_code_keeps_the_door_locked(system: gs.ActorSystem) -> None:
    """A wrong code leaves the door locked, holding the last four buttons."""
    lock = await start_lock(system)
    code_lock.press(lock, "1243")
    assert await code_lock.status(lock) == "locked"
    code_lock.press(lock, "567")
    assert await code_lock.status(lock) == "locked"
    assert await typed(lock) == "3567"


@pytest.mark.anyio
async def test_the_code_opens_after_wrong_buttons(system: gs.ActorSystem) -> None:
    """The lock keeps only the last four buttons, so the code opens it after wrong ones."""
    lock = await start_lock(system)
    code_lock.press(lock, "99123")
    assert await code_lock.status(lock) == "locked"
    code_lock.press(lock, "4")
    assert await code_lock.status(lock) == "open"


@pytest.mark.anyio
async def test_the_state_timeout_locks_the_open_door(system: gs.ActorSystem) -> None:
    """The door locks itself again ``open_for`` seconds after it opened, not before."""
    open_for = 0.05
    lock = await start_lock(system, open_for=open_for)
    code_lock.press(lock, "1234")
    assert await code_lock.status(lock) == "open"
    opened = anyio.current_time()
    await code_lock.wait_until_locked(lock, timeout=10)
    # asyncio may run a timer up to one clock tick early: allow for it.
    assert anyio.current_time() - opened >= open_for - 0.01
    assert await code_lock.status(lock) == "locked"


@pytest.mark.anyio
async def test_the_door_can_be_opened_again_after_it_locked(system: gs.ActorSystem) -> None:
    """After the state timeout locks it, the code opens the door again."""
    lock = await start_lock(system, open_for=0.01)
    code_lock.press(lock, "1234")
    await code_lock.wait_until_locked(lock, timeout=10)
    code_lock.press(lock, "1234")
    assert await code_lock.status(lock) == "open"


@pytest.mark.anyio
async def test_wait_until_locked_is_postponed_while_open_and_answered_once_locked(system: gs.ActorSystem) -> None:
    """``wait_until_locked`` answers at once when locked, and only after the state change when open."""
    lock = await start_lock(system)
    await code_lock.wait_until_locked(lock, timeout=10)
    code_lock.press(lock, "1234")
    with pytest.raises(gs.CallTimeout):
        await code_lock.wait_until_locked(lock, timeout=0.05)
    assert await code_lock.status(lock) == "open"


@pytest.mark.anyio
async def test_buttons_pressed_while_open_are_ignored(system: gs.ActorSystem) -> None:
    """Buttons pressed while the door is open are dropped, not kept for after it locks."""
    lock = await start_lock(system, open_for=0.05)
    # All cast before the door even opens: they are queued ahead of the state timeout.
    code_lock.press(lock, "1234" + "5678")
    assert await code_lock.status(lock) == "open"
    assert await typed(lock) == ""
    await code_lock.wait_until_locked(lock, timeout=10)
    assert await lock.get_state() == ("locked", code_lock.LockData(code_lock.Settings("1234", 0.05, LONG)))


@pytest.mark.anyio
async def test_the_event_timeout_forgets_a_half_typed_code(system: gs.ActorSystem) -> None:
    """A half-typed code is forgotten once no event came for ``forget_after`` seconds."""
    lock = await start_lock(system, forget_after=0.05)
    fired = TimeoutSeen(gs.EventTimeout)
    lock.trace(tracer=fired)
    code_lock.press(lock, "12")
    assert await typed(lock) == "12"
    with anyio.fail_after(10):
        await fired.event.wait()
    assert await typed(lock) == ""
    code_lock.press(lock, "34")
    assert await code_lock.status(lock) == "locked"


@pytest.mark.anyio
async def test_a_status_query_between_buttons_keeps_the_half_typed_code(system: gs.ActorSystem) -> None:
    """A code typed in two parts, with a status query in between, still opens the door."""
    lock = await start_lock(system, forget_after=LONG)
    fired = TimeoutSeen(gs.EventTimeout)
    lock.trace(tracer=fired)
    code_lock.press(lock, "12")
    assert await code_lock.status(lock) == "locked"
    assert await typed(lock) == "12"
    code_lock.press(lock, "34")
    assert await code_lock.status(lock) == "open"
    assert not fired.event.is_set()


@pytest.mark.anyio
async def test_a_status_query_does_not_make_the_lock_remember_forever(system: gs.ActorSystem) -> None:
    """A status call cancels the event timeout, and the lock sets it again: the code is still forgotten."""
    lock = await start_lock(system, forget_after=0.05)
    fired = TimeoutSeen(gs.EventTimeout)
    lock.trace(tracer=fired)
    code_lock.press(lock, "12")
    assert await code_lock.status(lock) == "locked"
    with anyio.fail_after(10):
        await fired.event.wait()
    assert await typed(lock) == ""


@pytest.mark.anyio
async def test_stopping_an_open_lock_locks_the_door_first(system: gs.ActorSystem) -> None:
    """``terminate`` locks the door when the lock stops while open."""
    lock = await start_lock(system)
    code_lock.press(lock, "1234")
    assert await code_lock.status(lock) == "open"
    with capture_logs() as logs:
        await lock.stop()
    assert not lock.alive
    assert [entry["event"] for entry in logs if entry["event"].startswith("door")] == ["door locked"]


@pytest.mark.anyio
async def test_the_client_api_takes_a_registered_name() -> None:
    """``press``, ``status`` and ``wait_until_locked`` work with the lock's registered name."""
    async with gs.ActorSystem() as system:
        await system.start(code_lock.CodeLock, code_lock.Settings("42", open_for=0.01), name="front door")
        code_lock.press("front door", "42")
        assert await code_lock.status("front door") == "open"
        await code_lock.wait_until_locked("front door", timeout=10)
        assert await code_lock.status("front door") == "locked"


def test_python_m_genstatem_tells_the_code_lock_story() -> None:
    """``python -m genstatem code-lock`` runs the code lock demo, prints its story and exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "genstatem", "code-lock"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    expected = [
        "typed 1 2 3 4 -> open",
        "typed 5 while open -> open",
        "s later: locked",
        "typed 1 2 -> locked",
        "typed so far ''",
        "typed 3 4 -> locked",
        "typed 9 1 2 3 4 -> open",
        "stopped the lock (alive: False)",
    ]
    found = [next((i for i, line in enumerate(lines) if part in line), -1) for part in expected]
    assert -1 not in found, done.stdout
    assert found == sorted(found), done.stdout
    assert done.stderr == ""
