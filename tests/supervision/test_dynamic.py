"""DynamicSupervisor: children on demand, max_children, Ignore, restarts and shutdown."""

from __future__ import annotations

from typing import Any

import pytest

import genstatem as gs

from .helpers import Journal, worker

pytestmark = pytest.mark.anyio

DYN = gs.DynamicSupervisor


async def start_dyn(system: gs.ActorSystem, spec: gs.DynamicSupervisorSpec | None = None) -> gs.ActorRef:
    ref = await system.start(DYN, spec, name="dyn")
    assert ref is not None
    return ref


async def refs(sup: Any = "dyn") -> list[gs.ActorRef | None]:
    return [info.ref for info in await DYN.which_children(sup)]


async def test_children_start_on_demand_in_start_order_and_ids_may_repeat() -> None:
    """start_child returns each child's ref; which_children lists them in start order, ids repeating."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await system.start(DYN)
        assert sup is not None
        started = [await DYN.start_child(sup, worker(journal, "w")) for _ in range(3)]
        infos = await DYN.which_children(sup)
        assert [info.ref for info in infos] == started
        assert [(info.id, info.type) for info in infos] == [("w", "worker")] * 3
        assert len(set(started)) == 3
        assert await DYN.count_children(sup) == gs.ChildCounts(specs=3, active=3, supervisors=0, workers=3)


async def test_max_children_caps_the_children_running() -> None:
    """With max_children running, start_child raises MaxChildren; once one goes, there is room again."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_dyn(system, gs.DynamicSupervisorSpec(max_children=2))
        first = await DYN.start_child("dyn", worker(journal, "w", restart="temporary"))
        await DYN.start_child("dyn", worker(journal, "w"))
        with pytest.raises(gs.MaxChildren):
            await DYN.start_child("dyn", worker(journal, "w"))
        assert journal.inits("w") == 2
        assert first is not None
        await DYN.terminate_child("dyn", first)
        assert await DYN.start_child("dyn", worker(journal, "w")) is not None


async def test_max_children_zero_refuses_every_child() -> None:
    """max_children=0 refuses every start_child."""
    async with gs.ActorSystem() as system:
        await start_dyn(system, gs.DynamicSupervisorSpec(max_children=0))
        with pytest.raises(gs.MaxChildren):
            await DYN.start_child("dyn", worker(Journal(), "w"))


async def test_an_ignored_child_is_not_kept() -> None:
    """A child whose init returns Ignore: start_child returns None and nothing is kept."""
    journal = Journal()
    journal.plan("w", "ignore")
    async with gs.ActorSystem() as system:
        await start_dyn(system)
        assert await DYN.start_child("dyn", worker(journal, "w")) is None
        assert await refs() == []


async def test_a_child_that_fails_to_start_raises_start_error() -> None:
    """start_child raises StartError when the child's init fails, and keeps nothing."""
    journal = Journal()
    journal.plan("w", "fail")
    async with gs.ActorSystem() as system:
        await start_dyn(system)
        with pytest.raises(gs.StartError):
            await DYN.start_child("dyn", worker(journal, "w"))
        assert await refs() == []


async def test_terminate_child_stops_it_for_good() -> None:
    """terminate_child(ref) stops that child with "shutdown" and forgets it; others are untouched."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_dyn(system)
        a = await DYN.start_child("dyn", worker(journal, "a"))
        b = await DYN.start_child("dyn", worker(journal, "b"))
        assert a is not None
        await DYN.terminate_child("dyn", a)
        assert await a.wait_exit() == "shutdown"
        assert await refs() == [b]


async def test_terminate_child_of_an_unknown_ref_raises_no_such_child() -> None:
    """A ref that is not a child (or an id) raises NoSuchChild naming it."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_dyn(system)
        with pytest.raises(gs.NoSuchChild):
            await DYN.terminate_child("dyn", sup)
        with pytest.raises(gs.NoSuchChild, match="'w'"):
            await DYN.terminate_child("dyn", "w")  # type: ignore[arg-type]
        ref = await DYN.start_child("dyn", worker(journal, "w"))
        assert ref is not None
        await DYN.terminate_child("dyn", ref)
        with pytest.raises(gs.NoSuchChild):
            await DYN.terminate_child("dyn", ref)


async def test_a_permanent_child_is_restarted_in_its_place() -> None:
    """A crashed permanent child gets a new ref, listed where the old one was."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_dyn(system)
        a = await DYN.start_child("dyn", worker(journal, "a", name="a"))
        b = await DYN.start_child("dyn", worker(journal, "b"))
        assert a is not None
        a.cast("crash")
        await a.wait_exit()
        now = await refs()
        assert now[1] is b
        assert now[0] not in (None, a)
        assert now[0] == system.whereis("a")


@pytest.mark.parametrize(
    ("restart", "reason", "kept"),
    [
        ("transient", "normal", False),
        ("transient", "boom", True),
        ("temporary", "boom", False),
        ("permanent", "normal", True),
    ],
)
async def test_restart_types_under_a_dynamic_supervisor(restart: str, reason: str, kept: bool) -> None:
    """Transient children are dropped after a clean exit, temporary ones after any; the rest restart."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_dyn(system)
        ref = await DYN.start_child("dyn", worker(journal, "w", restart=restart))
        assert ref is not None
        ref.cast(("exit", reason))
        await ref.wait_exit()
        assert len(await refs()) == (1 if kept else 0)
        assert journal.inits("w") == (2 if kept else 1)


async def test_a_restart_that_is_ignored_drops_the_child() -> None:
    """A child whose init returns Ignore when restarted is dropped."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_dyn(system)
        ref = await DYN.start_child("dyn", worker(journal, "w"))
        assert ref is not None
        journal.plan("w", "ignore")
        ref.cast("crash")
        await ref.wait_exit()
        assert await refs() == []


async def test_a_failed_restart_is_retried_under_the_intensity() -> None:
    """A restart whose init fails is retried; the child shows no ref meanwhile and comes back."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_dyn(system, gs.DynamicSupervisorSpec(intensity=10, period=3600))
        ref = await DYN.start_child("dyn", worker(journal, "w"))
        assert ref is not None
        journal.plan("w", "fail", "fail")
        ref.cast("crash")
        await journal.wait_for(lambda entries: journal.inits("w") == 4)
        (new,) = await refs()
        assert new is not None
        assert await new.call("ping") == ("pong", "w")


async def test_too_many_restarts_stop_the_dynamic_supervisor() -> None:
    """More than intensity restarts in the period stop every child and the supervisor with "shutdown"."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_dyn(system, gs.DynamicSupervisorSpec(intensity=1, period=3600))
        ref = await DYN.start_child("dyn", worker(journal, "a"))
        await DYN.start_child("dyn", worker(journal, "b"))
        assert ref is not None
        ref.cast("crash")
        await ref.wait_exit()
        (ref, _) = await refs()
        assert ref is not None
        journal.clear()
        ref.cast("crash")
        assert await sup.wait_exit() == "shutdown"
        assert journal.events() == [("terminate", "a", "Crash"), ("terminate", "b", "shutdown")]
        assert system.actors() == []


async def test_children_stop_in_reverse_start_order() -> None:
    """Stopping a dynamic supervisor stops its children newest first, each with "shutdown"."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_dyn(system)
        for id in ("a", "b", "c"):
            await DYN.start_child("dyn", worker(journal, id))
        journal.clear()
        await sup.stop()
        assert journal.events() == [
            ("terminate", "c", "shutdown"),
            ("terminate", "b", "shutdown"),
            ("terminate", "a", "shutdown"),
        ]


async def test_a_dynamic_supervisor_under_a_supervisor() -> None:
    """A DynamicSupervisor child is restarted empty when it crashes, and its children went down with it."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        top = await system.start(
            gs.Supervisor,
            gs.SupervisorSpec(
                [gs.ChildSpec("workers", (DYN, gs.DynamicSupervisorSpec()), type="supervisor", name="workers")]
            ),
        )
        assert top is not None
        old = system.whereis("workers")
        assert old is not None
        child = await DYN.start_child("workers", worker(journal, "w"))
        assert child is not None
        system.exit(old, "kill")
        assert await old.wait_exit() == "killed"
        assert await child.wait_exit() == "killed"
        await gs.Supervisor.count_children(top)
        new = system.whereis("workers")
        assert new is not None
        assert new is not old
        assert await DYN.which_children("workers") == []


async def test_supervisor_only_functions_are_refused() -> None:
    """A DynamicSupervisor refuses restart_child and delete_child with an error, and keeps running."""
    async with gs.ActorSystem() as system:
        await start_dyn(system)
        with pytest.raises(ValueError, match="does not support"):
            await gs.Supervisor.restart_child("dyn", "w")
        with pytest.raises(ValueError, match="does not support"):
            await gs.Supervisor.delete_child("dyn", "w")
        assert await refs() == []
