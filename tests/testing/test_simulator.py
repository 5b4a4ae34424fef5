"""The simulator: virtual time, seeded faults, partitions, crashes, and exact replay."""

from __future__ import annotations

from typing import Any

import pytest

import genstatem as gs
from genstatem.testing import Faults, SimRecord, Simulation


class Counter(gs.GenStateMachine):
    """Counts casts; every ``period`` seconds casts ``("tick", n)`` to a peer node's counter."""

    async def init(self, arg: Any) -> gs.Init:
        peer, period, store = arg
        self.store: dict[str, Any] = store
        self.store.setdefault("inits", 0)
        self.store["inits"] += 1
        actions = [gs.GenericTimeout("tick", period)] if period else []
        return gs.Init("counting", {"peer": peer, "period": period, "sent": 0, "got": []}, actions)

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.GenericTimeout("tick"), _:
                sent = data["sent"] + 1
                self.system.remote(data["peer"], "counter").cast(("tick", sent))
                return gs.KeepState({**data, "sent": sent}, gs.GenericTimeout("tick", data["period"]))
            case gs.Cast(), ("tick", n):
                return gs.KeepState({**data, "got": [*data["got"], n]})
            case gs.Call(caller), "got":
                return gs.KeepState(actions=gs.Reply(caller, data["got"]))
            case gs.Call(caller), ("monitor", ref):
                return gs.KeepState(actions=gs.Reply(caller, self.monitor(ref)))
            case gs.Info(), message:
                return gs.KeepState({**data, "got": [*data["got"], message]})
        return None

    async def terminate(self, reason: Any, state: Any, data: Any) -> None:
        self.store["terminated"] = reason


def counter_node(peer: str, period: float | None, store: dict[str, Any]) -> Any:
    async def setup(system: gs.ActorSystem) -> None:
        await system.start(Counter, (peer, period, store), name="counter")

    return setup


async def got(sim: Simulation, node: str) -> list[Any]:
    ref = sim.system(node).whereis("counter")
    assert ref is not None
    result: list[Any] = await ref.call("got")
    return result


async def chatty(sim: Simulation) -> list[Any]:
    """Two nodes ticking at each other through every kind of fault."""
    await sim.start_node("a", counter_node("b", 1.0, {}))
    await sim.start_node("b", counter_node("a", 1.5, {}))
    sim.faults = Faults(drop=0.2, duplicate=0.2, reorder=0.3, delay=(0.01, 2.0))
    await sim.sleep(60)
    sim.partition(["a"], ["b"])
    await sim.sleep(20)
    sim.heal()
    await sim.sleep(20)
    return [await got(sim, "a"), await got(sim, "b")]


def test_the_same_seed_replays_the_same_trace() -> None:
    """Two runs with one seed give identical traces, event for event; another seed differs."""
    first, trace1 = Simulation.run(chatty, seed=11)
    again, trace2 = Simulation.run(chatty, seed=11)
    _other, trace3 = Simulation.run(chatty, seed=12)
    assert trace1 == trace2
    assert first == again
    assert trace1 != trace3
    kinds = {record.kind for record in trace1}
    assert {"deliver", "drop", "event", "timeout", "transition", "node", "network"} <= kinds


def test_minutes_of_timeouts_take_no_real_time() -> None:
    """Timers fire at their exact virtual times; an hour of ticking is instant."""

    async def scenario(sim: Simulation) -> list[float]:
        await sim.start_node("a", counter_node("b", 60.0, {}))
        await sim.start_node("b", counter_node("a", None, {}))
        await sim.sleep(3600.5)
        return [record.time for record in sim.records("timeout") if record.node == "a"]

    times, _ = Simulation.run(scenario, seed=1)
    assert times == [60.0 * n for n in range(1, 61)]


def test_a_reliable_network_keeps_order_and_loses_nothing() -> None:
    """With no faults every message arrives once, in the order sent."""

    async def scenario(sim: Simulation) -> list[Any]:
        await sim.start_node("a", counter_node("b", 0.1, {}))
        await sim.start_node("b", counter_node("a", None, {}))
        await sim.sleep(10.05)
        return await got(sim, "b")

    received, _ = Simulation.run(scenario, seed=3, faults=Faults(delay=(0.0, 1.0)))
    assert received == list(range(1, len(received) + 1))
    assert len(received) >= 90


@pytest.mark.parametrize(
    ("faults", "check"),
    [
        pytest.param(Faults(drop=1.0), lambda got: got == [], id="drop all"),
        pytest.param(Faults(duplicate=1.0), lambda got: got == [n for n in range(1, 11) for _ in (1, 2)], id="dup"),
        pytest.param(
            Faults(reorder=1.0, delay=(0.0, 5.0)),
            lambda got: sorted(got) == list(range(1, 11)) and got != sorted(got),
            id="reorder",
        ),
    ],
)
def test_faults_drop_duplicate_and_reorder(faults: Faults, check: Any) -> None:
    """Drop, duplicate and reorder do what they say to messages between two nodes."""

    async def scenario(sim: Simulation) -> list[Any]:
        await sim.start_node("a", counter_node("b", 1.0, {}))
        await sim.start_node("b", counter_node("a", None, {}))
        sim.faults = faults
        await sim.sleep(10.5)
        sim.faults = Faults()  # stop ticking faults; let the stragglers in
        ref = sim.system("a").whereis("counter")
        assert ref is not None
        await ref.stop()
        await sim.sleep(10)
        return await got(sim, "b")

    received, _ = Simulation.run(scenario, seed=5)
    assert check(received), received


def test_a_symmetric_partition_cuts_connections_and_heal_restores() -> None:
    """A partition loses messages both ways and fires noconnection; after heal messages flow again."""

    async def scenario(sim: Simulation) -> tuple[list[Any], list[SimRecord]]:
        await sim.start_node("a", counter_node("b", 1.0, {}))
        await sim.start_node("b", counter_node("a", None, {}))
        watcher = sim.system("b").whereis("counter")
        assert watcher is not None
        monitor = await watcher.call(("monitor", sim.system("b").remote("a", "counter")))
        await sim.sleep(3.5)
        sim.partition(["a"], ["b"])
        await sim.sleep(5)
        sim.heal()
        await sim.sleep(3)
        received = await got(sim, "b")
        assert gs.Down(monitor, sim.system("b").remote("a", "counter"), "noconnection") in received
        return received, sim.records("drop")

    (received, drops), _ = Simulation.run(scenario, seed=2)
    ticks = [n for n in received if isinstance(n, int)]
    assert ticks[:3] == [1, 2, 3]
    assert 4 not in ticks  # sent during the partition, lost
    assert ticks[-1] >= 10  # flowing again after heal
    assert any("partitioned" in record.detail for record in drops)


def test_a_one_way_partition_drops_silently_in_one_direction() -> None:
    """A one-way partition loses messages from the first group only, and cuts no connection."""

    async def scenario(sim: Simulation) -> tuple[list[Any], list[Any]]:
        await sim.start_node("a", counter_node("b", 1.0, {}))
        await sim.start_node("b", counter_node("a", 1.0, {}))
        sim.partition(["a"], ["b"], one_way=True)
        await sim.sleep(5.5)
        return await got(sim, "a"), await got(sim, "b")

    (at_a, at_b), _ = Simulation.run(scenario, seed=4)
    assert at_a == [1, 2, 3, 4, 5]
    assert at_b == []


def test_a_crashed_node_loses_its_actors_without_terminate_and_restarts() -> None:
    """A crash kills every actor with no terminate; peers see noconnection; restart runs setup again."""
    store: dict[str, Any] = {}

    async def scenario(sim: Simulation) -> list[Any]:
        await sim.start_node("a", counter_node("b", None, store))
        await sim.start_node("b", counter_node("a", None, {}))
        watcher = sim.system("b").whereis("counter")
        assert watcher is not None
        await watcher.call(("monitor", sim.system("b").remote("a", "counter")))
        await sim.crash("a")
        assert "terminated" not in store  # a crash runs no terminate
        with pytest.raises(LookupError):
            sim.system("a")
        await sim.restart("a")
        assert sim.system("a").whereis("counter") is not None
        return await got(sim, "b")

    received, trace = Simulation.run(scenario, seed=6)
    assert store["inits"] == 2
    assert [down.reason for down in received] == ["noconnection"]
    assert [r.detail for r in trace if r.kind == "node"] == ["start", "start", "crash", "start", "restart"]


def test_stopping_a_node_terminates_its_actors() -> None:
    """stop_node shuts a node down cleanly: terminate runs with shutdown."""
    store: dict[str, Any] = {}

    async def scenario(sim: Simulation) -> None:
        await sim.start_node("a", counter_node("b", None, store))
        await sim.stop_node("a")

    Simulation.run(scenario, seed=1)
    assert store["terminated"] == "shutdown"


def test_the_message_trace_renders_as_a_sequence_diagram() -> None:
    """Deliveries and drops become MessageRecords that render as a Mermaid sequence diagram."""
    from genstatem.testing import sequence_diagram

    async def scenario(sim: Simulation) -> str:
        await sim.start_node("a", counter_node("b", 1.0, {}))
        await sim.start_node("b", counter_node("a", None, {}))
        await sim.sleep(2.5)
        sim.partition(["a"], ["b"], one_way=True)
        await sim.sleep(1)
        messages = sim.messages()
        assert [(m.sender, m.receiver, m.dropped) for m in messages] == [("a", "b", False)] * 2 + [("a", "b", True)]
        return sequence_diagram(messages)

    diagram, _ = Simulation.run(scenario, seed=1)
    assert diagram.startswith("sequenceDiagram")
    assert diagram.count("->>") == 2
    assert diagram.count("-x") == 1


def test_observers_see_every_step_and_can_stop_the_run() -> None:
    """An observer is called for each record; its exception ends the run at that step."""
    seen: list[SimRecord] = []

    async def scenario(sim: Simulation) -> None:
        sim.observe(seen.append)

        def no_ticks_after_five(record: SimRecord) -> None:
            if record.kind == "timeout" and record.time > 5:
                raise AssertionError(f"broken at {record.time}")

        sim.observe(no_ticks_after_five)
        await sim.start_node("a", counter_node("b", 1.0, {}))
        await sim.start_node("b", counter_node("a", None, {}))
        await sim.sleep(10)

    with pytest.raises(AssertionError, match=r"broken at 6\.0"):
        Simulation.run(scenario, seed=1)
    assert seen
    assert seen[-1].time == 6.0


def test_disconnect_is_recorded_in_the_trace_like_every_fault() -> None:
    """Simulation.disconnect writes a "network" record naming both nodes; a partition still writes one."""

    async def scenario(sim: Simulation) -> list[SimRecord]:
        await sim.start_node("a", counter_node("b", 1.0, {}))
        await sim.start_node("b", counter_node("a", None, {}))
        await sim.sleep(1.5)
        sim.disconnect("a", "b")
        await sim.sleep(1)
        sim.partition(["a"], ["b"])
        return sim.records("network")

    network, _ = Simulation.run(scenario, seed=3)
    assert [(record.node, record.detail, record.peer) for record in network] == [
        ("a", "disconnect", "b"),
        ("", "partition [['a'], ['b']]", ""),
    ]


def test_a_silent_partition_is_noticed_by_ticks_within_the_tick_time() -> None:
    """A silent partition cuts no connection by itself; the nodes' ticks drop it within tick_time."""
    tick_time = 15.0

    async def scenario(sim: Simulation) -> tuple[float, list[Any], list[SimRecord]]:
        await sim.start_node("a", counter_node("b", 1.0, {}))
        await sim.start_node("b", counter_node("a", None, {}))
        watcher = sim.system("b").whereis("counter")
        assert watcher is not None
        monitor = await watcher.call(("monitor", sim.system("b").remote("a", "counter")))
        await sim.sleep(20.5)
        silenced_at = sim.now()
        sim.partition(["a"], ["b"], silent=True)
        await sim.sleep(2 * tick_time)
        received = await got(sim, "b")
        assert gs.Down(monitor, sim.system("b").remote("a", "counter"), "noconnection") in received
        return silenced_at, received, sim.records("network")

    (silenced_at, received, network), _ = Simulation.run(scenario, seed=5, tick_time=tick_time)
    assert [n for n in received if isinstance(n, int)] == list(range(1, 21))
    assert network[0].detail == "partition [['a'], ['b']] silent"
    first_cut = network[1]
    assert first_cut.detail == "disconnect"
    assert silenced_at < first_cut.time <= silenced_at + tick_time


def test_without_ticks_a_silent_partition_goes_unnoticed() -> None:
    """With tick_time=None a silent partition fires nothing: the monitor waits on."""

    async def scenario(sim: Simulation) -> list[Any]:
        await sim.start_node("a", counter_node("b", 1.0, {}))
        await sim.start_node("b", counter_node("a", None, {}))
        watcher = sim.system("b").whereis("counter")
        assert watcher is not None
        await watcher.call(("monitor", sim.system("b").remote("a", "counter")))
        sim.partition(["a"], ["b"], silent=True)
        await sim.sleep(600)
        assert [record.detail for record in sim.records("network")] == ["partition [['a'], ['b']] silent"]
        return await got(sim, "b")

    received, _ = Simulation.run(scenario, seed=5, tick_time=None)
    assert received == []
