"""Snapshots larger than a wire frame: streamed to a follower in chunks, installed only when whole and verified.

Cluster scenarios run on a ``Simulation`` (virtual time, seeded, election
safety and log agreement checked on every step); message-level ones drive
one RaftNode by hand (``OneNode``: the test plays every peer). The same
scenario on ``FileStorage`` is in ``test_large_snapshots_on_disk.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from genstatem.raft import KVMachine, RaftConfig, Snapshot
from genstatem.raft._rpc import AppendReply, InstallSnapshot, Propose, SnapshotReply
from genstatem.testing import Faults, Simulation, VirtualTimeEventLoop

from .helpers import Cluster, OneNode, follower_with_log, leader_of
from .test_recovery import chunks
from .test_snapshots import snapshot_of_three_entries

pytestmark = pytest.mark.anyio

BIG = RaftConfig(election_timeout=(1.0, 2.0), heartbeat_interval=0.2, snapshot_every=20)
VALUE = "v" * 20_000  # 120 of them: 2.4 MB of key-value data, over twice the wire's 1 MiB frame limit


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Everything runs on asyncio on virtual time (the simulator's loop)."""
    return "asyncio", {"loop_factory": VirtualTimeEventLoop}


async def lagging_follower_catches_up(sim: Simulation, faults: Faults | None = None) -> None:
    """A follower is down while 2.4 MB are written; restarted (on a network with ``faults``), it catches up."""
    cluster = Cluster(sim, config=BIG)
    await cluster.start()
    leader = await cluster.wait_for_leader()
    lagger = next(node for node in "abc" if node != leader)
    await cluster.crash(lagger)
    client = await cluster.client(timeout=60.0)
    for n in range(120):
        await client.propose(KVMachine.put(f"k{n}", f"{n}{VALUE}"))
    if faults is not None:
        sim.faults = faults
    await cluster.restart(lagger)
    await cluster.wait_applied([lagger], (await cluster.status(leader)).commit_index, within=120.0)
    assert cluster.raft(lagger).applier.machine.data == cluster.raft(leader).applier.machine.data
    assert len(cluster.running_nodes()) == 3, "a node crashed"
    chunks_sent = [r for r in sim.records("deliver") if r.peer == lagger and "InstallSnapshot(" in r.detail]
    assert len(chunks_sent) >= 10  # 2.4 MB in chunks of 256 KiB


async def test_a_follower_far_behind_a_multi_megabyte_snapshot_catches_up() -> None:
    """The issue's reproduction: 2.4 MB written while a follower is down; restarted, it catches up, nobody crashes."""
    async with Simulation(seed=41) as sim:
        await lagging_follower_catches_up(sim)


async def test_a_snapshot_stream_survives_lost_duplicated_and_reordered_chunks() -> None:
    """Chunks and answers lost, duplicated and reordered: the stream resends from what the follower holds."""
    async with Simulation(seed=42) as sim:
        await lagging_follower_catches_up(sim, Faults(drop=0.1, duplicate=0.1, reorder=0.2))


# -- the leader's stream -----------------------------------------------------------------------------

STREAM = {"snapshot_every": 3, "snapshot_chunk_bytes": 8, "snapshot_chunks_in_flight": 2}


async def leader_streaming_to_b() -> OneNode:
    """Leader ``a`` with a snapshot at 4 (entries 2-4 proposed, acknowledged by c); b has asked from index 1."""
    node = await leader_of(**STREAM)
    for seq in (1, 2, 3):
        await node.call(Propose(f"x{seq}".encode(), "c1", seq))
    await node.cast(AppendReply(1, "c", True, 4))
    assert node.raft.log_store.first_index() == 5
    node.take()
    await node.cast(AppendReply(1, "b", False, 0, hint=1))
    return node


def offsets(node: OneNode) -> list[tuple[int, int]]:
    """``(snapshot index, offset)`` of the chunks sent to b since the last look."""
    return [(s.message.index, s.message.offset) for s in node.take(InstallSnapshot, to="b")]


async def test_a_leader_streams_its_snapshot_a_few_chunks_at_a_time() -> None:
    """A follower behind the snapshot gets it in chunks, at most ``snapshot_chunks_in_flight`` unanswered."""
    node = await leader_streaming_to_b()
    assert offsets(node) == [(4, 0), (4, 8)]
    await node.cast(SnapshotReply(1, "b", 4, 8, True))
    assert offsets(node) == [(4, 16)]
    stream = node.raft.leading.progress["b"].snapshot
    assert stream is not None
    assert (stream.sent, stream.complete) == (stream.size, True)  # three chunks are the whole of it
    await node.cast(SnapshotReply(1, "b", 4, 16, True))
    assert offsets(node) == []
    await node.cast(AppendReply(1, "b", True, 4))  # installed: the stream ends, appends go on from 5
    assert offsets(node) == []
    assert node.raft.leading.progress["b"].snapshot is None
    assert node.raft.leading.progress["b"].next == 5


async def test_a_lost_chunk_is_resent_once_from_where_the_follower_stands() -> None:
    """A gap at the follower rewinds the stream to what it holds; a second report of the same gap does not."""
    node = await leader_streaming_to_b()
    assert offsets(node) == [(4, 0), (4, 8)]
    await node.cast(SnapshotReply(1, "b", 4, 8, True))
    assert offsets(node) == [(4, 16)]
    await node.cast(SnapshotReply(1, "b", 4, 8, False))  # chunk 8 was lost, 16 arrived
    assert offsets(node) == [(4, 8), (4, 16)]
    await node.cast(SnapshotReply(1, "b", 4, 8, False))  # an older report of the same gap
    assert offsets(node) == []


async def test_a_stalled_stream_is_resent_at_the_next_heartbeat_but_one() -> None:
    """No answer for a whole heartbeat interval (everything in flight lost): the stream resumes from the last ack."""
    node = await leader_streaming_to_b()
    assert offsets(node) == [(4, 0), (4, 8)]
    await node.cast(SnapshotReply(1, "b", 4, 8, True))
    assert offsets(node) == [(4, 16)]
    await node.fire("heartbeat")
    assert offsets(node) == []
    await node.fire("heartbeat")
    assert offsets(node) == [(4, 8), (4, 16)]


async def test_a_newer_snapshot_taken_mid_stream_restarts_the_stream() -> None:
    """The leader compacts again while streaming: the follower is sent the new snapshot, from offset 0."""
    node = await leader_streaming_to_b()
    assert offsets(node) == [(4, 0), (4, 8)]
    for seq in (4, 5, 6):
        await node.call(Propose(f"x{seq}".encode(), "c1", seq))
    await node.cast(AppendReply(1, "c", True, 7))
    assert node.raft.snapshot_store.load().index == 7  # type: ignore[union-attr]
    node.take()
    await node.cast(SnapshotReply(1, "b", 4, 8, True))  # an answer about the old snapshot
    assert offsets(node) == [(7, 0), (7, 8)]


# -- the follower's side --------------------------------------------------------------------------


async def test_a_follower_installs_chunks_that_came_out_of_order_and_twice() -> None:
    """Chunks after a gap are refused with the offset held; the snapshot installs once every byte is there."""
    node = await follower_with_log(1, term=3)
    snapshot = Snapshot(4, 3, ("a", "b", "c"), await snapshot_of_three_entries())
    first, second, third = chunks(snapshot, 3)
    replies = []
    for chunk in (first, third, first, second, third, second):
        await node.cast(chunk)
        replies += [s.message for s in node.take()]
    assert replies == [
        SnapshotReply(3, "a", 4, first.end, True),
        SnapshotReply(3, "a", 4, first.end, False),  # a gap: resend from first.end
        SnapshotReply(3, "a", 4, first.end, True),  # a duplicate
        SnapshotReply(3, "a", 4, second.end, True),
        AppendReply(3, "a", True, 4),  # installed
        AppendReply(3, "a", True, 4),  # already held
    ]
    assert node.raft.applier.machine.entries == [b"x1", b"x2", b"x3"]
    assert node.storage.durable().snapshot == snapshot


async def test_a_snapshot_that_fails_its_check_is_not_installed() -> None:
    """A snapshot whose bytes do not match its CRC-32 is thrown away, and the follower asks for it again."""
    node = await follower_with_log(1, term=3)
    snapshot = Snapshot(4, 3, ("a", "b", "c"), await snapshot_of_three_entries())
    for chunk in chunks(snapshot, 2):
        await node.cast(
            InstallSnapshot(3, "b", 4, 3, chunk.members, chunk.size, chunk.crc ^ 1, chunk.offset, chunk.data)
        )
    assert [s.message for s in node.take()][-1] == SnapshotReply(3, "a", 4, 0, False)
    assert node.storage.durable().snapshot is None
    assert (node.status.commit_index, node.raft.log_store.last_index()) == (0, 1)


async def test_a_restarted_follower_asks_for_the_snapshot_from_the_start() -> None:
    """A follower that lost a half-received snapshot in a restart answers the next chunk with offset 0."""
    node = await follower_with_log(1, term=3)
    snapshot = Snapshot(4, 3, ("a", "b", "c"), await snapshot_of_three_entries())
    first, second = chunks(snapshot, 2)
    await node.cast(first)
    node = await node.restart()
    await node.cast(second)
    assert [s.message for s in node.take()] == [SnapshotReply(3, "a", 4, 0, False)]


# -- compaction by size ---------------------------------------------------------------------------


@pytest.mark.parametrize(("snapshot_bytes", "compacted"), [(1000, 4), (None, 0)], ids=["by-bytes", "never"])
async def test_the_log_is_compacted_once_its_applied_entries_hold_snapshot_bytes(
    snapshot_bytes: int | None, compacted: int
) -> None:
    """With ``snapshot_every`` off, a few large entries still trigger a snapshot once they pass ``snapshot_bytes``."""
    node = await leader_of(snapshot_every=None, snapshot_bytes=snapshot_bytes)
    for seq in (1, 2, 3):
        await node.call(Propose(b"z" * 400, "c1", seq))  # 479 bytes an entry: the three pass 1000
    await node.cast(AppendReply(1, "b", True, 4))
    assert node.status.last_applied == 4
    snapshot = node.storage.durable().snapshot
    assert (snapshot.index if snapshot is not None else 0) == compacted
    assert node.raft.log_store.first_index() == compacted + 1
