"""A node that crashes at any point of a storage-changing step restarts in a state the leader can reach.

Each test crashes a follower before one storage operation of a step
(``save``, ``append``, ``truncate_from``, ``compact``, ``sync``, or a
received snapshot's ``begin``, ``write`` and ``finish``), for
every such operation in turn, restarts it from what its storage made
durable, and plays the leader's probe: the restarted node must catch up,
never stay stuck.
"""

from __future__ import annotations

import itertools
import zlib
from typing import Any

import pytest

from genstatem.raft import Entry, MemoryStorage, Snapshot
from genstatem.raft._rpc import Append, AppendReply, InstallSnapshot, Ok, SnapshotReply

from .helpers import OneNode, entries, prepared_storage
from .test_snapshots import snapshot_of_three_entries

pytestmark = pytest.mark.anyio

MUTATIONS = frozenset({"save", "append", "truncate_from", "compact", "sync", "begin", "write", "finish"})


class Crash(Exception):
    """The process stops here: nothing after this point of the step runs."""


class _CrashingStore:
    """A store that raises ``Crash`` before its ``countdown``-th storage-changing operation."""

    def __init__(self, store: Any, storage: CrashingStorage) -> None:
        self._store, self._storage = store, storage

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name not in MUTATIONS:
            return attribute

        def operation(*args: Any, **kwargs: Any) -> Any:
            self._storage.tick(name)
            result = attribute(*args, **kwargs)
            return _CrashingStore(result, self._storage) if name == "begin" else result  # its writes crash too

        return operation


class CrashingStorage(MemoryStorage):
    """A ``MemoryStorage`` that crashes its node before the chosen storage operation, counted from ``arm()``."""

    def __init__(self) -> None:
        super().__init__()
        self.countdown: int | None = None
        self.seen: list[str] = []

    def arm(self, countdown: int) -> None:
        """Crash before the ``countdown``-th operation from now (0: the very next one)."""
        self.countdown, self.seen = countdown, []

    def tick(self, name: str) -> None:
        if self.countdown is None:
            return
        if self.countdown == 0:
            self.countdown = None
            raise Crash(name)
        self.countdown -= 1
        self.seen.append(name)

    def open(self) -> Any:
        log, term, snapshot = super().open()
        return _CrashingStore(log, self), _CrashingStore(term, self), _CrashingStore(snapshot, self)


async def crashing_follower(*terms: int, term: int) -> tuple[OneNode, CrashingStorage]:
    """Follower ``a`` of a, b, c with entries of ``terms`` (durable) at ``term``, on a crashable storage."""
    prepared = await prepared_storage(term=term, log=entries(1, terms))
    storage = CrashingStorage()
    storage._durable = prepared._durable
    return await OneNode.start(storage=storage), storage


def chunks(snapshot: Snapshot, count: int) -> list[InstallSnapshot]:
    """The leader of term 3's ``snapshot`` cut into ``count`` chunks."""
    data, size = snapshot.data, len(snapshot.data)
    cuts = [size * n // count for n in range(count + 1)]
    crc = zlib.crc32(data)
    return [
        InstallSnapshot(3, "b", snapshot.index, snapshot.term, snapshot.members, size, crc, start, data[start:end])
        for start, end in itertools.pairwise(cuts)
    ]


async def send_from_where_it_stands(node: OneNode, stream: list[InstallSnapshot]) -> None:
    """Play the leader streaming a snapshot: send a chunk, then the one from the offset the follower answers."""
    by_offset = {chunk.offset: chunk for chunk in stream}
    chunk = stream[0]
    for _ in range(2 * len(stream) + 2):
        await node.cast(chunk)
        answers = [sent.message for sent in node.take()]
        if any(isinstance(answer, AppendReply) and answer.success for answer in answers):
            return
        [answer] = answers
        assert isinstance(answer, SnapshotReply), answer
        chunk = by_offset[answer.offset]
    raise AssertionError("the follower never installed the snapshot")


async def probe_until_caught_up(node: OneNode, snapshot: Snapshot, after: Entry, *, count: int = 1) -> None:
    """Play the leader of term 3: probe at the snapshot's index, stream the snapshot when told to, until it matches."""
    for _ in range(4):
        await node.cast(Append(3, "b", snapshot.index, snapshot.term, (after,), after.index))
        [reply] = [sent.message for sent in node.take(AppendReply)]
        if reply.success:
            assert reply.match == after.index
            return
        await send_from_where_it_stands(node, chunks(snapshot, count))
    raise AssertionError(f"the follower never caught up: its log ends at {node.raft.log_store.last_index()}")


@pytest.mark.parametrize("count", [1, 3], ids=["whole", "chunked"])
@pytest.mark.parametrize("log", [[1], [1, 2, 2, 2, 2]], ids=["short", "conflicting"])
async def test_a_crash_anywhere_in_a_snapshot_install_leaves_the_follower_reachable(log: list[int], count: int) -> None:
    """Crashed before any storage step of an install and restarted, the follower catches up with the leader's probe."""
    snapshot = Snapshot(4, 3, ("a", "b", "c"), await snapshot_of_three_entries())
    stream = chunks(snapshot, count)
    after = Entry(5, 3, b"x5")
    crash_points = 0
    while True:
        node, storage = await crashing_follower(*log, term=3)
        storage.arm(crash_points)
        try:
            for chunk in stream:
                await node.cast(chunk)
        except Crash:
            node = await node.restart()
        else:
            break  # every storage step of the install has been crashed before
        await probe_until_caught_up(node, snapshot, after, count=count)
        status = node.status
        assert (status.commit_index, status.last_applied) == (5, 5), f"crash before operation {crash_points}"
        assert node.raft.applier.machine.entries == [b"x1", b"x2", b"x3", b"x5"]
        assert node.raft.applier.sessions == {"c1": (3, Ok(3))}
        crash_points += 1
    # begin, a write per chunk, finish, (truncate,) compact, sync: each was a crash point
    assert crash_points >= count + 4, storage.seen


async def test_a_follower_restarted_between_snapshot_and_compaction_accepts_the_next_append() -> None:
    """The stuck case of issue 8: a snapshot at 4 is durable, the log still ends at 1; the probe at 4 succeeds."""
    storage = MemoryStorage()
    log_store, term_store, snapshot_store = storage.open()
    log_store.append(entries(1, [1]))
    await log_store.sync()
    term_store.save(3, None)
    await term_store.sync()
    snapshot_store.save(Snapshot(4, 3, ("a", "b", "c"), await snapshot_of_three_entries()))
    await snapshot_store.sync()  # and the crash comes before the log is compacted
    node = await OneNode.start(storage=storage)
    await node.cast(Append(3, "b", 4, 3, (Entry(5, 3, b"x5"),), 5))
    assert [sent.message for sent in node.take(AppendReply)] == [AppendReply(3, "a", True, 5)]
    assert node.raft.applier.machine.entries == [b"x1", b"x2", b"x3", b"x5"]
    assert (node.raft.log_store.first_index(), node.raft.log_store.last_index()) == (5, 5)
