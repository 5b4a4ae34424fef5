"""Random crash, stop and start schedules through a small tree keep the supervisors' books true.

The tree: a ``Supervisor`` (random strategy and intensity) of three named
workers (permanent, transient, temporary) and a ``DynamicSupervisor`` of
workers. After every step, and once the system has exited:

* every live actor is the top supervisor, one of its children, or one of the
  dynamic supervisor's children, and every child listed is alive;
* no name is registered to a dead actor, and a registered child's name maps
  to the ref its supervisor lists;
* once the top supervisor gives up, or the system exits, nothing is left.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

import genstatem as gs

from .helpers import Journal, worker

NAMES = {"w1": "permanent", "w2": "transient", "w3": "temporary"}
DYN = "dyn"

steps = st.one_of(
    st.tuples(st.just("crash"), st.sampled_from(sorted(NAMES))),
    st.tuples(st.just("exit_normal"), st.sampled_from(sorted(NAMES))),
    st.tuples(st.just("terminate_child"), st.sampled_from([*sorted(NAMES), DYN])),
    st.tuples(st.just("restart_child"), st.sampled_from([*sorted(NAMES), DYN])),
    st.tuples(st.just("delete_child"), st.sampled_from(sorted(NAMES))),
    st.tuples(st.just("kill_dyn"), st.none()),
    st.tuples(st.just("start_dyn_child"), st.sampled_from(["permanent", "transient", "temporary"])),
    st.tuples(st.just("crash_dyn_child"), st.integers(0, 4)),
    st.tuples(st.just("exit_dyn_child"), st.integers(0, 4)),
    st.tuples(st.just("terminate_dyn_child"), st.integers(0, 4)),
)

EXPECTED_ERRORS = (gs.ChildRunning, gs.NoSuchChild, gs.NoProcess, gs.ActorExited, gs.StartError)


async def flush(sup: Any) -> None:
    """Return once ``sup`` has handled everything queued before now (nothing if it is gone)."""
    with contextlib.suppress(gs.NoProcess, gs.ActorExited):
        await gs.Supervisor.count_children(sup)


async def dynamic_children(system: gs.ActorSystem) -> list[gs.ActorRef]:
    dyn = system.whereis(DYN)
    if dyn is None:
        return []
    try:
        infos = await gs.DynamicSupervisor.which_children(dyn)
    except (gs.NoProcess, gs.ActorExited):
        return []
    return [info.ref for info in infos if info.ref is not None]


async def run_step(system: gs.ActorSystem, top: gs.ActorRef, journal: Journal, step: tuple[str, Any]) -> None:
    kind, arg = step
    doomed: gs.ActorRef | None = None
    try:
        if kind in ("crash", "exit_normal"):
            doomed = system.whereis(arg)
            if doomed is not None:
                doomed.cast("crash" if kind == "crash" else ("exit", "normal"))
        elif kind in ("terminate_child", "restart_child", "delete_child"):
            await getattr(gs.Supervisor, kind)(top, arg)
        elif kind == "kill_dyn":
            doomed = system.whereis(DYN)
            if doomed is not None:
                victims = await dynamic_children(system)
                system.exit(doomed, "kill")
                for victim in victims:  # killed through the link to their parent
                    assert await victim.wait_exit() == "killed"
        elif kind == "start_dyn_child":
            await gs.DynamicSupervisor.start_child(DYN, worker(journal, "d", restart=arg))
        else:
            refs = await dynamic_children(system)
            if refs:
                doomed = refs[arg % len(refs)]
                if kind == "terminate_dyn_child":
                    await gs.DynamicSupervisor.terminate_child(DYN, doomed)
                else:
                    doomed.cast("crash" if kind == "crash_dyn_child" else ("exit", "normal"))
    except EXPECTED_ERRORS:
        pass
    if doomed is not None:
        await doomed.wait_exit()
    # The dynamic supervisor first (it may give up, which the top then handles), then the top.
    dyn = system.whereis(DYN)
    if dyn is not None:
        await flush(dyn)
    await flush(top)


async def check_books(system: gs.ActorSystem, top: gs.ActorRef) -> None:
    if not top.alive:
        assert system.actors() == []
        assert all(system.whereis(name) is None for name in [*NAMES, DYN])
        return
    listed = {info.id: info.ref for info in await gs.Supervisor.which_children(top)}
    dynamic = await dynamic_children(system)
    expected = {top, *(ref for ref in listed.values() if ref is not None), *dynamic}
    assert set(system.actors()) == expected
    assert all(ref.alive for ref in expected)
    for name in [*NAMES, DYN]:
        registered = system.whereis(name)
        assert registered is None or registered.alive
        assert registered == listed.get(name)


async def scenario(steps_to_run: list[tuple[str, Any]], strategy: str, intensity: int) -> None:
    journal = Journal()
    children = [worker(journal, name, restart=restart, name=name) for name, restart in NAMES.items()]
    children.insert(
        1,
        gs.ChildSpec(
            DYN, (gs.DynamicSupervisor, gs.DynamicSupervisorSpec(intensity=2, period=3600)), type="supervisor", name=DYN
        ),
    )
    with capture_logs():
        async with gs.ActorSystem() as system:
            top = await system.start(
                gs.Supervisor, gs.SupervisorSpec(children, strategy=strategy, intensity=intensity, period=3600)
            )
            assert top is not None
            for step in steps_to_run:
                await run_step(system, top, journal, step)
                await check_books(system, top)
                if not top.alive:
                    break
    assert system.actors() == []
    assert all(system.whereis(name) is None for name in [*NAMES, DYN])
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []


@settings(max_examples=50, deadline=None, database=None)
@given(
    steps_to_run=st.lists(steps, max_size=25),
    strategy=st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"]),
    intensity=st.integers(0, 8),
)
def test_random_schedules_keep_the_books_true(
    steps_to_run: list[tuple[str, Any]], strategy: str, intensity: int
) -> None:
    """After any schedule of crashes, stops and starts, the live actors are exactly the children listed."""
    anyio.run(scenario, steps_to_run, strategy, intensity)
