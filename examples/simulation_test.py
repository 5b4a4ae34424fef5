"""A simulation test to copy for your own protocol (here: ping_pong.Pinger).

Run it with pytest (``pytest examples/simulation_test.py``). Each seed is a
different hostile network: lost, duplicated, delayed and reordered
messages, a partition, and a node that crashes and comes back. The checks
are the protocol's promises. A failing seed replays exactly, so the
assertion message names it: re-run that one seed and read its trace.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import genstatem as gs
from genstatem.testing import Faults, Simulation

sys.path.insert(0, str(Path(__file__).parent))
from ping_pong import Pinger


def pinger_node(peer: str) -> Any:
    async def setup(system: gs.ActorSystem) -> None:
        await system.start(Pinger, (peer, 1.0), name="pinger")

    return setup


async def stats(sim: Simulation, node: str) -> dict[str, Any]:
    ref = sim.system(node).whereis("pinger")
    assert ref is not None
    result: dict[str, Any] = await ref.call("stats")
    return result


async def hostile_run(sim: Simulation) -> dict[str, Any]:
    """Ten minutes of a hostile network, then a quiet minute."""
    await sim.start_node("a", pinger_node("b"))
    await sim.start_node("b", pinger_node("a"))
    rnd = sim.random  # draw every choice from the simulation's seeded generator
    sim.faults = Faults(
        drop=rnd.uniform(0, 0.3), duplicate=rnd.uniform(0, 0.2), reorder=rnd.uniform(0, 0.5), delay=(0.001, 3.0)
    )
    await sim.sleep(rnd.uniform(60, 240))
    sim.partition(["a"], ["b"])
    await sim.sleep(rnd.uniform(10, 60))
    sim.heal()
    await sim.crash("b")
    await sim.sleep(rnd.uniform(1, 30))
    await sim.restart("b")
    await sim.sleep(rnd.uniform(60, 240))
    sim.faults = Faults()  # quiet: now the protocol must make progress
    before = await stats(sim, "a")
    await sim.sleep(60)
    return {"before": before, "after": await stats(sim, "a"), "b": await stats(sim, "b")}


@pytest.mark.parametrize("seed", range(20))
def test_pings_are_answered_through_a_hostile_network(seed: int) -> None:
    """Liveness: once the network heals, pings are answered again; and the partition is noticed."""
    result, trace = Simulation.run(hostile_run, seed=seed)
    before, after = result["before"], result["after"]
    assert after["pongs"] > before["pongs"], f"seed {seed}: no progress after the network healed"
    assert "noconnection" in after["downs"], f"seed {seed}: the partition went unnoticed"
    delivered = sum(record.kind == "deliver" for record in trace)
    assert delivered > 0, f"seed {seed}: nothing was delivered"


def test_a_seed_replays_exactly() -> None:
    """The same seed gives the same trace: a failing seed is a reproducible bug report."""
    assert Simulation.run(hostile_run, seed=7)[1] == Simulation.run(hostile_run, seed=7)[1]
