"""The mailbox limit: casts and sends over it are dropped and counted, calls refused, notices always let in."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

import genstatem as gs
from genstatem import lowlevel

pytestmark = pytest.mark.anyio

LIMIT = 10


@pytest.fixture
def anyio_backend(virtual_anyio_backend: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Virtual time on asyncio and trio: the warning's rate limit is on the system clock."""
    return virtual_anyio_backend


class Counter(gs.GenStateMachine):
    """Counts casts and infos; replies to a call with the count; traps exits, so an ``Exit`` is an info."""

    trap_exits = True

    async def init(self, arg: Any) -> gs.Init:
        self.count = 0
        self.infos: list[Any] = []
        return gs.Init("counting", None)

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Call):
            return gs.KeepState(actions=gs.Reply(event_type.caller, self.count))
        if isinstance(event_type, gs.Info):
            self.infos.append(content)
        self.count += 1
        return None


async def _counter(system: gs.ActorSystem, limit: int | None = LIMIT) -> tuple[gs.ActorRef, Counter]:
    ref = await system.start(Counter, mailbox_limit=limit)
    assert ref is not None
    return ref, lowlevel.behaviour_of(system, ref)


async def test_casts_and_sends_over_the_limit_are_dropped() -> None:
    """A full mailbox drops the casts and sends that arrive, and keeps the ones before."""
    async with gs.ActorSystem() as system:
        ref, counter = await _counter(system)
        for i in range(LIMIT + 5):
            ref.cast(i)
        ref.send("over")
        gs.cast(ref, "over")
        assert await ref.get_state() == ("counting", None)
        assert counter.count == LIMIT
        ref.send("room again")
        assert await ref.call("count") == LIMIT + 1


async def test_a_call_over_the_limit_fails_at_once_with_mailbox_full() -> None:
    """A call to an actor whose mailbox is full raises MailboxFull without waiting; later calls get through."""
    async with gs.ActorSystem() as system:
        ref, _ = await _counter(system)
        for i in range(LIMIT):
            ref.cast(i)
        with pytest.raises(gs.MailboxFull, match="full") as raised:
            await ref.call("count", timeout=None)
        assert raised.value.limit == LIMIT
        assert system.now() == 0
        await ref.get_state()
        assert await ref.call("count") == LIMIT


async def test_exit_signals_downs_and_system_messages_always_get_in() -> None:
    """The limit turns away only what others send: Exit, Down, get_state and stop still arrive."""
    async with gs.ActorSystem() as system:
        ref, counter = await _counter(system, limit=1)
        other, _ = await _counter(system, limit=None)
        counter.link(other)
        counter.monitor(other)
        ref.cast("fills it")
        await other.stop("bye")
        assert await ref.get_state() == ("counting", None)
        assert sorted(type(info).__name__ for info in counter.infos) == ["Down", "Exit"]
        await ref.stop("done")
        assert await ref.wait_exit() == "done"


async def test_a_full_mailbox_warns_at_most_once_a_second_and_counts_everything() -> None:
    """The drops are counted, and logged as a warning at most once per second of the system clock."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Sink, mailbox_limit=LIMIT)
        assert ref is not None
        sink = lowlevel.behaviour_of(system, ref)
        with capture_logs() as logs:
            for i in range(LIMIT + 100):
                ref.cast(i)
            await ref.get_state()
            for i in range(LIMIT + 1):
                ref.cast(i)
            await ref.get_state()
            await anyio.sleep(1.0)
            for i in range(LIMIT + 1):
                ref.cast(i)
        warnings = [entry for entry in logs if entry["event"] == "mailbox full: messages turned away"]
        counts = [(w["since_last_warning"], w["total"], w["limit"]) for w in warnings]
        assert counts == [(1, 1, LIMIT), (101, 102, LIMIT)]
        assert warnings[0]["actor"] == repr(ref)
        assert sink.actor.mailbox.dropped == 102
        assert sink.actor.mailbox.limit == LIMIT


class Sink:
    """A behaviour on the low-level API that takes everything and answers ``get_state``."""

    trap_exits = False

    async def actor_init(self, actor: lowlevel.Actor, arg: Any) -> None:
        self.actor = actor
        return None

    async def actor_run(self) -> Any:
        while True:
            kind, content = await self.actor.receive()
            if kind is lowlevel.SYSTEM:
                if isinstance(content, lowlevel.GetState):
                    content.caller.resolve(("sink", None))
                elif isinstance(content, lowlevel.StopRequest):
                    return content.reason

    async def actor_terminate(self, reason: Any) -> None:
        return None

    def actor_state(self) -> Any:
        return "sink"


async def test_a_delivered_call_over_the_limit_fails_its_caller_with_mailbox_full() -> None:
    """deliver_call, a network's way in, obeys the same limit: the caller fails with MailboxFull."""
    async with gs.ActorSystem() as system:
        ref, _ = await _counter(system, limit=1)
        assert isinstance(ref, lowlevel.LocalRef)
        ref.cast("fills it")
        caller = lowlevel.new_caller(system)
        assert lowlevel.deliver_call(ref, caller, "count")
        with pytest.raises(gs.MailboxFull):
            await caller.wait(None)


async def test_unbounded_is_the_default_and_a_bad_limit_is_refused() -> None:
    """Without a limit nothing is dropped; a limit that is not a positive integer raises ValueError."""
    async with gs.ActorSystem() as system:
        ref, _ = await _counter(system, limit=None)
        for i in range(10_000):
            ref.cast(i)
        assert await ref.call("count") == 10_000
        for bad in (0, -1, 1.5, True, "10"):
            with pytest.raises(ValueError, match="mailbox_limit"):
                await system.start(Counter, mailbox_limit=bad)
