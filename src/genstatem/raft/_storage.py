"""What a Raft node persists: its log, its term and vote, its latest snapshot.

Raft is safe only if a node remembers, across a crash, what it promised before
it crashed: the entries it acknowledged, the vote it cast. So every store
separates a write from its durability: ``append``, ``save`` and friends change
what the node sees at once, and only ``sync()`` makes the change survive a
crash, the way ``write`` and ``fsync`` do on a disk. A node must ``await
sync()`` before it sends anything that depends on the change.

Two stores implement these protocols: ``FileStorage`` (``_file_storage.py``)
on disk, and ``MemoryStorage`` (``_memory_storage.py``) for tests.

Stores are synced one by one. A node that compacts its log after a snapshot
should sync the snapshot store first, or a crash in between can leave entries
compacted away with no snapshot covering them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ._log import Entry

STALE = "stale store: the node was restarted"


class LogStore(Protocol):
    """The log: entries from ``first_index()`` to ``last_index()``, the ones before covered by a snapshot.

    Reads see every write of this incarnation, synced or not.
    """

    def first_index(self) -> int:
        """The first index held: 1 with nothing compacted, else the snapshot's index + 1."""
        ...

    def last_index(self) -> int:
        """The last index held: 0 for an empty log, the snapshot's index when everything is compacted."""
        ...

    def last_term(self) -> int:
        """The term of ``last_index()``: 0 for an empty log, the snapshot's term when everything is compacted."""
        ...

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index``; the snapshot's term at the snapshot's index (0 at index 0).

        Returns ``None`` for an index beyond the last or before the snapshot.
        """
        ...

    def entry(self, index: int) -> Entry:
        """The entry at ``index``; ``IndexError`` if it is not held."""
        ...

    def entries(self, start: int, stop: int, *, max_bytes: int | None = None) -> list[Entry]:
        """Entries ``start`` to ``stop - 1`` (``stop`` past the end is clamped).

        With ``max_bytes``, as many as fit by ``Entry.size()``, but always at
        least one if there is any, so a large entry still makes progress.
        ``IndexError`` if ``start`` was compacted: send the snapshot instead.
        """
        ...

    def append(self, entries: Sequence[Entry]) -> None:
        """Add entries after the last; ``ValueError`` if they do not continue the log. Not durable until ``sync()``."""
        ...

    def truncate_from(self, index: int) -> None:
        """Drop ``index`` and everything after it; ``ValueError`` if it is compacted. Not durable until ``sync()``."""
        ...

    def compact(self, index: int, term: int) -> None:
        """Drop the entries a snapshot at (``index``, ``term``) covers. Not durable until ``sync()``."""
        ...

    async def sync(self) -> None:
        """Make every change so far durable."""
        ...


class TermStore(Protocol):
    """The current term and the vote cast in it."""

    def load(self) -> tuple[int, str | None]:
        """``(current_term, voted_for)`` as last saved by this incarnation, else as persisted; (0, None) at first."""
        ...

    def save(self, term: int, voted_for: str | None) -> None:
        """Record the term and the vote in it. Not durable until ``sync()``."""
        ...

    async def sync(self) -> None:
        """Make the last ``save`` durable."""
        ...


class Storage(Protocol):
    """A node's storage, outliving the node: each ``open()`` starts an incarnation from what was synced.

    ``MemoryStorage`` (tests, simulations) and ``FileStorage`` (a directory
    on disk) are the two that ship.
    """

    def open(self) -> tuple[LogStore, TermStore, SnapshotStore]:
        """Start a new incarnation: the stores a (re)starting node reads and writes."""
        ...


def _members(value: Any) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Snapshot:
    """A state machine snapshot and the log position it replaces.

    Attributes:
        index: the last log index it covers.
        term: the term of that entry.
        members: the cluster membership as of ``index``.
        data: what ``StateMachine.snapshot()`` returned.
    """

    index: int
    term: int
    members: tuple[str, ...] = attrs.field(converter=_members)
    data: bytes


class SnapshotWriter(Protocol):
    """A snapshot arriving from the leader in chunks: written as they come, installed only whole and verified.

    Attributes:
        index: the last log index the snapshot covers.
        term: the term of that entry.
        members: the cluster membership as of ``index``.
        size: the length of the snapshot's data, in bytes.
        crc: the CRC-32 of the data, checked by ``finish()``.
    """

    index: int
    term: int
    members: tuple[str, ...]
    size: int
    crc: int

    @property
    def written(self) -> int:
        """How many bytes of the data have been written: the offset of the next chunk."""
        ...

    async def write(self, offset: int, chunk: bytes) -> None:
        """Write ``chunk`` at ``offset``, which must be ``written``; ``ValueError`` otherwise or past ``size``."""
        ...

    async def finish(self) -> Snapshot:
        """Verify the data (size, CRC-32) and make it the store's snapshot, durably; ``ValueError`` if it is bad."""
        ...

    def abort(self) -> None:
        """Throw away what was written; the store's snapshot is unchanged."""
        ...


class SnapshotStore(Protocol):
    """The latest snapshot: saved whole (a node's own) or streamed in (the leader's, through ``begin``)."""

    def load(self) -> Snapshot | None:
        """The snapshot as last saved by this incarnation, else as persisted; ``None`` if there is none."""
        ...

    def save(self, snapshot: Snapshot) -> None:
        """Replace the snapshot. Not durable until ``sync()``."""
        ...

    async def sync(self) -> None:
        """Make the last ``save`` durable."""
        ...

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of the snapshot's data from ``offset``; ``LookupError`` if there is no snapshot."""
        ...

    def begin(self, index: int, term: int, members: tuple[str, ...], size: int, crc: int) -> SnapshotWriter:
        """Start receiving a snapshot (an unfinished one begun earlier is aborted); nothing durable until ``finish``."""
        ...


@attrs.frozen
class StorageStatistics:
    """Counters of a ``MemoryStorage`` over all its incarnations, for tests.

    Attributes:
        opens: how many times it was opened (incarnations started).
        log_syncs: calls of ``LogStore.sync()``.
        term_syncs: calls of ``TermStore.sync()``.
        snapshot_syncs: calls of ``SnapshotStore.sync()``.
        entries_appended: entries passed to ``append``, synced or not.
        entries_truncated: entries dropped by ``truncate_from``, synced or not.
        entries_lost: entries appended but not synced when ``open()`` started
            a new incarnation, which therefore does not have them.
    """

    opens: int
    log_syncs: int
    term_syncs: int
    snapshot_syncs: int
    entries_appended: int
    entries_truncated: int
    entries_lost: int


@attrs.frozen
class DurableState:
    """What a ``MemoryStorage`` holds durably: what the next incarnation will start from.

    Attributes:
        term: the persisted current term.
        voted_for: the persisted vote in that term.
        compacted_index: the log index up to which entries were compacted (0 for none).
        compacted_term: the term at ``compacted_index``.
        entries: the persisted entries after ``compacted_index``.
        snapshot: the persisted snapshot.
    """

    term: int
    voted_for: str | None
    compacted_index: int
    compacted_term: int
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None


@attrs.define
class _Log:
    """Entries after a compaction point: ``entries[i]`` has index ``offset + 1 + i``."""

    offset: int = 0
    offset_term: int = 0
    entries: list[Entry] = attrs.Factory(list)

    def copy(self) -> _Log:
        return _Log(self.offset, self.offset_term, list(self.entries))

    def last_index(self) -> int:
        return self.offset + len(self.entries)

    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.offset_term

    def entry(self, index: int) -> Entry:
        """The entry at ``index``; ``IndexError`` if it is compacted or beyond the last."""
        if not self.offset < index <= self.last_index():
            raise IndexError(f"log index {index} not held: the log holds {self.offset + 1} to {self.last_index()}")
        return self.entries[index - self.offset - 1]

    def slice(self, start: int, stop: int, max_bytes: int | None) -> list[Entry]:
        """``LogStore.entries``: ``start`` to ``stop - 1``, within ``max_bytes`` but at least one."""
        if start <= self.offset:
            raise IndexError(f"log index {start} is compacted: the log starts at {self.offset + 1}")
        chosen = self.entries[start - self.offset - 1 : max(stop - self.offset - 1, 0)]
        if max_bytes is None or not chosen:
            return chosen
        total = chosen[0].size()
        for count, entry in enumerate(chosen[1:], start=1):
            total += entry.size()
            if total > max_bytes:
                return chosen[:count]
        return chosen

    def check_continued_by(self, entries: Sequence[Entry]) -> None:
        """``ValueError`` unless ``entries`` run on from the last index one by one, with terms never decreasing."""
        index, term = self.last_index(), self.last_term()
        for entry in entries:
            if entry.index != index + 1:
                raise ValueError(f"append must continue the log at index {index + 1}, got index {entry.index}")
            if entry.term < term:
                raise ValueError(f"log terms never decrease: entry {entry.index} has term {entry.term} after {term}")
            index, term = entry.index, entry.term

    def term_at(self, index: int) -> int | None:
        if index == self.offset:
            return self.offset_term
        if self.offset < index <= self.last_index():
            return self.entries[index - self.offset - 1].term
        return None

    def truncate_from(self, index: int) -> int:
        """Drop ``index`` onwards (``index > offset``); return how many entries went."""
        position = max(index - self.offset - 1, 0)
        dropped = len(self.entries) - position
        del self.entries[position:]
        return max(dropped, 0)

    def compact(self, index: int, term: int) -> None:
        """Make (``index``, ``term``) the compaction point, keeping what follows only if the log agrees with it.

        This is the rule of Raft's InstallSnapshot: an entry at the snapshot's
        index with the snapshot's term vouches for the entries after it;
        otherwise they may conflict with the snapshot and all go.
        """
        if index <= self.offset:
            return
        if self.term_at(index) == term:
            del self.entries[: index - self.offset]
        else:
            self.entries.clear()
        self.offset = index
        self.offset_term = term


def _check_vote(held_term: int, held_vote: str | None, term: int, voted_for: str | None) -> None:
    """``ValueError`` if saving (``term``, ``voted_for``) over the held ones would let the node vote twice in a term."""
    if term < held_term:
        raise ValueError(f"the term never goes down: {term} after {held_term}")
    if term == held_term and held_vote is not None and voted_for != held_vote:
        raise ValueError(f"already voted for {held_vote!r} in term {term}, cannot change it to {voted_for!r}")


def _check_chunk(written: int, size: int, offset: int, chunk: bytes) -> None:
    if offset != written:
        raise ValueError(f"snapshot chunk at offset {offset}, but {written} bytes are written")
    if offset + len(chunk) > size:
        raise ValueError(f"snapshot chunk runs to {offset + len(chunk)}, past the snapshot's {size} bytes")


def _check_whole(size: int, crc: int, written: int, found_crc: int) -> None:
    if written != size:
        raise ValueError(f"snapshot incomplete: {written} of {size} bytes")
    if found_crc != crc:
        raise ValueError(f"snapshot data fails its check: CRC-32 {found_crc:#010x}, expected {crc:#010x}")


class LogReads:
    """A ``LogStore``'s reads, the same for every store: check the store is live, then ask the log it holds."""

    _held: _Log  # the log this store holds, synced or not

    if TYPE_CHECKING:

        def _live(self) -> object: ...  # the store's own view: refuses a stale store

    def first_index(self) -> int:
        """The first index held: 1 with nothing compacted, else the compaction index + 1."""
        self._live()
        return self._held.offset + 1

    def last_index(self) -> int:
        """The last index held (the compaction index when nothing follows it; 0 for an empty log)."""
        self._live()
        return self._held.last_index()

    def last_term(self) -> int:
        """The term of ``last_index()`` (0 for an empty log)."""
        self._live()
        return self._held.last_term()

    def term_at(self, index: int) -> int | None:
        """The term at ``index``, the compaction term at the compaction index, ``None`` outside the log."""
        self._live()
        return self._held.term_at(index)

    def entry(self, index: int) -> Entry:
        """The entry at ``index``.

        Raises:
            IndexError: if ``index`` is compacted or beyond the last.
        """
        self._live()
        return self._held.entry(index)

    def entries(self, start: int, stop: int, *, max_bytes: int | None = None) -> list[Entry]:
        """Entries ``start`` to ``stop - 1``, at most ``max_bytes`` of them by ``Entry.size()`` but at least one.

        Raises:
            IndexError: if ``start`` is compacted (the follower needs the snapshot).
        """
        self._live()
        return self._held.slice(start, stop, max_bytes)
