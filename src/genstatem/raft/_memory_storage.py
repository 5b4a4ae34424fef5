"""``MemoryStorage``: a node's storage kept in memory, outside the node, for tests.

It keeps the durable part in memory, outside the node, and each ``open()``
starts a new incarnation from it, so a test can crash a node at any point and
restart it with exactly what it had made durable.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import anyio.lowlevel
import attrs

from ._log import Entry
from ._storage import (
    STALE,
    DurableState,
    LogReads,
    Snapshot,
    StorageStatistics,
    _check_chunk,
    _check_vote,
    _check_whole,
    _Log,
)


@attrs.define
class _Durable:
    """The part of a ``MemoryStorage`` that survives a crash."""

    log: _Log = attrs.Factory(_Log)
    term: int = 0
    voted_for: str | None = None
    snapshot: Snapshot | None = None


class MemoryStorage:
    """In-memory storage for one node that outlives the node: for tests and examples.

    Everything is lost when the Python process ends; a node whose data must
    survive its process uses ``FileStorage``.

    Keep it outside the ``ActorSystem`` (in the test, say) and give it to the
    node at every (re)start; the node calls ``open()``. What the node synced
    before it stopped or crashed is there; what it did not sync is lost, as
    after a power cut.
    """

    def __init__(self) -> None:
        self._durable = _Durable()
        self._incarnation = 0
        self._opens = 0
        self._log_syncs = 0
        self._term_syncs = 0
        self._snapshot_syncs = 0
        self._appended = 0
        self._truncated = 0
        self._lost = 0
        self._open_log: MemoryLogStore | None = None

    def __repr__(self) -> str:
        durable = self._durable
        return (
            f"MemoryStorage(term={durable.term}, voted_for={durable.voted_for!r}, "
            f"log=({durable.log.offset}, {durable.log.last_index()}], incarnation={self._incarnation})"
        )

    def open(self) -> tuple[MemoryLogStore, MemoryTermStore, MemorySnapshotStore]:
        """Start a new incarnation from the durable state, as a node does when it (re)starts.

        Everything the previous incarnation did not sync is lost, and its
        stores become stale: any call on them raises ``RuntimeError``, so a
        node that is still running after its restart cannot corrupt the new one.

        Returns:
            The log, term and snapshot stores of the new incarnation.
        """
        if self._open_log is not None:
            self._lost += self._open_log._unsynced()
        self._incarnation += 1
        self._opens += 1
        log = MemoryLogStore(self, self._incarnation, self._durable.log.copy())
        self._open_log = log
        return (
            log,
            MemoryTermStore(self, self._incarnation, self._durable.term, self._durable.voted_for),
            MemorySnapshotStore(self, self._incarnation, self._durable.snapshot),
        )

    def durable(self) -> DurableState:
        """What the next incarnation would start from, read without disturbing the current one."""
        durable = self._durable
        return DurableState(
            term=durable.term,
            voted_for=durable.voted_for,
            compacted_index=durable.log.offset,
            compacted_term=durable.log.offset_term,
            entries=tuple(durable.log.entries),
            snapshot=durable.snapshot,
        )

    def statistics(self) -> StorageStatistics:
        """Counters over every incarnation: opens, syncs per store, entries appended, truncated and lost."""
        return StorageStatistics(
            opens=self._opens,
            log_syncs=self._log_syncs,
            term_syncs=self._term_syncs,
            snapshot_syncs=self._snapshot_syncs,
            entries_appended=self._appended,
            entries_truncated=self._truncated,
            entries_lost=self._lost,
        )


class _View:
    """A store of one incarnation; it refuses every call once the storage is opened again."""

    def __init__(self, storage: MemoryStorage, incarnation: int) -> None:
        self._storage = storage
        self._incarnation = incarnation

    def _live(self) -> MemoryStorage:
        if self._storage._incarnation != self._incarnation:
            raise RuntimeError(STALE)
        return self._storage


class MemoryLogStore(_View, LogReads):
    """The ``LogStore`` of one incarnation of a ``MemoryStorage``."""

    def __init__(self, storage: MemoryStorage, incarnation: int, log: _Log) -> None:
        super().__init__(storage, incarnation)
        self._held = log
        # The lowest index changed since the last sync: the durable log is
        # already equal to this one below it, so a sync copies only the rest.
        self._dirty_from: int | None = None

    def __repr__(self) -> str:
        return f"MemoryLogStore(({self._held.offset}, {self._held.last_index()}])"

    def _touch(self, index: int) -> None:
        self._dirty_from = index if self._dirty_from is None else min(self._dirty_from, index)

    def _unsynced(self) -> int:
        """How many entries of this view differ from the durable log (changed since the last sync)."""
        if self._dirty_from is None:
            return 0
        return max(self._held.last_index() - max(self._dirty_from, self._held.offset + 1) + 1, 0)

    def append(self, entries: Sequence[Entry]) -> None:
        """Add ``entries`` after the last. Not durable until ``sync()``.

        Raises:
            ValueError: if the indexes do not run on from ``last_index() + 1``
                one by one, or a term is lower than the one before it (Raft
                log terms never decrease); nothing is appended.
        """
        storage = self._live()
        log = self._held
        log.check_continued_by(entries)
        if entries:
            self._touch(log.last_index() + 1)
            log.entries.extend(entries)
            storage._appended += len(entries)

    def truncate_from(self, index: int) -> None:
        """Drop the entry at ``index`` and every one after it (nothing if ``index`` is beyond the last).

        Not durable until ``sync()``.

        Raises:
            ValueError: if ``index`` is at or before the compaction point.
        """
        storage = self._live()
        log = self._held
        if index <= log.offset:
            raise ValueError(f"cannot truncate from {index}: entries up to {log.offset} are compacted")
        if index <= log.last_index():
            self._touch(index)
            storage._truncated += log.truncate_from(index)

    def compact(self, index: int, term: int) -> None:
        """Drop the entries up to ``index``, which a snapshot at (``index``, ``term``) covers.

        If the log has an entry at ``index`` with ``term``, the entries after
        it stay; otherwise (a follower given a leader's snapshot) they all go,
        and the log continues from ``index``. Compacting at or before the
        current compaction point does nothing. Not durable until ``sync()``.
        """
        self._live()
        log = self._held
        if index > log.offset:
            if log.term_at(index) != term:
                self._touch(index + 1)  # the entries after it go too: the next sync rewrites from there
            log.compact(index, term)

    async def sync(self) -> None:
        """Make every append, truncation and compaction so far durable."""
        storage = self._live()
        durable, log = storage._durable.log, self._held
        durable.compact(log.offset, log.offset_term)
        if self._dirty_from is not None:
            start = min(max(self._dirty_from, log.offset + 1), durable.last_index() + 1)
            durable.truncate_from(start)
            durable.entries.extend(log.entries[start - log.offset - 1 :])
            self._dirty_from = None
        storage._log_syncs += 1
        await anyio.lowlevel.checkpoint()


class MemoryTermStore(_View):
    """The ``TermStore`` of one incarnation of a ``MemoryStorage``."""

    def __init__(self, storage: MemoryStorage, incarnation: int, term: int, voted_for: str | None) -> None:
        super().__init__(storage, incarnation)
        self._term = term
        self._voted_for = voted_for

    def __repr__(self) -> str:
        return f"MemoryTermStore(term={self._term}, voted_for={self._voted_for!r})"

    def load(self) -> tuple[int, str | None]:
        """``(current_term, voted_for)`` as last saved by this incarnation, or as it started."""
        self._live()
        return self._term, self._voted_for

    def save(self, term: int, voted_for: str | None) -> None:
        """Record the term and the vote in it. Not durable until ``sync()``.

        Raises:
            ValueError: if the term goes down, or the vote of the current term
                would change or be forgotten: either would let a node vote
                twice in one term.
        """
        self._live()
        _check_vote(self._term, self._voted_for, term, voted_for)
        self._term, self._voted_for = term, voted_for

    async def sync(self) -> None:
        """Make the last ``save`` durable."""
        storage = self._live()
        storage._durable.term, storage._durable.voted_for = self._term, self._voted_for
        storage._term_syncs += 1
        await anyio.lowlevel.checkpoint()


class MemorySnapshotStore(_View):
    """The ``SnapshotStore`` of one incarnation of a ``MemoryStorage``."""

    def __init__(self, storage: MemoryStorage, incarnation: int, snapshot: Snapshot | None) -> None:
        super().__init__(storage, incarnation)
        self._snapshot = snapshot
        self._receiving: MemorySnapshotWriter | None = None

    def __repr__(self) -> str:
        where = "none" if self._snapshot is None else f"index={self._snapshot.index}, term={self._snapshot.term}"
        return f"MemorySnapshotStore({where})"

    def load(self) -> Snapshot | None:
        """The snapshot as last saved by this incarnation, or as it started; ``None`` if there is none."""
        self._live()
        return self._snapshot

    def save(self, snapshot: Snapshot) -> None:
        """Replace the snapshot. Not durable until ``sync()``.

        Raises:
            ValueError: if ``snapshot`` is older (lower index) than the one
                held, which would throw away applied state.
        """
        self._live()
        if self._snapshot is not None and snapshot.index < self._snapshot.index:
            raise ValueError(
                f"snapshot at index {snapshot.index} is older than the one held, at {self._snapshot.index}"
            )
        self._snapshot = snapshot

    async def sync(self) -> None:
        """Make the last ``save`` durable."""
        storage = self._live()
        storage._durable.snapshot = self._snapshot
        storage._snapshot_syncs += 1
        await anyio.lowlevel.checkpoint()

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of the snapshot's data from ``offset``.

        Raises:
            LookupError: there is no snapshot.
        """
        self._live()
        if self._snapshot is None:
            raise LookupError("no snapshot to read")
        return self._snapshot.data[offset : offset + size]

    def begin(self, index: int, term: int, members: tuple[str, ...], size: int, crc: int) -> MemorySnapshotWriter:
        """Start receiving a snapshot into memory; an unfinished one begun earlier is aborted."""
        self._live()
        if self._receiving is not None:
            self._receiving.abort()
        self._receiving = MemorySnapshotWriter(self, index, term, tuple(members), size, crc)
        return self._receiving

    async def _install(self, snapshot: Snapshot) -> None:
        self.save(snapshot)
        await self.sync()


class MemorySnapshotWriter:
    """A snapshot being received by a ``MemorySnapshotStore``: held in memory, lost with the incarnation."""

    def __init__(
        self, store: MemorySnapshotStore, index: int, term: int, members: tuple[str, ...], size: int, crc: int
    ) -> None:
        self.index, self.term, self.members, self.size, self.crc = index, term, members, size, crc
        self._store = store
        self._data: bytearray | None = bytearray()

    def __repr__(self) -> str:
        return f"MemorySnapshotWriter(index={self.index}, {self.written}/{self.size} bytes)"

    def _buffer(self) -> bytearray:
        self._store._live()
        if self._data is None:
            raise RuntimeError("this snapshot write was finished or aborted")
        return self._data

    @property
    def written(self) -> int:
        """How many bytes of the data have been written."""
        return len(self._data) if self._data is not None else 0

    async def write(self, offset: int, chunk: bytes) -> None:
        """Write ``chunk`` at ``offset``.

        Raises:
            ValueError: ``offset`` is not ``written``, or the chunk runs past ``size``.
        """
        data = self._buffer()
        _check_chunk(self.written, self.size, offset, chunk)
        data += chunk
        await anyio.lowlevel.checkpoint()

    async def finish(self) -> Snapshot:
        """Verify the data and make it the store's snapshot, durably.

        Raises:
            ValueError: the data is short or fails its CRC-32; the write is aborted.
        """
        data = bytes(self._buffer())
        self._data = None
        _check_whole(self.size, self.crc, len(data), zlib.crc32(data))
        snapshot = Snapshot(self.index, self.term, self.members, data)
        await self._store._install(snapshot)
        return snapshot

    def abort(self) -> None:
        """Throw away what was written."""
        self._data = None
