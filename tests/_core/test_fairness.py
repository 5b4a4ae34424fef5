"""Fairness: a busy actor yields to the event loop, so it freezes neither other actors nor timers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

import genstatem as gs
from genstatem.lowlevel import EVENT_BUDGET, behaviour_of

pytestmark = pytest.mark.anyio

EVENTS = 20 * EVENT_BUDGET
"""How many events the busy actor handles in all: many budgets' worth."""


class Busy(gs.GenStateMachine):
    """Counts its casts; ``"loop"`` casts itself ``"loop"`` again until ``EVENTS`` are done.

    At its first event it runs ``on_first`` (set by the test): whatever that
    starts can only happen once this actor lets the event loop run.
    """

    count = 0
    on_first: Callable[[], None] = staticmethod(lambda: None)

    async def init(self, arg: Any) -> gs.Init:
        self.done = anyio.Event()
        return gs.Init("busy", None)

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Call):
            return gs.KeepState(actions=gs.Reply(event_type.caller, self.count))
        self.count += 1
        if self.count == 1:
            self.on_first()
        if self.count == EVENTS:
            self.done.set()
        elif content == "loop":
            self.ref.cast("loop")
        return None


class Idle(gs.GenStateMachine):
    """On ``"look"``, notes how many events the busy actor has handled; a call returns the notes."""

    async def init(self, busy: Busy) -> gs.Init:
        return gs.Init("idle", busy)

    def handle_event(self, event_type: Any, content: Any, state: Any, busy: Busy) -> Any:
        if isinstance(event_type, gs.Call):
            return gs.KeepState(actions=gs.Reply(event_type.caller, self.seen))
        self.seen = busy.count
        return None


async def _busy_and_idle(system: gs.ActorSystem) -> tuple[gs.ActorRef, Busy, gs.ActorRef]:
    ref = await system.start(Busy)
    assert ref is not None
    busy = behaviour_of(system, ref)
    idle = await system.start(Idle, busy)
    assert idle is not None
    busy.on_first = lambda: idle.cast("look")
    return ref, busy, idle


async def test_an_actor_casting_to_itself_does_not_freeze_another() -> None:
    """An actor handles its message while another casts to itself without pause."""
    async with gs.ActorSystem() as system:
        ref, busy, idle = await _busy_and_idle(system)
        ref.cast("loop")
        await busy.done.wait()
        assert await idle.call("seen") < EVENTS // 2


async def test_draining_a_long_mailbox_does_not_freeze_another() -> None:
    """An actor handles its message while another drains a long mailbox of sync handlers."""
    async with gs.ActorSystem() as system:
        ref, _, idle = await _busy_and_idle(system)
        for _ in range(EVENTS):
            ref.cast("tick")
        assert await ref.call("count", timeout=None) == EVENTS
        assert await idle.call("seen") < EVENTS // 2


async def test_a_timer_fires_while_an_actor_drains_a_long_mailbox() -> None:
    """A due timer runs between a busy actor's events, not after its whole mailbox."""
    async with gs.ActorSystem() as system:
        ref, busy, _ = await _busy_and_idle(system)
        fired = anyio.Event()
        seen: list[int] = []

        def fire() -> None:
            seen.append(busy.count)
            fired.set()

        def start_timer() -> None:
            system.call_later(0, fire)

        busy.on_first = start_timer
        for _ in range(EVENTS):
            ref.cast("tick")
        await fired.wait()
        assert seen[0] < EVENTS // 2
        assert await ref.call("count", timeout=None) == EVENTS
