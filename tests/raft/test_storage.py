"""MemoryStorage: the log, term and snapshot stores, durable only at sync(), reset to it by open()."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genstatem.raft._log import Entry
from genstatem.raft._memory_storage import MemoryLogStore, MemoryStorage
from genstatem.raft._storage import STALE, Snapshot


def entries(first: int, terms: Iterable[int]) -> list[Entry]:
    """Entries from index ``first`` with the given terms, each command naming its index."""
    return [Entry(first + i, term, f"c{first + i}".encode()) for i, term in enumerate(terms)]


def fresh_log(*terms: int) -> MemoryLogStore:
    """A log store holding entries 1.. with the given terms."""
    log, _, _ = MemoryStorage().open()
    log.append(entries(1, terms))
    return log


# -- the log, within one incarnation ------------------------------------------------


def test_empty_log() -> None:
    """An empty log starts at 1, ends at 0 with term 0, and knows only index 0 (term 0)."""
    log, _, _ = MemoryStorage().open()
    assert (log.first_index(), log.last_index(), log.last_term()) == (1, 0, 0)
    assert log.term_at(0) == 0
    assert log.term_at(1) is None
    assert log.entries(1, 10) == []
    with pytest.raises(IndexError):
        log.entry(1)


def test_append_and_read() -> None:
    """Appended entries are readable at once by index, by term and as ranges."""
    log = fresh_log(1, 1, 2)
    assert (log.first_index(), log.last_index(), log.last_term()) == (1, 3, 2)
    assert [log.term_at(i) for i in range(5)] == [0, 1, 1, 2, None]
    assert log.entry(2) == Entry(2, 1, b"c2")
    assert log.entries(1, 4) == entries(1, [1, 1, 2])
    assert log.entries(2, 3) == [Entry(2, 1, b"c2")]


def test_entries_range_edges() -> None:
    """entries() clamps a stop past the end and is empty for a start past the end or stop <= start."""
    log = fresh_log(1, 1, 1)
    assert log.entries(2, 100) == entries(2, [1, 1])
    assert log.entries(4, 10) == []
    assert log.entries(9, 10) == []
    assert log.entries(3, 2) == []


@pytest.mark.parametrize("index", [-1, 0, 4])
def test_entry_not_held(index: int) -> None:
    """entry() raises IndexError for an index it does not hold."""
    with pytest.raises(IndexError, match="not held"):
        fresh_log(1, 1, 1).entry(index)


def test_entries_max_bytes() -> None:
    """max_bytes trims by Entry.size() but always returns at least one entry."""
    log, _, _ = MemoryStorage().open()
    log.append([Entry(i, 1, b"x" * 8) for i in range(1, 6)])  # 80 bytes each
    assert len(log.entries(1, 6, max_bytes=240)) == 3
    assert len(log.entries(1, 6, max_bytes=239)) == 2
    assert len(log.entries(1, 6, max_bytes=1)) == 1
    assert len(log.entries(1, 6, max_bytes=0)) == 1
    assert len(log.entries(1, 6, max_bytes=10_000)) == 5
    assert log.entries(6, 9, max_bytes=1) == []


@pytest.mark.parametrize(
    "batch",
    [
        entries(6, [2]),  # a gap
        entries(4, [2]),  # overwrites the last entry
        [Entry(5, 2, b""), Entry(7, 2, b"")],  # a gap inside the batch
        entries(5, [1]),  # a term lower than the last
        [Entry(5, 3, b""), Entry(6, 2, b"")],  # a term going down inside the batch
    ],
)
def test_append_must_continue_the_log(batch: list[Entry]) -> None:
    """An append not continuing at last+1 with non-decreasing terms raises ValueError and appends nothing."""
    log = fresh_log(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"continue the log|never decrease"):
        log.append(batch)
    assert log.last_index() == 4


def test_append_nothing() -> None:
    """Appending an empty batch changes nothing."""
    log = fresh_log(1)
    log.append([])
    assert log.last_index() == 1


def test_truncate_from() -> None:
    """truncate_from drops the index and everything after it; the log then continues from there."""
    log = fresh_log(1, 1, 2, 2)
    log.truncate_from(3)
    assert (log.last_index(), log.last_term()) == (2, 1)
    assert log.term_at(3) is None
    log.append(entries(3, [3]))
    assert log.term_at(3) == 3
    log.truncate_from(10)
    assert log.last_index() == 3
    log.truncate_from(1)
    assert (log.first_index(), log.last_index(), log.last_term()) == (1, 0, 0)


def test_truncate_compacted_refused() -> None:
    """truncate_from at or before the compaction point raises ValueError."""
    log = fresh_log(1, 1, 1)
    with pytest.raises(ValueError, match="compacted"):
        log.truncate_from(0)
    log.compact(2, 1)
    with pytest.raises(ValueError, match="compacted"):
        log.truncate_from(2)
    log.truncate_from(3)
    assert log.last_index() == 2


def test_compact_keeps_the_matching_suffix() -> None:
    """compact(i, t) with the log's own term at i drops up to i and keeps what follows."""
    log = fresh_log(1, 1, 2, 2, 3)
    log.compact(3, 2)
    assert (log.first_index(), log.last_index(), log.last_term()) == (4, 5, 3)
    assert [log.term_at(i) for i in range(1, 7)] == [None, None, 2, 2, 3, None]
    assert log.entries(4, 6) == entries(4, [2, 3])
    with pytest.raises(IndexError):
        log.entry(3)
    with pytest.raises(IndexError, match="compacted"):
        log.entries(3, 6)


def test_compact_everything() -> None:
    """Compacting at the last index leaves an empty log that reports the snapshot's index and term."""
    log = fresh_log(1, 2)
    log.compact(2, 2)
    assert (log.first_index(), log.last_index(), log.last_term()) == (3, 2, 2)
    assert log.entries(3, 10) == []
    log.append(entries(3, [4]))
    assert (log.last_index(), log.last_term()) == (3, 4)


@pytest.mark.parametrize(("index", "term"), [(3, 5), (9, 4)])
def test_compact_conflicting_snapshot_discards_the_log(index: int, term: int) -> None:
    """A snapshot whose (index, term) the log does not have replaces the whole log (InstallSnapshot's rule)."""
    log = fresh_log(1, 1, 2, 2, 3)
    log.compact(index, term)
    assert (log.first_index(), log.last_index(), log.last_term()) == (index + 1, index, term)
    assert log.term_at(index) == term
    assert log.term_at(index + 1) is None


def test_compact_backwards_does_nothing() -> None:
    """Compacting at or before the compaction point changes nothing."""
    log = fresh_log(1, 1, 2)
    log.compact(2, 1)
    log.compact(2, 7)
    log.compact(1, 1)
    assert (log.first_index(), log.last_index(), log.term_at(2)) == (3, 3, 1)


# -- durability: sync() and open() ----------------------------------------------------


@pytest.mark.anyio
async def test_log_unsynced_lost_synced_kept() -> None:
    """open() keeps the synced entries and loses the ones appended after the last sync."""
    storage = MemoryStorage()
    log, _, _ = storage.open()
    log.append(entries(1, [1, 1]))
    await log.sync()
    log.append(entries(3, [2]))
    log, _, _ = storage.open()
    assert log.entries(1, 10) == entries(1, [1, 1])
    assert storage.statistics().entries_lost == 1


@pytest.mark.anyio
async def test_unsynced_truncation_lost() -> None:
    """A truncation not synced is undone by open(): the truncated entries come back."""
    storage = MemoryStorage()
    log, _, _ = storage.open()
    log.append(entries(1, [1, 1, 1]))
    await log.sync()
    log.truncate_from(2)
    log.append(entries(2, [2]))
    log, _, _ = storage.open()
    assert log.entries(1, 10) == entries(1, [1, 1, 1])


@pytest.mark.anyio
async def test_synced_truncation_kept() -> None:
    """A synced truncation and the entries appended after it survive open()."""
    storage = MemoryStorage()
    log, _, _ = storage.open()
    log.append(entries(1, [1, 1, 1]))
    await log.sync()
    log.truncate_from(2)
    log.append(entries(2, [2, 2]))
    await log.sync()
    log, _, _ = storage.open()
    assert log.entries(1, 10) == entries(1, [1, 2, 2])


@pytest.mark.anyio
async def test_compaction_durable_only_after_sync() -> None:
    """An unsynced compaction is undone by open(); a synced one is kept."""
    storage = MemoryStorage()
    log, _, _ = storage.open()
    log.append(entries(1, [1, 1, 2]))
    await log.sync()
    log.compact(2, 1)
    log, _, _ = storage.open()
    assert log.first_index() == 1
    log.compact(2, 1)
    await log.sync()
    log, _, _ = storage.open()
    assert (log.first_index(), log.last_index(), log.term_at(2)) == (3, 3, 1)
    assert storage.durable().compacted_index == 2


@pytest.mark.anyio
async def test_term_store_durability() -> None:
    """The term and vote start at (0, None), read back at once, and survive open() only once synced."""
    storage = MemoryStorage()
    _, terms, _ = storage.open()
    assert terms.load() == (0, None)
    terms.save(1, "a")
    assert terms.load() == (1, "a")
    await terms.sync()
    terms.save(2, None)
    _, terms, _ = storage.open()
    assert terms.load() == (1, "a")
    assert (storage.durable().term, storage.durable().voted_for) == (1, "a")


def test_term_store_refuses_unsafe_saves() -> None:
    """The term never goes down and a vote, once cast in a term, cannot change or be forgotten."""
    _, terms, _ = MemoryStorage().open()
    terms.save(3, None)
    terms.save(3, "b")
    terms.save(3, "b")
    with pytest.raises(ValueError, match="never goes down"):
        terms.save(2, None)
    with pytest.raises(ValueError, match="already voted"):
        terms.save(3, "c")
    with pytest.raises(ValueError, match="already voted"):
        terms.save(3, None)
    terms.save(4, None)
    assert terms.load() == (4, None)


@pytest.mark.anyio
async def test_snapshot_store_durability() -> None:
    """A snapshot is read back at once and survives open() only once synced."""
    storage = MemoryStorage()
    _, _, snapshots = storage.open()
    assert snapshots.load() is None
    first = Snapshot(3, 1, ("a", "b"), b"state")
    snapshots.save(first)
    assert snapshots.load() == first
    await snapshots.sync()
    snapshots.save(Snapshot(5, 2, ("a",), b"newer"))
    _, _, snapshots = storage.open()
    assert snapshots.load() == first
    assert storage.durable().snapshot == first


def test_snapshot_store_refuses_older() -> None:
    """Saving a snapshot older than the one held raises ValueError; the same index is allowed."""
    _, _, snapshots = MemoryStorage().open()
    snapshots.save(Snapshot(5, 2, ("a",), b"x"))
    snapshots.save(Snapshot(5, 2, ("a",), b"x"))
    with pytest.raises(ValueError, match="older"):
        snapshots.save(Snapshot(4, 2, ("a",), b"y"))


def test_snapshot_members_become_a_tuple() -> None:
    """A member list given as a list is kept as a tuple, so a snapshot stays hashable."""
    snapshot = Snapshot(1, 1, ["a", "b"], b"")
    assert snapshot.members == ("a", "b")
    assert hash(snapshot) == hash(Snapshot(1, 1, ("a", "b"), b""))


@pytest.mark.anyio
async def test_stores_sync_separately() -> None:
    """Syncing one store does not make another store's writes durable."""
    storage = MemoryStorage()
    log, terms, snapshots = storage.open()
    log.append(entries(1, [1]))
    terms.save(1, "a")
    snapshots.save(Snapshot(1, 1, ("a",), b""))
    await terms.sync()
    log, terms, snapshots = storage.open()
    assert (log.last_index(), terms.load(), snapshots.load()) == (0, (1, "a"), None)


@pytest.mark.anyio
async def test_stale_stores_refuse() -> None:
    """After open(), every method of the previous incarnation's stores raises RuntimeError."""
    storage = MemoryStorage()
    log, terms, snapshots = storage.open()
    log.append(entries(1, [1]))
    await log.sync()
    storage.open()
    calls: list[Any] = [
        log.first_index,
        log.last_index,
        log.last_term,
        lambda: log.term_at(1),
        lambda: log.entry(1),
        lambda: log.entries(1, 2),
        lambda: log.append(entries(2, [1])),
        lambda: log.truncate_from(1),
        lambda: log.compact(1, 1),
        terms.load,
        lambda: terms.save(5, "x"),
        snapshots.load,
        lambda: snapshots.save(Snapshot(1, 1, (), b"")),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match=STALE):
            call()
    for store in (log, terms, snapshots):
        with pytest.raises(RuntimeError, match=STALE):
            await store.sync()
    assert storage.durable().entries == tuple(entries(1, [1]))
    assert storage.durable().term == 0


@pytest.mark.anyio
async def test_statistics() -> None:
    """statistics() counts opens, syncs per store, and entries appended, truncated and lost."""
    storage = MemoryStorage()
    log, terms, snapshots = storage.open()
    log.append(entries(1, [1, 1, 1]))
    await log.sync()
    log.truncate_from(2)
    log.append(entries(2, [2]))
    await log.sync()
    terms.save(1, None)
    await terms.sync()
    await snapshots.sync()
    log.append(entries(3, [2, 2]))
    storage.open()
    assert attrs.asdict(storage.statistics()) == {
        "opens": 2,
        "log_syncs": 2,
        "term_syncs": 1,
        "snapshot_syncs": 1,
        "entries_appended": 6,
        "entries_truncated": 2,
        "entries_lost": 2,
    }


def test_durable_does_not_disturb_the_open_stores() -> None:
    """durable() reads what a restart would see while the current stores stay usable."""
    storage = MemoryStorage()
    log, _, _ = storage.open()
    log.append(entries(1, [1]))
    assert storage.durable().entries == ()
    assert log.last_index() == 1


# -- property: durable is the state at the last sync -----------------------------------


@attrs.define
class Model:
    """The obvious log: a compaction point and a list, copied whole at every sync."""

    offset: int = 0
    offset_term: int = 0
    entries: list[Entry] = attrs.Factory(list)

    def copy(self) -> Model:
        return Model(self.offset, self.offset_term, list(self.entries))

    def last(self) -> tuple[int, int]:
        return (self.entries[-1].index, self.entries[-1].term) if self.entries else (self.offset, self.offset_term)

    def term_at(self, index: int) -> int | None:
        if index == self.offset:
            return self.offset_term
        return next((e.term for e in self.entries if e.index == index), None)

    def compact(self, index: int, term: int) -> None:
        if index <= self.offset:
            return
        keep = self.term_at(index) == term
        self.entries = [e for e in self.entries if e.index > index] if keep else []
        self.offset, self.offset_term = index, term


operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 3), st.integers(0, 1)),
        st.tuples(st.just("truncate"), st.integers(-1, 4)),
        st.tuples(st.just("compact"), st.integers(0, 4), st.booleans()),
        st.tuples(st.just("sync"), st.sampled_from(["log", "terms", "snapshots"])),
        st.tuples(st.just("save_term"), st.integers(0, 1), st.sampled_from([None, "a", "b"])),
        st.tuples(st.just("save_snapshot"), st.integers(0, 3)),
        st.tuples(st.just("open"), st.none()),
    ),
    max_size=40,
)


def check_log(log: MemoryLogStore, model: Model) -> None:
    """Every read of ``log`` agrees with ``model``."""
    last_index, last_term = model.last()
    assert (log.first_index(), log.last_index(), log.last_term()) == (model.offset + 1, last_index, last_term)
    assert log.entries(log.first_index(), last_index + 1) == model.entries
    for index in range(max(model.offset - 1, 0), last_index + 2):
        assert log.term_at(index) == model.term_at(index)


@pytest.mark.anyio
@settings(max_examples=150, deadline=None)
@given(operations)
async def test_durable_is_the_state_at_the_last_sync(steps: list[tuple[Any, ...]]) -> None:
    """Random appends, truncates, compactions, saves, syncs, opens: a restart sees what each store last synced."""
    storage = MemoryStorage()
    log, terms, snapshots = storage.open()
    pending, durable = Model(), Model()
    term_pending = term_durable = (0, None)
    snap_pending = snap_durable = None
    for step in steps:
        match step:
            case ("append", count, bump):
                index, term = pending.last()
                batch = entries(index + 1, [term + bump] * count)
                log.append(batch)
                pending.entries += batch
            case ("truncate", back):
                index = pending.last()[0] - back
                if index <= pending.offset:
                    with pytest.raises(ValueError, match="compacted"):
                        log.truncate_from(index)
                else:
                    log.truncate_from(index)
                    pending.entries = [e for e in pending.entries if e.index < index]
            case ("compact", ahead, matching):
                index = pending.offset + ahead
                held = pending.term_at(index) if matching else None
                snapshot_term = held if held is not None else pending.last()[1] + 1
                log.compact(index, snapshot_term)
                pending.compact(index, snapshot_term)
            case ("sync", "log"):
                await log.sync()
                durable = pending.copy()
            case ("sync", "terms"):
                await terms.sync()
                term_durable = term_pending
            case ("sync", "snapshots"):
                await snapshots.sync()
                snap_durable = snap_pending
            case ("save_term", bump, vote):
                term = term_pending[0] + bump
                if bump == 0 and term_pending[1] not in (None, vote):
                    vote = term_pending[1]
                terms.save(term, vote)
                term_pending = (term, vote)
            case ("save_snapshot", ahead):
                index = (snap_pending.index if snap_pending else 0) + ahead
                snap_pending = Snapshot(index, 1, ("a",), str(index).encode())
                snapshots.save(snap_pending)
            case ("open", _):
                old = log
                log, terms, snapshots = storage.open()
                with pytest.raises(RuntimeError, match=STALE):
                    old.last_index()
                pending, term_pending, snap_pending = durable.copy(), term_durable, snap_durable
        check_log(log, pending)
        assert terms.load() == term_pending
        assert snapshots.load() == snap_pending
        seen = storage.durable()
        assert (seen.compacted_index, seen.compacted_term, list(seen.entries)) == (
            durable.offset,
            durable.offset_term,
            durable.entries,
        )
        assert (seen.term, seen.voted_for, seen.snapshot) == (*term_durable, snap_durable)
