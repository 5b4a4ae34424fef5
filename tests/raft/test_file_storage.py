"""FileStorage: the stores of MemoryStorage on disk, recovering exactly what was synced, refusing what is damaged."""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import types
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from genstatem.raft import Entry, FileStorage, MemoryStorage, Snapshot, StorageError
from genstatem.raft import _file_storage as fs
from genstatem.raft._storage import STALE

pytestmark = pytest.mark.anyio


def entries(first: int, terms: Iterable[int], size: int = 3) -> list[Entry]:
    """Entries from index ``first`` with the given terms, each command naming its index."""
    return [Entry(first + i, term, f"c{first + i}".encode().ljust(size, b".")) for i, term in enumerate(terms)]


def segments(directory: Path) -> list[Path]:
    """The log segment files, oldest first."""
    return sorted(directory.glob("log-*.seg"))


def reopened(directory: Path) -> tuple[Any, Any, Any]:
    """The stores of a fresh ``FileStorage`` on ``directory`` (as a new process would see it), then closed."""
    with FileStorage(directory, node="a", cluster="c") as storage:
        log, terms, snapshots = storage.open()
        return log.first_index(), log.entries(log.first_index(), log.last_index() + 1), (terms.load(), snapshots.load())


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[FileStorage]:
    """A FileStorage for node "a" of cluster "c" in a fresh directory."""
    with FileStorage(tmp_path / "a", node="a", cluster="c") as opened:
        yield opened


# -- the stores, as MemoryStorage's ----------------------------------------------------------


async def test_a_fresh_directory_is_an_empty_node(storage: FileStorage) -> None:
    """A new directory opens as an empty log at term 0 with no vote and no snapshot."""
    log, terms, snapshots = storage.open()
    assert (log.first_index(), log.last_index(), log.last_term(), log.term_at(0)) == (1, 0, 0, 0)
    assert terms.load() == (0, None)
    assert snapshots.load() is None
    assert sorted(path.name for path in storage.directory.iterdir()) == ["LOCK", "meta"]


async def test_synced_writes_survive_a_restart_and_unsynced_ones_do_not(storage: FileStorage) -> None:
    """Appends, truncations and saves synced before a restart are there after it; the rest is gone."""
    log, terms, snapshots = storage.open()
    log.append(entries(1, [1, 1, 1, 2]))
    await log.sync()
    log.truncate_from(3)
    log.append(entries(3, [3]))
    await log.sync()
    terms.save(3, "b")
    await terms.sync()
    snapshots.save(Snapshot(2, 1, ("a", "b"), b"state"))
    await snapshots.sync()
    log.append(entries(4, [3, 3]))
    terms.save(4, None)
    snapshots.save(Snapshot(3, 3, ("a",), b"later"))

    log, terms, snapshots = storage.open()
    assert log.entries(1, 10) == [*entries(1, [1, 1]), *entries(3, [3])]
    assert terms.load() == (3, "b")
    assert snapshots.load() == Snapshot(2, 1, ("a", "b"), b"state")
    expected = (1, log.entries(1, 10), ((3, "b"), snapshots.load()))
    assert reopened_after_close(storage) == expected


async def test_every_entry_field_round_trips(tmp_path: Path) -> None:
    """Commands, kinds, sessions and configs read back from disk equal to what was appended."""
    written = [
        Entry(1, 1, b"", kind="noop"),
        Entry(2, 1, bytes(range(256)) * 40, client="orders-1", seq=7),
        Entry(3, 2, b"", kind="config", config=("a", "b", "c")),
    ]
    with FileStorage(tmp_path, node="a", cluster="c") as storage:
        log, _, _ = storage.open()
        log.append(written)
        await log.sync()
    assert reopened(tmp_path)[1] == written


async def test_compaction_writes_a_new_base_segment_and_deletes_the_old(storage: FileStorage) -> None:
    """A synced compaction leaves one segment, holding the compaction point and the entries after it."""
    log, _, _ = storage.open()
    log.append(entries(1, [1, 1, 2, 2]))
    await log.sync()
    before = segments(storage.directory)
    log.compact(2, 1)
    log.append(entries(5, [2]))
    assert segments(storage.directory) == before  # nothing changes on disk before the sync
    await log.sync()
    assert len(segments(storage.directory)) == 1
    assert segments(storage.directory) != before
    log, _, _ = storage.open()
    assert (log.first_index(), log.term_at(2), log.entries(3, 10)) == (3, 1, entries(3, [2, 2, 2]))


async def test_a_compaction_the_log_disagrees_with_drops_the_log(storage: FileStorage) -> None:
    """Compacting at a term the log does not hold there leaves nothing after the snapshot, durably."""
    log, _, _ = storage.open()
    log.append(entries(1, [1, 1, 1]))
    await log.sync()
    log.compact(5, 4)
    await log.sync()
    log, _, _ = storage.open()
    assert (log.first_index(), log.last_index(), log.last_term()) == (6, 5, 4)


async def test_the_stores_refuse_unsafe_writes_as_memory_storage_does(storage: FileStorage) -> None:
    """Gaps, falling terms, compacted truncations, changed votes and older snapshots raise ValueError."""
    log, terms, snapshots = storage.open()
    log.append(entries(1, [2, 2]))
    with pytest.raises(ValueError, match="continue the log at index 3"):
        log.append(entries(4, [2]))
    with pytest.raises(ValueError, match="never decrease"):
        log.append(entries(3, [1]))
    log.compact(1, 2)
    with pytest.raises(ValueError, match="compacted"):
        log.truncate_from(1)
    terms.save(2, "a")
    with pytest.raises(ValueError, match="already voted"):
        terms.save(2, "b")
    with pytest.raises(ValueError, match="never goes down"):
        terms.save(1, None)
    snapshots.save(Snapshot(5, 1, ("a",), b""))
    with pytest.raises(ValueError, match="older"):
        snapshots.save(Snapshot(4, 1, ("a",), b""))


async def test_stores_of_an_earlier_incarnation_or_a_closed_storage_refuse(tmp_path: Path) -> None:
    """After open() or close(), the previous stores raise RuntimeError on every call."""
    storage = FileStorage(tmp_path, node="a", cluster="c")
    old_log, old_terms, old_snapshots = storage.open()
    log, _, _ = storage.open()
    for call in (old_log.last_index, old_terms.load, old_snapshots.load):
        with pytest.raises(RuntimeError, match=STALE):
            call()
    for sync in (old_log.sync, old_terms.sync, old_snapshots.sync):
        with pytest.raises(RuntimeError, match=STALE):
            await sync()
    storage.close()
    with pytest.raises(RuntimeError, match=STALE):
        log.last_index()
    with pytest.raises(RuntimeError, match="closed"):
        storage.open()


async def test_sync_is_one_flush_for_every_write_since_the_last(
    storage: FileStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many appends and a truncation cost one fdatasync at the next sync, and a sync with nothing new none."""
    flushes: list[int] = []
    real = fs._fdatasync
    monkeypatch.setattr(fs, "_fdatasync", lambda fd: (flushes.append(fd), real(fd)))
    log, _, _ = storage.open()
    log.append(entries(1, [1]))
    await log.sync()  # the first sync writes the first segment whole
    for index in range(2, 66):
        log.append(entries(index, [1]))
    log.truncate_from(60)
    await log.sync()
    await log.sync()
    assert len(flushes) == 1
    log, _, _ = storage.open()
    assert log.last_index() == 59


@pytest.mark.parametrize("inline_flush_seconds", [0.0, fs.INLINE_FLUSH_SECONDS])
async def test_the_flush_runs_in_a_worker_thread_so_other_tasks_run_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inline_flush_seconds: float
) -> None:
    """While a sync's fdatasync is stuck, another task of the same loop runs (and here, unsticks it).

    With ``inline_flush_seconds=0`` always; with the default, once the disk
    has been seen to be slow.
    """
    storage = FileStorage(tmp_path / "a", node="a", cluster="c", inline_flush_seconds=inline_flush_seconds)
    release = threading.Event()
    real = fs._fdatasync

    def stuck(fd: int) -> None:
        assert release.wait(10), "the event loop was blocked during the flush"
        real(fd)

    log, _, _ = storage.open()
    log.append(entries(1, [1]))
    await log.sync()
    if inline_flush_seconds:
        storage._flush_estimate = fs.STALLED_FLUSH_SECONDS  # as if the last flush had stalled
    monkeypatch.setattr(fs, "_fdatasync", stuck)
    log.append(entries(2, [1]))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(log.sync)
        await anyio.sleep(0.01)
        release.set()
    assert reopened_after_close(storage)[1] == entries(1, [1, 1])


def reopened_after_close(storage: FileStorage) -> tuple[Any, Any, Any]:
    """Close ``storage`` and read its directory back as a new process would."""
    storage.close()
    return reopened(storage.directory)


# -- property: what a restart sees is what MemoryStorage's would --------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 3), st.integers(0, 1)),
        st.tuples(st.just("truncate"), st.integers(-1, 4)),
        st.tuples(st.just("compact"), st.integers(0, 4), st.booleans()),
        st.tuples(st.just("sync"), st.sampled_from(["log", "terms", "snapshots"])),
        st.tuples(st.just("save_term"), st.integers(0, 1), st.sampled_from([None, "a", "b"])),
        st.tuples(st.just("save_snapshot"), st.integers(0, 3)),
        st.tuples(st.just("open"), st.booleans()),
    ),
    max_size=30,
)


def same_view(memory: tuple[Any, Any, Any], disk: tuple[Any, Any, Any]) -> None:
    """The two incarnations' stores answer every read alike."""
    (mlog, mterms, msnaps), (dlog, dterms, dsnaps) = memory, disk
    assert (dlog.first_index(), dlog.last_index(), dlog.last_term()) == (
        mlog.first_index(),
        mlog.last_index(),
        mlog.last_term(),
    )
    assert dlog.entries(dlog.first_index(), dlog.last_index() + 1) == mlog.entries(
        mlog.first_index(), mlog.last_index() + 1
    )
    for index in range(max(mlog.first_index() - 2, 0), mlog.last_index() + 2):
        assert dlog.term_at(index) == mlog.term_at(index)
    assert (dterms.load(), dsnaps.load()) == (mterms.load(), msnaps.load())


async def apply(step: tuple[Any, ...], log: Any, terms: Any, snapshots: Any) -> None:
    """Do ``step`` to one incarnation's stores, choosing indexes and terms from their state (equal on both sides)."""
    match step:
        case ("append", count, bump):
            log.append(entries(log.last_index() + 1, [log.last_term() + bump] * count))
        case ("truncate", back):
            index = log.last_index() - back
            if index >= log.first_index():
                log.truncate_from(index)
        case ("compact", ahead, matching):
            index = log.first_index() - 1 + ahead
            held = log.term_at(index) if matching else None
            log.compact(index, held if held is not None else log.last_term() + 1)
        case ("sync", which):
            await {"log": log, "terms": terms, "snapshots": snapshots}[which].sync()
        case ("save_term", bump, vote):
            term, voted = terms.load()
            if bump == 0 and voted not in (None, vote):
                vote = voted
            terms.save(term + bump, vote)
        case ("save_snapshot", ahead):
            held = snapshots.load()
            index = (held.index if held else 0) + ahead
            snapshots.save(Snapshot(index, 1, ("a",), str(index).encode()))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@settings(max_examples=60, deadline=None)
@given(operations)
async def test_a_restart_sees_what_memory_storage_would(steps: list[tuple[Any, ...]]) -> None:
    """Random writes, syncs and restarts (same object or a new one): FileStorage reads as MemoryStorage does."""
    with tempfile.TemporaryDirectory() as directory:
        memory = MemoryStorage()
        disk = FileStorage(directory, node="a", cluster="c")
        stores = (memory.open(), disk.open())
        try:
            for step in steps:
                for log, terms, snapshots in stores:
                    await apply(step, log, terms, snapshots)
                if step[0] == "open":
                    if step[1]:
                        disk.close()
                        disk = FileStorage(directory, node="a", cluster="c")
                    stores = (memory.open(), disk.open())
                same_view(*stores)
        finally:
            disk.close()


# -- a write cut short: at every byte, the last sync is what recovery finds -----------------------------


def cut_writes(monkeypatch: pytest.MonkeyPatch, at: int, fill: bytes) -> list[int]:
    """Make the next write stop after ``at`` bytes (``fill`` makes up the rest) and then fail, as a crash would.

    Returns a list that gets the length of the write that was cut.
    """
    cut: list[int] = []
    real = fs._write_all

    def write(fd: int, data: bytes) -> None:
        if cut:
            return real(fd, data)
        cut.append(len(data))
        if at < len(data):
            real(fd, data[:at] + fill * (len(data) - at))
            raise OSError(errno.EIO, "the process died here")
        real(fd, data)

    monkeypatch.setattr(fs, "_write_all", write)
    return cut


async def written_then_cut(directory: Path, monkeypatch: pytest.MonkeyPatch, at: int, fill: bytes, action: str) -> int:
    """Sync some state, then cut the next sync's write at byte ``at``; return the length of that write."""
    with FileStorage(directory, node="a", cluster="c") as storage:
        log, terms, snapshots = storage.open()
        log.append(entries(1, [1, 1], size=40))
        await log.sync()
        log.append(entries(3, [1], size=40))  # the first append frame: not a whole-file write
        await log.sync()
        terms.save(1, "a")
        await terms.sync()
        snapshots.save(Snapshot(1, 1, ("a",), b"one"))
        await snapshots.sync()
        with monkeypatch.context() as patch:
            cut = cut_writes(patch, at, fill)
            if action == "append":
                log.append(entries(4, [2, 2], size=40))
            elif action == "compact":
                log.compact(2, 1)
            elif action == "term":
                terms.save(2, "b")
            else:
                snapshots.save(Snapshot(3, 1, ("a",), b"three"))
            store = {"append": log, "compact": log, "term": terms, "snapshot": snapshots}[action]
            try:
                await store.sync()
            except OSError as error:  # the cut: the sync never returned
                if "died" not in str(error):
                    raise
        return cut[0]


BEFORE = (1, entries(1, [1, 1, 1], size=40), ((1, "a"), Snapshot(1, 1, ("a",), b"one")))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("action", ["append", "compact", "term", "snapshot"])
@pytest.mark.parametrize("fill", [b"", b"\0"], ids=["short", "zero-filled"])
async def test_a_write_cut_at_any_byte_recovers_the_last_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str, fill: bytes
) -> None:
    """A sync's write cut at every byte offset (short, or zero-filled to length) reopens at the sync before."""
    monkeypatch.setattr(fs, "_fsync", lambda fd: None)  # a cut write is a crash of the process, not of the disk
    monkeypatch.setattr(fs, "_fdatasync", lambda fd: None)
    length = await written_then_cut(tmp_path / "probe", monkeypatch, 10**9, fill, action)
    after = reopened(tmp_path / "probe")
    assert after != BEFORE
    for at in range(length):
        directory = tmp_path / f"cut-{at}"
        await written_then_cut(directory, monkeypatch, at, fill, action)
        with structlog.testing.capture_logs() as logs:
            assert reopened(directory) == BEFORE, f"cut at byte {at} of {length}"
        torn = [entry for entry in logs if "torn write" in entry["event"]]
        if action == "append" and at > 0:
            assert torn
            assert torn[0]["log_level"] == "warning"
            assert torn[0]["offset"] > 0
        assert reopened(directory) == BEFORE  # and recovery left a clean directory
        shutil.rmtree(directory)


async def test_a_log_recovered_from_a_torn_write_carries_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a torn write is dropped, new appends land where it was and survive the next restart."""
    await written_then_cut(tmp_path, monkeypatch, 30, b"", "append")
    with FileStorage(tmp_path, node="a", cluster="c") as storage:
        log, _, _ = storage.open()
        log.append(entries(4, [3]))
        await log.sync()
    assert reopened(tmp_path)[1] == [*BEFORE[1], *entries(4, [3])]


# -- refusals: damage, strangers, a second process, a newer format -------------------------------------


async def synced_log(directory: Path, syncs: int = 3) -> None:
    """A directory whose log took ``syncs`` syncs of one entry each."""
    with FileStorage(directory, node="a", cluster="c") as storage:
        log, _, _ = storage.open()
        for index in range(1, syncs + 1):
            log.append(entries(index, [1], size=20))
            await log.sync()


def flip(path: Path, offset: int) -> None:
    """Invert one byte of ``path``."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def refused(directory: Path, node: str = "a", cluster: str = "c") -> StorageError:
    """The error opening ``directory`` raises."""
    with pytest.raises(StorageError) as caught, FileStorage(directory, node=node, cluster=cluster) as storage:
        storage.open()
    return caught.value


async def test_damage_before_the_last_frame_is_refused_with_file_offset_and_advice(tmp_path: Path) -> None:
    """A bad byte in a synced frame that has a good frame after it refuses to start, and changes nothing."""
    await synced_log(tmp_path)
    (segment,) = segments(tmp_path)
    size = segment.stat().st_size
    middle = size - 2 * (16 + 20 + 10)  # inside the frame before the last
    flip(segment, middle)
    error = refused(tmp_path)
    assert error.path == segment
    assert error.offset is not None
    assert error.offset <= middle
    assert str(segment) in str(error)
    assert f"offset {error.offset}" in str(error)
    assert "remove_member" in str(error)
    assert "backup" in str(error)
    assert segment.stat().st_size == size


async def test_damage_in_an_earlier_segment_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A segment that is not the last may not end in a bad frame: that was synced."""
    monkeypatch.setattr(fs, "SEGMENT_BYTES", 1)  # every sync after the first starts a new segment
    await synced_log(tmp_path)
    first, *_ = segments(tmp_path)
    assert len(segments(tmp_path)) == 3
    flip(first, first.stat().st_size - 1)
    assert refused(tmp_path).path == first


async def test_a_missing_segment_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gap in the segment numbers is data lost: refused, naming the segment after the gap."""
    monkeypatch.setattr(fs, "SEGMENT_BYTES", 1)
    await synced_log(tmp_path)
    _, middle, last = segments(tmp_path)
    middle.unlink()
    error = refused(tmp_path)
    assert error.path == last
    assert "missing" in str(error)


@pytest.mark.parametrize("name", ["term", "snapshot", "meta"])
async def test_a_damaged_whole_file_is_refused(tmp_path: Path, name: str) -> None:
    """Term, snapshot and meta files are replaced whole, so any damage is refused, not dropped."""
    with FileStorage(tmp_path, node="a", cluster="c") as storage:
        _, terms, snapshots = storage.open()
        terms.save(1, "a")
        await terms.sync()
        snapshots.save(Snapshot(1, 1, ("a",), b"x"))
        await snapshots.sync()
    flip(tmp_path / name, (tmp_path / name).stat().st_size - 1)
    error = refused(tmp_path)
    assert error.path == tmp_path / name
    assert "offset 16" in str(error)


async def test_a_directory_of_another_node_or_cluster_is_refused(tmp_path: Path) -> None:
    """The node and cluster stamped in meta must match, or the storage refuses the directory."""
    await synced_log(tmp_path)
    assert "node 'a' of cluster 'c', not node 'b'" in str(refused(tmp_path, node="b"))
    assert "not node 'a' of cluster 'other'" in str(refused(tmp_path, cluster="other"))
    assert reopened(tmp_path)[1] == entries(1, [1, 1, 1], size=20)


def test_a_directory_with_foreign_files_and_no_meta_is_refused(tmp_path: Path) -> None:
    """A non-empty directory that FileStorage did not make is not taken over."""
    (tmp_path / "notes.txt").write_text("mine")
    assert "not made by FileStorage" in str(refused(tmp_path))


async def test_a_newer_format_is_refused_naming_both_versions(tmp_path: Path) -> None:
    """A file whose header has a later format version is refused with both versions in the message."""
    await synced_log(tmp_path)
    (segment,) = segments(tmp_path)
    data = bytearray(segment.read_bytes())
    data[12:16] = (fs.FORMAT_VERSION + 1).to_bytes(4, "big")
    segment.write_bytes(bytes(data))
    error = refused(tmp_path)
    assert f"format {fs.FORMAT_VERSION + 1} by a newer release" in str(error)
    assert f"reads format {fs.FORMAT_VERSION}" in str(error)


def test_a_directory_held_by_another_process_is_refused(tmp_path: Path) -> None:
    """While another process holds the directory, FileStorage refuses it, naming the holder's pid."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from genstatem.raft import FileStorage; "
            f"s = FileStorage({str(tmp_path)!r}, node='a', cluster='c'); print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        error = refused(tmp_path)
        assert f"pid {holder.pid}" in str(error)
        assert error.path == tmp_path / "LOCK"
    finally:
        holder.communicate(b"")
    with FileStorage(tmp_path, node="a", cluster="c"):
        pass  # the lock went with the process


def test_a_second_storage_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    """Two FileStorage objects in one process cannot hold one directory either; close() lets go."""
    first = FileStorage(tmp_path, node="a", cluster="c")
    assert "held by another process" in str(refused(tmp_path))
    first.close()
    FileStorage(tmp_path, node="a", cluster="c").close()


# -- crashes between the steps of a replacement --------------------------------------------------------


async def test_segments_a_finished_compaction_did_not_delete_are_ignored(tmp_path: Path) -> None:
    """A crash after a compaction's new segment is in place but before the old ones go: the old ones go now."""
    await synced_log(tmp_path)
    (old,) = segments(tmp_path)
    kept = old.read_bytes()
    with FileStorage(tmp_path, node="a", cluster="c") as storage:
        log, _, _ = storage.open()
        log.compact(2, 1)
        await log.sync()
    old.write_bytes(kept)
    assert reopened(tmp_path)[:2] == (3, entries(3, [1], size=20))
    assert old not in segments(tmp_path)


async def test_leftover_temporary_files_are_removed_and_the_old_file_stands(tmp_path: Path) -> None:
    """A replacement that never got renamed (a crash mid-write) leaves the old file in force."""
    await synced_log(tmp_path)
    (tmp_path / "term.tmp").write_bytes(b"half a term file")
    (tmp_path / "log-0000000002.seg.tmp").write_bytes(b"half a segment")
    assert reopened(tmp_path)[2][0] == (0, None)
    assert not [path for path in os.listdir(tmp_path) if path.endswith(".tmp")]


# -- disk full ---------------------------------------------------------------------------------------


async def test_a_failed_sync_stops_the_store_and_a_restart_recovers_the_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC in a sync raises, the log refuses further writes, and a restart finds exactly what was synced."""
    await synced_log(tmp_path, syncs=1)
    storage = FileStorage(tmp_path, node="a", cluster="c")
    log, _, _ = storage.open()
    real: Callable[[int, bytes], None] = fs._write_all

    def full(fd: int, data: bytes) -> None:
        real(fd, data[:5])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fs, "_write_all", full)
    log.append(entries(2, [1]))
    with pytest.raises(OSError, match="No space"):
        await log.sync()
    with pytest.raises(RuntimeError, match="earlier sync of this log failed"):
        log.append(entries(3, [1]))
    monkeypatch.setattr(fs, "_write_all", real)
    log, _, _ = storage.open()
    assert log.entries(1, 10) == entries(1, [1], size=20)
    log.append(entries(2, [2]))
    await log.sync()
    storage.close()
    assert reopened(tmp_path)[1] == [*entries(1, [1], size=20), *entries(2, [2])]


def test_storage_error_keeps_path_and_offset() -> None:
    """StorageError carries the file and offset it names, for programs that report them."""
    error = StorageError("bad", Path("/x/log-0000000001.seg"), 42)
    assert (error.path, error.offset, str(error)) == (Path("/x/log-0000000001.seg"), 42, "bad")


def test_a_negative_inline_flush_bound_is_refused(tmp_path: Path) -> None:
    """inline_flush_seconds is a duration: a negative one (or NaN) is a ValueError, and nothing is created."""
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="inline_flush_seconds"):
            FileStorage(tmp_path / "a", node="a", cluster="c", inline_flush_seconds=bad)
    assert not (tmp_path / "a").exists()


def test_the_segment_name_sorts_by_number() -> None:
    """Segment names have fixed-width numbers, so name order is log order."""
    names = [f"log-{n:010d}.seg" for n in (9, 10, 100)]
    assert sorted(names) == names
    assert all(fs._SEGMENT.fullmatch(name) for name in names)


def writes_in_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the name of each write the storage hands to a worker thread, in order."""
    threaded: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counting(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        threaded.append(args[0].__name__ if function.__name__ == "_timed" else function.__name__)
        return await run_sync(function, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return threaded


async def test_flushes_go_to_a_worker_thread_until_they_are_seen_to_be_fast(
    storage: FileStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first flush runs in a thread; once flushes take less than a thread hand-off, they run in the loop."""
    threaded = writes_in_threads(monkeypatch)
    log, term, _ = storage.open()
    term.save(1, None)
    await term.sync()
    assert threaded == ["_flush_term"]  # nothing measured yet: a thread
    storage._flush_estimate = fs.INLINE_FLUSH_SECONDS / 10  # as if the flushes so far took a tenth of that
    log.append(entries(1, [1]))
    await log.sync()
    assert threaded == ["_flush_term"]  # fast: in the loop
    storage.close()
    _, logged, (voted, _) = reopened(storage.directory)
    assert ([entry.index for entry in logged], voted) == ([1], (1, None))  # both durable all the same


async def test_a_fast_disk_is_measured_and_then_flushed_in_the_loop(
    storage: FileStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first flush's time becomes the estimate: after one fast flush in a thread, the next run in the loop."""
    threaded = writes_in_threads(monkeypatch)
    ticks = itertools.count()
    clock = types.SimpleNamespace(perf_counter=lambda: next(ticks) * 1e-5)  # every flush takes 10 us, load or not
    monkeypatch.setattr(fs, "time", clock)
    log, _, _ = storage.open()
    for index in range(1, 4):
        log.append(entries(index, [1]))
        await log.sync()
    assert storage._flush_estimate < fs.INLINE_FLUSH_SECONDS
    assert threaded == ["_flush_log"]  # only the first, before anything was measured


async def test_a_snapshot_is_written_in_a_worker_thread_even_while_log_flushes_run_in_the_loop(
    storage: FileStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a log frame and the term may be flushed in the loop: a snapshot (of any size) and its chunks never are."""
    log, _, snapshots = storage.open()
    log.append(entries(1, [1]))
    await log.sync()  # the first, a whole base segment
    threaded = writes_in_threads(monkeypatch)
    storage._flush_estimate = 0.0  # as if every flush so far had taken no time
    snapshots.save(Snapshot(1, 1, ("a",), b"state" * 1000))
    await snapshots.sync()
    writer = snapshots.begin(2, 1, ("a",), 4, zlib.crc32(b"data"))
    await writer.write(0, b"data")
    await writer.finish()
    log.append(entries(2, [1]))
    await log.sync()
    assert threaded == ["_flush_snapshot", "_write_chunk", "_install_snapshot"]  # the log frame: in the loop


async def test_a_slow_flush_sends_the_next_one_back_to_a_thread(
    storage: FileStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush measured slower than the inline bound raises the estimate at once: the next flush is threaded."""
    threaded = writes_in_threads(monkeypatch)

    def stalling(write: Callable[..., Any]) -> Callable[..., Any]:
        def slow(*args: Any) -> Any:
            time.sleep(fs.STALLED_FLUSH_SECONDS * 2)  # a disk that stalls
            return write(*args)

        slow.__name__ = write.__name__
        return slow

    log, term, _ = storage.open()
    storage._flush_estimate = 0.0
    monkeypatch.setattr(storage, "_flush_term", stalling(storage._flush_term))
    term.save(1, None)
    await term.sync()  # inline, and slow
    assert threaded == []
    assert storage._flush_estimate >= fs.STALLED_FLUSH_SECONDS * 2
    log.append(entries(1, [1]))
    await log.sync()
    assert threaded == ["_flush_log"]
