"""Links and exit signals: propagation, trapping, the parent's privilege, unlink, start_link."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import attrs
import pytest

import genstatem as gs

from .helpers import Probe, Record, TrappingProbe, start_probe

pytestmark = pytest.mark.anyio


async def test_a_crash_propagates_through_a_link_with_the_same_reason() -> None:
    """An actor linked to one that crashes exits with the very same exception, after its terminate."""
    async with gs.ActorSystem() as system:
        a, a_record = await start_probe(system)
        b, _ = await start_probe(system)
        await a.call(("link", b))
        b.cast("crash")
        reason = await a.wait_exit()
        assert isinstance(reason, RuntimeError)
        assert reason is await b.wait_exit()
        assert a_record.terminated() == [reason]


async def test_links_are_bidirectional() -> None:
    """A link made by one side stops the linker when the other side exits abnormally."""
    async with gs.ActorSystem() as system:
        a, _ = await start_probe(system)
        b, b_record = await start_probe(system)
        await a.call(("link", b))
        a.cast(("stop", "broken"))
        assert await b.wait_exit() == "broken"
        assert b_record.terminated() == ["broken"]


async def test_a_normal_exit_does_not_propagate() -> None:
    """An actor that does not trap exits ignores a linked actor's "normal" exit."""
    async with gs.ActorSystem() as system:
        a, a_record = await start_probe(system)
        b, _ = await start_probe(system)
        await a.call(("link", b))
        b.cast(("stop", "normal"))
        assert await b.wait_exit() == "normal"
        assert await a.call("ping") == "pong"
        assert a_record.entries == []


@pytest.mark.parametrize("reason", ["shutdown", ("shutdown", "detail"), "noconnection"])
async def test_every_reason_but_normal_propagates(reason: object) -> None:
    """ "shutdown", ("shutdown", detail) and other reasons stop a linked actor with that reason."""
    async with gs.ActorSystem() as system:
        a, a_record = await start_probe(system)
        b, _ = await start_probe(system)
        await a.call(("link", b))
        b.cast(("stop", reason))
        assert await a.wait_exit() == reason
        assert a_record.terminated() == [reason]


async def test_trap_exits_turns_signals_into_exit_infos() -> None:
    """A trapping actor gets Info events with Exit(ref, reason) for each linked exit, "normal" included."""
    async with gs.ActorSystem() as system:
        trapper, record = await start_probe(system, TrappingProbe)
        b, _ = await start_probe(system)
        c, _ = await start_probe(system)
        await trapper.call(("link", b))
        await trapper.call(("link", c))
        b.cast(("stop", "normal"))
        await b.wait_exit()
        c.cast("crash")
        crash = await c.wait_exit()
        assert await trapper.call("ping") == "pong"
        assert record.entries == [gs.Exit(b, "normal"), gs.Exit(c, crash)]


async def test_a_trapping_actor_takes_the_other_side_down_when_it_crashes() -> None:
    """Trapping is one-sided: the trapping actor's own crash still stops a linked actor that does not trap."""
    async with gs.ActorSystem() as system:
        trapper, _ = await start_probe(system, TrappingProbe)
        b, b_record = await start_probe(system)
        await trapper.call(("link", b))
        trapper.cast("crash")
        reason = await b.wait_exit()
        assert isinstance(reason, RuntimeError)
        assert b_record.terminated() == [reason]


async def test_the_parents_signal_stops_a_trapping_child() -> None:
    """An exit signal from the actor that start_linked it stops a child even though it traps exits."""
    async with gs.ActorSystem() as system:
        parent, _ = await start_probe(system)
        child_record = Record()
        child = await parent.call(("start_link", TrappingProbe, child_record))
        assert isinstance(child, gs.ActorRef)
        parent.cast(("stop", "going"))
        assert await child.wait_exit() == "going"
        assert child_record.terminated() == ["going"]
        assert child_record.exits() == []


async def test_a_parents_normal_exit_stops_a_trapping_child() -> None:
    """Even "normal" from the parent stops a trapping child, as OTP behaviours do."""
    async with gs.ActorSystem() as system:
        parent, _ = await start_probe(system)
        child_record = Record()
        child = await parent.call(("start_link", TrappingProbe, child_record))
        assert isinstance(child, gs.ActorRef)
        parent.cast(("stop", "normal"))
        assert await child.wait_exit() == "normal"
        assert child_record.terminated() == ["normal"]


async def test_a_child_exit_reaches_a_trapping_parent_as_exit() -> None:
    """A start_linked child's exit reaches its trapping parent as Exit(child, reason)."""
    async with gs.ActorSystem() as system:
        parent, record = await start_probe(system, TrappingProbe)
        child = await parent.call(("start_link", Probe, Record()))
        assert isinstance(child, gs.ActorRef)
        child.cast(("stop", "done"))
        await child.wait_exit()
        assert await parent.call("ping") == "pong"
        assert record.exits() == [gs.Exit(child, "done")]


async def test_a_killed_signal_runs_no_terminate() -> None:
    """A linked actor that exits with "killed" takes the other down with "killed" and no terminate."""
    async with gs.ActorSystem() as system:
        a, a_record = await start_probe(system)
        b, _ = await start_probe(system)
        await a.call(("link", b))
        b.cast(("stop", "killed"))
        assert await a.wait_exit() == "killed"
        assert a_record.terminated() == []


async def test_a_trapping_actor_gets_killed_as_an_exit() -> None:
    """A trapping actor receives a linked actor's "killed" exit as an Exit and keeps running."""
    async with gs.ActorSystem() as system:
        trapper, record = await start_probe(system, TrappingProbe)
        b, _ = await start_probe(system)
        await trapper.call(("link", b))
        b.cast(("stop", "killed"))
        await b.wait_exit()
        assert await trapper.call("ping") == "pong"
        assert record.exits() == [gs.Exit(b, "killed")]


async def test_linking_to_a_dead_actor_is_an_exit_signal_noproc() -> None:
    """link() to an actor already gone stops a non-trapping linker with "noproc"."""
    async with gs.ActorSystem() as system:
        a, a_record = await start_probe(system)
        dead, _ = await start_probe(system)
        await dead.stop()
        with contextlib.suppress(gs.ActorExited):  # the signal may win the race with the reply
            await a.call(("link", dead))
        assert await a.wait_exit() == "noproc"
        assert a_record.terminated() == ["noproc"]


async def test_linking_to_a_dead_actor_while_trapping_delivers_exit_noproc() -> None:
    """A trapping actor that links to a dead actor gets Exit(ref, "noproc") and keeps running."""
    async with gs.ActorSystem() as system:
        trapper, record = await start_probe(system, TrappingProbe)
        dead, _ = await start_probe(system)
        await dead.stop()
        await trapper.call(("link", dead))
        assert await trapper.call("ping") == "pong"
        assert record.entries == [gs.Exit(dead, "noproc")]


async def test_unlink_removes_the_link_both_ways() -> None:
    """After unlink, an abnormal exit on either side no longer reaches the other."""
    async with gs.ActorSystem() as system:
        a, _ = await start_probe(system)
        b, _ = await start_probe(system)
        c, _ = await start_probe(system)
        await a.call(("link", b))
        await a.call(("link", c))
        await a.call(("unlink", b))
        await c.call(("unlink", a))
        b.cast(("stop", "broken"))
        c.cast(("stop", "broken"))
        await b.wait_exit()
        await c.wait_exit()
        assert await a.call("ping") == "pong"


async def test_unlink_drops_an_exit_already_queued() -> None:
    """An Exit queued before unlink returns is dropped: after unlink the link has no effect."""
    async with gs.ActorSystem() as system:
        trapper, record = await start_probe(system, TrappingProbe)
        b, _ = await start_probe(system)
        await trapper.call(("link", b))
        release = anyio.Event()
        trapper.cast(("block_then", release, ("unlink", b)))
        b.cast(("stop", "broken"))
        await b.wait_exit()  # its Exit now waits in the trapper's mailbox
        release.set()
        assert await trapper.call("ping") == "pong"
        assert record.exits() == []


async def test_start_link_failure_raises_start_error_and_sends_no_signal() -> None:
    """A child whose init fails makes start_link raise StartError; the parent gets no exit signal."""
    async with gs.ActorSystem() as system:
        for cls in (Probe, TrappingProbe):
            parent, record = await start_probe(system, cls)
            error = await parent.call(("start_link", Probe, (Record(), "fail")))
            assert isinstance(error, gs.StartError)
            assert isinstance(error.reason, RuntimeError)
            assert await parent.call("ping") == "pong"
            assert record.entries == []


async def test_an_exit_signal_cancels_an_awaiting_callback_then_terminate_runs() -> None:
    """A signal that stops an actor cancels the callback it is awaiting in; terminate then runs."""
    async with gs.ActorSystem() as system:
        a, a_record = await start_probe(system)
        b, _ = await start_probe(system)
        await a.call(("link", b))
        a.cast("hang")
        await a_record.wait_for(lambda entry: entry == "hanging")
        b.cast(("stop", "broken"))
        with anyio.fail_after(10):
            assert await a.wait_exit() == "broken"
        assert a_record.entries == ["hanging", ("terminate", "broken")]


async def test_messages_sent_before_exit_arrive_before_the_exit() -> None:
    """What a linked actor sent before it exited reaches a trapping actor before its Exit."""
    async with gs.ActorSystem() as system:
        trapper, record = await start_probe(system, TrappingProbe)
        b, _ = await start_probe(system)
        await trapper.call(("link", b))
        await b.call(("send", trapper, "first"))
        await b.call(("send", trapper, "second"))
        b.cast(("stop", "done"))
        await b.wait_exit()
        assert await trapper.call("ping") == "pong"
        assert record.entries == ["first", "second", gs.Exit(b, "done")]


async def test_exit_is_a_frozen_value() -> None:
    """Exit(ref, reason) compares by value and cannot be changed."""
    async with gs.ActorSystem() as system:
        a, _ = await start_probe(system)
        assert gs.Exit(a, "x") == gs.Exit(a, "x")
        assert gs.Exit(a, "x") != gs.Exit(a, "y")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            gs.Exit(a, "x").reason = "y"  # type: ignore[misc]


class StartsAKidThenFails(gs.GenStateMachine):
    """Its init start_links a probe (recording into the Record it is given), then raises."""

    async def init(self, record: Record) -> gs.Init:
        kid = await self.start_link(Probe, record)
        assert kid is not None
        record.add(("kid", kid))
        raise RuntimeError("init failed after starting a kid")


async def test_an_init_that_fails_takes_down_what_it_linked_but_not_its_parent() -> None:
    """When init fails, actors it linked to hear the exit; the caller of start_link hears only StartError."""
    async with gs.ActorSystem() as system:
        parent, parent_record = await start_probe(system, TrappingProbe)
        kid_record = Record()
        error = await parent.call(("start_link", StartsAKidThenFails, kid_record))
        assert isinstance(error, gs.StartError)
        (_, kid), *_ = kid_record.entries
        reason = await kid.wait_exit()
        assert reason is error.reason
        assert kid_record.terminated() == [reason]
        assert await parent.call("ping") == "pong"
        assert parent_record.entries == []
        assert system.actors() == [parent]


class _Linker(gs.GenStateMachine):
    """Links to what a cast names; records every other cast it handles."""

    async def init(self, seen: list[Any]) -> gs.Init:
        self.seen = seen
        return gs.Init("up", None)

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match content:
            case ("link", ref):
                self.link(ref)
            case other:
                self.seen.append(other)
        return None


@pytest.mark.anyio
async def test_an_exit_signal_takes_effect_before_the_events_already_queued() -> None:
    """A signal that stops an actor lands before its next event, even with a full mailbox."""
    seen: list[Any] = []
    async with gs.ActorSystem() as system:
        dead = await system.start(_Linker, [])
        linker = await system.start(_Linker, seen)
        assert dead is not None
        assert linker is not None
        await dead.stop()
        linker.cast(("link", dead))
        for n in range(3):
            linker.cast(n)
        assert await linker.wait_exit() == "noproc"
    assert seen == []
