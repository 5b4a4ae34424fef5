"""Raft scenarios of snapshots: compaction, restarts from a snapshot, and InstallSnapshot.

Message-level scenarios drive one RaftNode by hand (``OneNode``: the test
plays every peer); cluster scenarios run on a ``Simulation``, on virtual
time and seeded, with election safety and log agreement checked on every
step (``Cluster``).
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest

from genstatem.raft import KVMachine, RaftConfig, Snapshot
from genstatem.raft._rpc import (
    AppendReply,
    InstallSnapshot,
    Ok,
    Propose,
)
from genstatem.testing import Simulation, VirtualTimeEventLoop

from .helpers import (
    Cluster,
    follower_with_log,
    leader_of,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Everything runs on asyncio on virtual time (the simulator's loop)."""
    return "asyncio", {"loop_factory": VirtualTimeEventLoop}


def whole(term: int, leader: str, snapshot: Snapshot) -> InstallSnapshot:
    """The leader's ``snapshot`` as one ``InstallSnapshot`` chunk: the whole of it."""
    crc = zlib.crc32(snapshot.data)
    size = len(snapshot.data)
    return InstallSnapshot(term, leader, snapshot.index, snapshot.term, snapshot.members, size, crc, 0, snapshot.data)


async def snapshot_of_three_entries() -> bytes:
    """The data of a real snapshot: a ListMachine holding x1, x2, x3, proposed by session c1."""
    node = await leader_of(snapshot_every=3)
    for seq in (1, 2, 3):
        await node.call(Propose(f"x{seq}".encode(), "c1", seq))
    await node.cast(AppendReply(1, "b", True, 4))
    snapshot = node.storage.durable().snapshot
    assert snapshot is not None
    return snapshot.data


# -- snapshots -----------------------------------------------------------------------------------


async def test_restarted_node_starts_from_its_snapshot() -> None:
    """A node compacts its log into a snapshot, and a restart restores the machine and sessions from it."""
    node = await leader_of(snapshot_every=3)
    for seq in (1, 2, 3):
        await node.call(Propose(f"x{seq}".encode(), "c1", seq))
    await node.cast(AppendReply(1, "b", True, 4))
    snapshot = node.storage.durable().snapshot
    assert snapshot is not None
    assert (snapshot.index, snapshot.term) == (4, 1)
    assert node.raft.log_store.first_index() == 5
    node = await node.restart()
    status = node.status
    assert (status.commit_index, status.last_applied, status.last_index) == (4, 4, 4)
    assert node.raft.applier.machine.entries == [b"x1", b"x2", b"x3"]
    assert node.raft.applier.sessions == {"c1": (3, Ok(3))}


SNAPSHOTS = RaftConfig(election_timeout=(1.0, 2.0), heartbeat_interval=0.2, snapshot_every=5)


async def test_lagging_follower_catches_up_through_install_snapshot() -> None:
    """A follower that missed entries the leader has compacted away is sent the snapshot and catches up."""
    async with Simulation(seed=17) as sim:
        cluster = Cluster(sim, config=SNAPSHOTS)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        lagger = next(node for node in "abc" if node != leader)
        sim.partition([lagger], [node for node in "abc" if node != lagger])
        client = await cluster.client()
        for n in range(30):
            await client.propose(KVMachine.put(f"k{n % 7}", str(n)))
        assert cluster.raft(leader).log_store.first_index() > (await cluster.status(lagger)).last_index + 1
        sim.heal()
        await cluster.wait_applied([lagger], (await cluster.status(leader)).commit_index)
        assert [r for r in sim.records("deliver") if r.peer == lagger and "InstallSnapshot(" in r.detail]
        assert cluster.raft(lagger).applier.machine.data == cluster.raft(leader).applier.machine.data


async def test_restarted_follower_resumes_from_its_snapshot_and_catches_up() -> None:
    """A crashed follower restarts from its own snapshot, then takes the leader's newer one."""
    async with Simulation(seed=18) as sim:
        cluster = Cluster(sim, config=SNAPSHOTS)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        follower = next(node for node in "abc" if node != leader)
        client = await cluster.client()
        for n in range(12):
            await client.propose(KVMachine.put("x", str(n)))
        await cluster.wait_applied([follower], 13)
        await cluster.crash(follower)
        own = cluster.storages[follower].durable().snapshot
        assert own is not None
        assert own.index >= 5
        for n in range(12, 30):
            await client.propose(KVMachine.put("x", str(n)))
        await cluster.restart(follower)
        restarted = await cluster.status(follower)
        assert restarted.last_applied >= own.index
        assert cluster.raft(follower).applier.machine.data["x"] == str(restarted.last_applied - 2)  # x was put at 2..13
        await cluster.wait_applied([follower], (await cluster.status(leader)).commit_index)
        assert cluster.raft(follower).applier.machine.data == {"x": "29"}


async def test_whole_cluster_restart_loses_nothing_committed() -> None:
    """Every node crashes and restarts from its snapshot and log; every acknowledged write is still there."""
    async with Simulation(seed=19) as sim:
        cluster = Cluster(sim, config=SNAPSHOTS)
        await cluster.start()
        await cluster.wait_for_leader()
        client = await cluster.client()
        for n in range(23):
            await client.propose(KVMachine.put(f"k{n % 5}", str(n)))
        for node in "abc":
            await cluster.crash(node)
        for node in "abc":
            await cluster.restart(node)
        await cluster.wait_for_leader()
        assert [await client.read(KVMachine.get(f"k{n}")) for n in range(5)] == ["20", "21", "22", "18", "19"]


@pytest.mark.parametrize(
    ("log", "kept"), [([1, 2, 2, 2, 2], []), ([1, 3, 3, 3, 3, 3], [3, 3])], ids=["conflicting", "matching"]
)
async def test_follower_installs_a_snapshot_over_its_log(log: list[int], kept: list[int]) -> None:
    """InstallSnapshot replaces a follower's state; its log after the snapshot stays only if it matches there."""
    node = await follower_with_log(*log)
    data = await snapshot_of_three_entries()
    await node.cast(whole(3, "b", Snapshot(4, 3, ("a", "b", "c"), data)))
    assert [s.message for s in node.take(AppendReply)] == [AppendReply(3, "a", True, 4)]
    status = node.status
    assert (status.role, status.leader, status.commit_index, status.last_applied) == ("follower", "b", 4, 4)
    assert node.log_terms() == kept
    assert node.raft.log_store.first_index() == 5
    assert node.raft.applier.machine.entries == [b"x1", b"x2", b"x3"]
    assert node.raft.applier.sessions == {"c1": (3, Ok(3))}
    durable = node.storage.durable()
    assert durable.snapshot is not None
    assert (durable.snapshot.index, durable.compacted_index, len(durable.entries)) == (4, 4, len(kept))
