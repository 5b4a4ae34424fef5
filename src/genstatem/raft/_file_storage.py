"""``FileStorage``: a Raft node's log, term and snapshot in one directory, durable at ``sync()``.

The log is a sequence of segment files of checksummed frames. Writes wait
in memory until ``sync()``, which encodes all of them into one frame,
appends it and flushes it with one ``fdatasync`` in a worker thread (group
commit), so the event loop keeps running the other actors meanwhile, and a
write never reaches the file without the sync that makes it durable.

One frame per sync is what makes recovery exact. Only the frame being
written when the process died or the power went can be damaged, so a bad
frame with no good frame after it is a torn write: it is dropped, with a
warning, and the log is what the last completed sync left. A bad frame
followed by a good one is damage to data that was synced: the store
refuses to start, naming the file and the offset.

Term and vote, the snapshot, and a compacted log are replaced whole: a
temporary file is written and flushed, renamed over the old one, and the
directory flushed. A compaction writes a new *base* segment that holds the
compaction point and the entries after it; the segments before it are then
deleted, and a crash before they are is harmless, as recovery starts from
the newest base segment.

Layout of the directory::

    LOCK                 flock()ed while a FileStorage holds the directory
    meta                 format version, node id, cluster id
    term                 current term and vote
    snapshot             the latest snapshot
    log-0000000001.seg   log segments, from the newest base segment on

Every file starts with a 16-byte header (``genstatm``, a 4-byte kind, the
format version), then frames: a 16-byte frame header (``GSfr``, payload
length, payload CRC-32, header CRC-32) and a msgpack payload.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
import msgpack  # type: ignore[import-untyped]

from .._core import get_logger
from ._log import KINDS, Entry
from ._storage import STALE, LogReads, Snapshot, _check_chunk, _check_whole, _Log

log = get_logger("genstatem.raft.storage")

_T = TypeVar("_T")

INLINE_FLUSH_SECONDS: Final = 0.001
"""A flush expected to take less than this runs in the event loop: a worker thread's hand-off costs as much."""

STALLED_FLUSH_SECONDS: Final = 0.002
"""A flush that took longer than this is a stall: the next ones go to a worker thread at once."""

FORMAT_VERSION: Final = 1
"""The on-disk format this release writes and reads."""

SEGMENT_BYTES: Final = 64 * 1024 * 1024
"""A log segment that has grown past this size is closed and a new one started."""

_FILE_MAGIC = b"genstatm"
_FILE_HEADER = struct.Struct(">8s4sI")  # magic, kind, format version
_FRAME_MAGIC = b"GSfr"
_FRAME_HEADER = struct.Struct(">4sIII")  # magic, payload length, payload crc, crc of the 12 bytes before
_SEGMENT = re.compile(r"log-(\d{10})\.seg")

_META, _TERM, _SNAPSHOT, _LOG = b"meta", b"term", b"snap", b"log "
_APPEND, _TRUNCATE = 0, 1  # the operations a log frame holds

_fdatasync = getattr(os, "fdatasync", os.fsync)
_fsync = os.fsync

RESTORE_ADVICE = (
    "This node's data cannot be trusted: stop it, remove it from the cluster (remove_member), "
    "move the directory aside, and add the node back as a new member with an empty directory; "
    "or restore the directory from a backup taken while the node was stopped."
)


class StorageError(Exception):
    """``FileStorage`` refuses a directory: damaged, another node's, held by another process, or too new.

    The message names the file, the offset when there is one, and what to
    do. Nothing in the directory is changed by the refusal.

    Attributes:
        path: the file (or directory) at fault.
        offset: the byte offset of the damage in ``path``, if that is the problem.
    """

    def __init__(self, message: str, path: Path, offset: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset


# -- frames and files ----------------------------------------------------------------


def _frame(payload: bytes) -> bytes:
    head = struct.pack(">4sII", _FRAME_MAGIC, len(payload), zlib.crc32(payload))
    return head + struct.pack(">I", zlib.crc32(head)) + payload


def _file_header(kind: bytes) -> bytes:
    return _FILE_HEADER.pack(_FILE_MAGIC, kind, FORMAT_VERSION)


def _frame_at(data: bytes | memoryview, offset: int) -> bytes | None:
    """The payload of the intact frame at ``offset``, or ``None`` if there is none there."""
    end = offset + _FRAME_HEADER.size
    if end > len(data):
        return None
    magic, length, crc, head_crc = _FRAME_HEADER.unpack_from(data, offset)
    if magic != _FRAME_MAGIC or zlib.crc32(data[offset : offset + 12]) != head_crc or end + length > len(data):
        return None
    payload = bytes(data[end : end + length])
    return payload if zlib.crc32(payload) == crc else None


def _has_frame_after(data: bytes, offset: int) -> bool:
    """Whether any intact frame starts after ``offset``: then the damage there is not a torn tail."""
    position = data.find(_FRAME_MAGIC, offset + 1)
    while position != -1:
        if _frame_at(data, position) is not None:
            return True
        position = data.find(_FRAME_MAGIC, position + 1)
    return False


def _check_header(path: Path, data: bytes, kind: bytes) -> None:
    if len(data) < _FILE_HEADER.size:
        raise StorageError(f"{path}: too short for a file header ({len(data)} bytes). {RESTORE_ADVICE}", path, 0)
    magic, found_kind, version = _FILE_HEADER.unpack_from(data)
    if magic != _FILE_MAGIC or found_kind != kind:
        raise StorageError(
            f"{path}: not a genstatem {kind.decode().strip()} file (header {data[:12]!r}). {RESTORE_ADVICE}", path, 0
        )
    if version != FORMAT_VERSION:
        newer = "a newer" if version > FORMAT_VERSION else "an older, unsupported"
        raise StorageError(
            f"{path}: written in on-disk format {version} by {newer} release; this release reads format "
            f"{FORMAT_VERSION}. Run the release that wrote it, or migrate the node as that release documents.",
            path,
            8,
        )


def _read_whole(path: Path, kind: bytes) -> Any:
    """The msgpack value of a file written whole by ``_replace`` (meta, term, snapshot)."""
    data = path.read_bytes()
    _check_header(path, data, kind)
    payload = _frame_at(data, _FILE_HEADER.size)
    if payload is None or _FILE_HEADER.size + _FRAME_HEADER.size + len(payload) != len(data):
        raise StorageError(
            f"{path}: damaged at offset {_FILE_HEADER.size} (bad checksum or length); it is always replaced "
            f"whole, so this is not a torn write. {RESTORE_ADVICE}",
            path,
            _FILE_HEADER.size,
        )
    return msgpack.unpackb(payload, use_list=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` as ``path`` atomically and durably: temporary file, flush, rename, flush the directory."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, data)
        _fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    _sync_directory(path.parent)


# -- entries --------------------------------------------------------------------------


_KIND_NUMBERS: Final = {kind: number for number, kind in enumerate(KINDS)}


def _encode_entries(entries: Sequence[Entry]) -> list[tuple[Any, ...]]:
    # Tuples pack as the same msgpack arrays as lists and build faster; written out
    # in one comprehension, with no call per entry: this runs for every appended entry.
    kinds = _KIND_NUMBERS
    return [(e.index, e.term, e.command, kinds[e.kind], e.client, e.seq, e.config) for e in entries]


def _decode_entry(fields: list[Any]) -> Entry:
    index, term, command, kind, client, seq, config = fields
    return Entry(index, term, command, KINDS[kind], client, seq, tuple(config))


@contextlib.asynccontextmanager
async def _taken(lock: anyio.Lock) -> AsyncIterator[None]:
    """``lock`` held for the block, without a turn of the event loop when it is free (a sync makes one anyway)."""
    try:
        lock.acquire_nowait()
    except anyio.WouldBlock:
        await lock.acquire()
    try:
        yield
    finally:
        lock.release()


# -- the storage -------------------------------------------------------------------------


class FileStorage:
    """Durable storage for one Raft node in one directory: give it to ``RaftSpec(storage=...)``.

    It needs no set-up: the directory is created on first use and stamped
    with ``node`` and ``cluster``, and a later start with another node id or
    cluster is refused, so a node can never start on another node's data.
    While a ``FileStorage`` holds the directory it keeps an ``flock`` on it:
    a second process (or a second ``FileStorage``) is refused. The lock goes
    with ``close()``, or with the process.

    What the node synced survives a process crash and a power cut; what it
    did not sync is gone after a restart. A damaged directory, or one written
    by a newer release, is refused with a ``StorageError`` that names the
    file, the offset and what to do.

    Args:
        directory: this node's directory (created if missing); one per node.
        node: this node's id, as in the cluster's member list.
        cluster: a name for the cluster, so that data of another cluster with
            the same node names is refused.
        inline_flush_seconds: a flush expected (from the recent ones) to take
            less than this runs in the event loop rather than in a worker
            thread, whose hand-off costs about as much; ``0`` sends every flush
            to a thread, so that not even the first flush of a disk stall
            holds the loop.

    Raises:
        StorageError: the directory is held by another process, belongs to
            another node or cluster, or is damaged or too new.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        node: str,
        cluster: str,
        inline_flush_seconds: float = INLINE_FLUSH_SECONDS,
    ) -> None:
        if not inline_flush_seconds >= 0:
            raise ValueError(f"inline_flush_seconds is a duration >= 0, not {inline_flush_seconds!r}")
        self._inline_flush_seconds = inline_flush_seconds
        self._directory = Path(directory)
        self._node = node
        self._cluster = cluster
        self._incarnation = 0
        self._io = threading.Lock()  # file I/O: a flush of a stale incarnation against a new recovery
        self._flush_estimate = float("inf")  # seconds a flush takes, as recently seen: none seen yet
        self._threaded_flushes = 0
        self._segment_fd: int | None = None
        self._directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = self._lock()
        try:
            self._check_identity()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        state = "closed" if self._lock_fd is None else f"incarnation={self._incarnation}"
        return f"FileStorage({str(self._directory)!r}, node={self._node!r}, cluster={self._cluster!r}, {state})"

    def __enter__(self) -> FileStorage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def directory(self) -> Path:
        """The node's directory."""
        return self._directory

    def _lock(self) -> int:
        path = self._directory / "LOCK"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise StorageError(
                f"{self._directory}: held by another process (pid {holder}, per {path}). Stop that process "
                f"first; two processes on one node's directory would corrupt it.",
                path,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def _check_identity(self) -> None:
        path = self._directory / "meta"
        identity = {"node": self._node, "cluster": self._cluster}
        if not path.exists():
            strangers = [p.name for p in self._directory.iterdir() if p.name not in ("LOCK", "meta.tmp")]
            if strangers:
                raise StorageError(
                    f"{self._directory}: has no meta file but holds {sorted(strangers)}: it was not made by "
                    f"FileStorage, or its meta file was lost. Give the node an empty directory.",
                    path,
                )
            _replace(path, _file_header(_META) + _frame(msgpack.packb(identity)))
            return
        found = _read_whole(path, _META)
        if not isinstance(found, dict):
            raise StorageError(f"{path}: holds no node identity. {RESTORE_ADVICE}", path)
        if {key: found.get(key) for key in identity} != identity:
            raise StorageError(
                f"{path}: this directory belongs to node {found.get('node')!r} of cluster "
                f"{found.get('cluster')!r}, not node {self._node!r} of cluster {self._cluster!r}. "
                f"Give each node its own directory.",
                path,
            )

    def close(self) -> None:
        """Release the directory: the stores refuse every call, and another process may take it."""
        with self._io:
            self._incarnation += 1
            if self._segment_fd is not None:
                os.close(self._segment_fd)
                self._segment_fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing the descriptor releases the flock
                self._lock_fd = None

    def open(self) -> tuple[FileLogStore, FileTermStore, FileSnapshotStore]:
        """Start a new incarnation from what is on disk, as a node does when it (re)starts.

        Recovery drops a torn write at the end of the log (logging a
        warning) and refuses anything else that is damaged. The stores of
        the previous incarnation become stale: every call on them raises
        ``RuntimeError``.

        Returns:
            The log, term and snapshot stores of the new incarnation.

        Raises:
            StorageError: the directory is damaged, or was written in another format.
            RuntimeError: the storage was closed.
        """
        with self._io:
            if self._lock_fd is None:
                raise RuntimeError(f"{self!r} is closed")
            self._incarnation += 1
            if self._segment_fd is not None:
                os.close(self._segment_fd)
                self._segment_fd = None
            for leftover in self._directory.glob("*.tmp"):
                leftover.unlink()  # a replacement that never got renamed: the old file stands
            term, voted_for = self._recover_term()
            snapshot = self._recover_snapshot()
            recovered = self._recover_log()
        return (
            FileLogStore(self, self._incarnation, *recovered),
            FileTermStore(self, self._incarnation, term, voted_for),
            FileSnapshotStore(self, self._incarnation, snapshot),
        )

    # -- recovery ----------------------------------------------------------------------

    def _recover_term(self) -> tuple[int, str | None]:
        path = self._directory / "term"
        if not path.exists():
            return 0, None
        term, voted_for = _read_whole(path, _TERM)
        return term, voted_for

    def _recover_snapshot(self) -> Snapshot | None:
        path = self._directory / "snapshot"
        if not path.exists():
            return None
        index, term, members, data = _read_whole(path, _SNAPSHOT)
        return Snapshot(index, term, tuple(members), data)

    def _segments(self) -> list[tuple[int, Path]]:
        found = (_SEGMENT.fullmatch(path.name) for path in self._directory.iterdir())
        return sorted((int(match[1]), self._directory / match[0]) for match in found if match)

    def _recover_log(self) -> tuple[_Log, _Segment | None]:
        segments = self._segments()
        read = [(seq, path, path.read_bytes()) for seq, path in segments]
        bases = [position for position, (_, path, data) in enumerate(read) if _segment_info(path, data)[0]]
        if not bases:
            if read:
                raise StorageError(
                    f"{read[0][1]}: no base segment (the one a log starts from) in {self._directory}; "
                    f"the first is a continuation, so earlier ones are missing. {RESTORE_ADVICE}",
                    read[0][1],
                )
            return _Log(), None
        start = bases[-1]
        for _, path, _ in read[:start]:
            path.unlink()  # superseded by a compaction that finished before the crash
        live = read[start:]
        recovered = _Log()
        for position, (seq, path, data) in enumerate(live):
            if position and seq != live[position - 1][0] + 1:
                raise StorageError(
                    f"{path}: segment {seq} follows segment {live[position - 1][0]}: a segment is missing. "
                    f"{RESTORE_ADVICE}",
                    path,
                )
            end = _replay(path, data, recovered, last=position == len(live) - 1)
            if end < len(data):
                log.warning(
                    "dropped a torn write at the end of the log: it was never synced",
                    file=str(path),
                    offset=end,
                    bytes=len(data) - end,
                )
                fd = os.open(path, os.O_WRONLY)
                try:
                    os.ftruncate(fd, end)
                    _fsync(fd)
                finally:
                    os.close(fd)
        seq, path, _ = live[-1]
        return recovered, _Segment(seq, path, os.path.getsize(path))

    # -- writing, in a worker thread or the loop -------------------------------------------------------

    async def _flush(self, write: Callable[..., _T], *args: Any) -> _T:
        """Run ``write`` (one of the ``_flush_*`` methods below) without holding up the event loop.

        In a worker thread, unless the flushes of this directory have been
        shorter than ``inline_flush_seconds``, less than what handing one to a
        thread costs: then in the loop, which it holds up no longer than an
        ordinary event does. The estimate is a moving average, so that the
        jitter of a fast disk (a flush now and then a few times the median)
        does not send the next ones to a thread; a stall (a flush longer than
        ``STALLED_FLUSH_SECONDS``) becomes the estimate at once, so a disk
        that stalls sends the next flush back to a thread.

        Every write of the stores goes through here, so that
        ``genstatem.testing.SimulatedDisk`` can run it on a simulation's
        virtual time instead, and tear it at a crash.
        """
        if self._flush_estimate < self._inline_flush_seconds and not self._threaded_flushes:
            try:
                return self._timed(write, *args)
            finally:
                await anyio.lowlevel.checkpoint()
        self._threaded_flushes += 1
        try:
            return await anyio.to_thread.run_sync(self._timed, write, *args)
        finally:
            self._threaded_flushes -= 1

    def _timed(self, write: Callable[..., _T], *args: Any) -> _T:
        started = time.perf_counter()
        try:
            return write(*args)
        finally:
            took = time.perf_counter() - started
            estimate = self._flush_estimate
            restart = estimate == float("inf") or took > STALLED_FLUSH_SECONDS
            self._flush_estimate = took if restart else 0.8 * estimate + 0.2 * took

    def _flush_log(self, incarnation: int, store: FileLogStore, work: _LogWork) -> None:
        with self._io:
            if incarnation != self._incarnation:
                raise RuntimeError(STALE)
            if isinstance(work, _Rewrite):
                self._write_base(store, work)
                return
            segment = store._segment
            assert segment is not None, "a log with no segment yet is always written whole"
            if segment.size >= SEGMENT_BYTES:
                segment = self._start_segment(store, _segment_data(segment.seq + 1, None, []))
            frame = _frame(msgpack.packb(work.operations))
            if self._segment_fd is None:
                self._segment_fd = os.open(segment.path, os.O_WRONLY | os.O_APPEND)
            _write_all(self._segment_fd, frame)
            _fdatasync(self._segment_fd)
            segment.size += len(frame)

    def _write_base(self, store: FileLogStore, base: _Rewrite) -> None:
        """Replace the whole log with one base segment holding ``base``; then delete the older segments."""
        seq = store._segment.seq + 1 if store._segment is not None else 1
        old = [path for _, path in self._segments()]
        self._start_segment(store, _segment_data(seq, (base.offset, base.offset_term), base.entries))
        for path in old:
            path.unlink()

    def _start_segment(self, store: FileLogStore, data: bytes) -> _Segment:
        seq = _segment_info_seq(data)
        path = self._directory / f"log-{seq:010d}.seg"
        _replace(path, data)
        if self._segment_fd is not None:
            os.close(self._segment_fd)
        self._segment_fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        store._segment = _Segment(seq, path, len(data))
        return store._segment

    def _flush_term(self, incarnation: int, term: int, voted_for: str | None) -> None:
        with self._io:
            if incarnation != self._incarnation:
                raise RuntimeError(STALE)
            _replace(self._directory / "term", _file_header(_TERM) + _frame(msgpack.packb([term, voted_for])))

    def _install_snapshot(self, incarnation: int, fd: int, head: bytes, path: Path) -> Snapshot:
        """Finish a received snapshot file: its frame header, a flush, the rename; read back whole and checked."""
        try:
            with self._io:
                if incarnation != self._incarnation:
                    raise RuntimeError(STALE)
                os.pwrite(fd, head, _FILE_HEADER.size)
                _fsync(fd)
                os.close(fd)
                fd = -1
                target = self._directory / "snapshot"
                os.replace(path, target)
                _sync_directory(self._directory)
                snapshot = self._recover_snapshot()
        finally:
            if fd != -1:
                os.close(fd)
        assert snapshot is not None
        return snapshot

    def _flush_snapshot(self, incarnation: int, snapshot: Snapshot) -> None:
        payload = msgpack.packb([snapshot.index, snapshot.term, list(snapshot.members), snapshot.data])
        with self._io:
            if incarnation != self._incarnation:
                raise RuntimeError(STALE)
            _replace(self._directory / "snapshot", _file_header(_SNAPSHOT) + _frame(payload))


class _Segment:
    """The segment file that appends go to."""

    __slots__ = ("path", "seq", "size")

    def __init__(self, seq: int, path: Path, size: int) -> None:
        self.seq, self.path, self.size = seq, path, size


class _Rewrite:
    """A sync after a compaction: the whole log, written as a new base segment."""

    __slots__ = ("entries", "offset", "offset_term")

    def __init__(self, offset: int, offset_term: int, entries: list[Entry]) -> None:
        self.offset, self.offset_term, self.entries = offset, offset_term, entries


class _Frame:
    """A sync of appends and truncations: one frame of operations."""

    __slots__ = ("operations",)

    def __init__(self, operations: list[list[Any]]) -> None:
        self.operations = operations


_LogWork = _Rewrite | _Frame


def _segment_data(seq: int, base: tuple[int, int] | None, entries: Sequence[Entry]) -> bytes:
    """A new segment's bytes: the header, its info frame, and for a base segment its entries."""
    info = msgpack.packb({"seq": seq, "base": list(base) if base is not None else None})
    data = _file_header(_LOG) + _frame(info)
    if entries:
        data += _frame(msgpack.packb([[_APPEND, _encode_entries(entries)]]))
    return data


def _segment_info_seq(data: bytes) -> int:
    payload = _frame_at(data, _FILE_HEADER.size)
    assert payload is not None
    seq: int = msgpack.unpackb(payload)["seq"]
    return seq


def _segment_info(path: Path, data: bytes) -> tuple[tuple[int, int] | None, int]:
    """A segment's base (``None`` for a continuation) and the offset of its first operation frame."""
    _check_header(path, data, _LOG)
    payload = _frame_at(data, _FILE_HEADER.size)
    if payload is None:
        raise StorageError(
            f"{path}: segment header damaged at offset {_FILE_HEADER.size}; segments are created whole, "
            f"so this is not a torn write. {RESTORE_ADVICE}",
            path,
            _FILE_HEADER.size,
        )
    base = msgpack.unpackb(payload)["base"]
    first = _FILE_HEADER.size + _FRAME_HEADER.size + len(payload)
    return (None if base is None else (base[0], base[1])), first


def _replay(path: Path, data: bytes, into: _Log, *, last: bool) -> int:
    """Apply a segment's frames to ``into``; return where its intact frames end (``len(data)`` unless torn)."""
    base, offset = _segment_info(path, data)
    if base is not None:
        into.offset, into.offset_term = base
        into.entries.clear()
    while offset < len(data):
        payload = _frame_at(data, offset)
        if payload is None:
            if last and not _has_frame_after(data, offset):
                return offset
            where = "before the last segment" if not last else "with intact frames after it"
            raise StorageError(
                f"{path}: damaged frame at offset {offset}, {where}: this was synced data, not a torn write. "
                f"{RESTORE_ADVICE}",
                path,
                offset,
            )
        try:
            for operation in msgpack.unpackb(payload, use_list=True):
                if operation[0] == _APPEND:
                    for fields in operation[1]:
                        entry = _decode_entry(fields)
                        if entry.index != into.last_index() + 1:
                            raise ValueError(f"entry {entry.index} does not follow {into.last_index()}")
                        into.entries.append(entry)
                elif operation[0] == _TRUNCATE:
                    into.truncate_from(operation[1])
                else:
                    raise ValueError(f"unknown operation {operation[0]!r}")
        except (ValueError, TypeError, IndexError, KeyError) as error:
            raise StorageError(
                f"{path}: frame at offset {offset} has a good checksum but does not make sense ({error}): "
                f"written by a bug or another program. {RESTORE_ADVICE}",
                path,
                offset,
            ) from error
        offset += _FRAME_HEADER.size + len(payload)
    return offset


# -- the stores of one incarnation ---------------------------------------------------------


class _View:
    """A store of one incarnation; it refuses every call once the storage is opened again or closed."""

    def __init__(self, storage: FileStorage, incarnation: int) -> None:
        self._storage = storage
        self._incarnation = incarnation

    def _live(self) -> FileStorage:
        if self._storage._incarnation != self._incarnation:
            raise RuntimeError(STALE)
        return self._storage


class FileLogStore(_View, LogReads):
    """The ``LogStore`` of one incarnation of a ``FileStorage``: the whole log in memory, changes on disk."""

    def __init__(self, storage: FileStorage, incarnation: int, recovered: _Log, segment: _Segment | None) -> None:
        super().__init__(storage, incarnation)
        self._held = recovered
        self._segment = segment
        self._operations: list[list[Any]] = []
        self._rewrite = segment is None  # a fresh directory: the first sync writes the first base segment
        self._lock = anyio.Lock()
        self._failed: BaseException | None = None

    def __repr__(self) -> str:
        return f"FileLogStore(({self._held.offset}, {self._held.last_index()}])"

    def _writable(self) -> None:
        self._live()
        if self._failed is not None:
            raise RuntimeError(f"an earlier sync of this log failed ({self._failed!r}); restart the node")

    def append(self, entries: Sequence[Entry]) -> None:
        """Add ``entries`` after the last. Not durable until ``sync()``.

        Raises:
            ValueError: if the indexes do not run on from ``last_index() + 1``
                one by one, or a term is lower than the one before it; nothing
                is appended.
        """
        self._writable()
        held = self._held
        held.check_continued_by(entries)
        if entries:
            held.entries.extend(entries)
            if not self._rewrite:
                self._operations.append([_APPEND, _encode_entries(entries)])

    def truncate_from(self, index: int) -> None:
        """Drop the entry at ``index`` and every one after it (nothing if ``index`` is beyond the last).

        Not durable until ``sync()``.

        Raises:
            ValueError: if ``index`` is at or before the compaction point.
        """
        self._writable()
        held = self._held
        if index <= held.offset:
            raise ValueError(f"cannot truncate from {index}: entries up to {held.offset} are compacted")
        if index <= held.last_index():
            held.truncate_from(index)
            if not self._rewrite:
                self._operations.append([_TRUNCATE, index])

    def compact(self, index: int, term: int) -> None:
        """Drop the entries up to ``index``, which a snapshot at (``index``, ``term``) covers.

        The entries after ``index`` stay if the log has ``term`` at ``index``;
        otherwise they all go. At or before the current compaction point it
        does nothing. Not durable until ``sync()``, which then writes the
        remaining log as a new base segment and deletes the older segments.
        """
        self._writable()
        if index > self._held.offset:
            self._held.compact(index, term)
            self._rewrite = True
            self._operations.clear()

    async def sync(self) -> None:
        """Make every append, truncation and compaction so far durable, with one flush in a worker thread.

        Raises:
            OSError: the disk refused (full, failing); the store then refuses
                every write, and a restart of the node recovers what was synced.
        """
        storage = self._live()
        async with _taken(self._lock):
            self._writable()
            work: _LogWork
            if self._rewrite:
                held = self._held
                work = _Rewrite(held.offset, held.offset_term, list(held.entries))
            elif self._operations:
                work = _Frame(self._operations)
            else:
                return
            self._rewrite, self._operations = False, []
            try:
                await storage._flush(storage._flush_log, self._incarnation, self, work)
            except OSError as error:
                self._failed = error
                raise


class FileTermStore(_View):
    """The ``TermStore`` of one incarnation of a ``FileStorage``: the file ``term``, replaced whole."""

    def __init__(self, storage: FileStorage, incarnation: int, term: int, voted_for: str | None) -> None:
        super().__init__(storage, incarnation)
        self._term = term
        self._voted_for = voted_for
        self._dirty = False
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"FileTermStore(term={self._term}, voted_for={self._voted_for!r})"

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
        if term < self._term:
            raise ValueError(f"the term never goes down: {term} after {self._term}")
        if term == self._term and self._voted_for is not None and voted_for != self._voted_for:
            raise ValueError(f"already voted for {self._voted_for!r} in term {term}, cannot change it to {voted_for!r}")
        self._term, self._voted_for = term, voted_for
        self._dirty = True

    async def sync(self) -> None:
        """Make the last ``save`` durable: the term file is replaced whole, in a worker thread."""
        storage = self._live()
        async with self._lock:
            if not self._dirty:
                return
            self._dirty = False
            try:
                await storage._flush(storage._flush_term, self._incarnation, self._term, self._voted_for)
            except BaseException:
                self._dirty = True
                raise


class FileSnapshotStore(_View):
    """The ``SnapshotStore`` of one incarnation of a ``FileStorage``: the file ``snapshot``, replaced whole."""

    def __init__(self, storage: FileStorage, incarnation: int, snapshot: Snapshot | None) -> None:
        super().__init__(storage, incarnation)
        self._snapshot = snapshot
        self._dirty = False
        self._lock = anyio.Lock()
        self._receiving: FileSnapshotWriter | None = None

    def __repr__(self) -> str:
        where = "none" if self._snapshot is None else f"index={self._snapshot.index}, term={self._snapshot.term}"
        return f"FileSnapshotStore({where})"

    def load(self) -> Snapshot | None:
        """The snapshot as last saved by this incarnation, or as it started; ``None`` if there is none."""
        self._live()
        return self._snapshot

    def save(self, snapshot: Snapshot) -> None:
        """Replace the snapshot. Not durable until ``sync()``.

        Raises:
            ValueError: if ``snapshot`` is older (lower index) than the one held.
        """
        self._live()
        if self._snapshot is not None and snapshot.index < self._snapshot.index:
            raise ValueError(
                f"snapshot at index {snapshot.index} is older than the one held, at {self._snapshot.index}"
            )
        self._snapshot = snapshot
        self._dirty = True

    async def sync(self) -> None:
        """Make the last ``save`` durable: written to a temporary file, flushed, renamed, directory flushed."""
        storage = self._live()
        async with self._lock:
            if not self._dirty or self._snapshot is None:
                return
            self._dirty = False
            try:
                await storage._flush(storage._flush_snapshot, self._incarnation, self._snapshot)
            except BaseException:
                self._dirty = True
                raise

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of the snapshot's data from ``offset``.

        Raises:
            LookupError: there is no snapshot.
        """
        self._live()
        if self._snapshot is None:
            raise LookupError("no snapshot to read")
        return self._snapshot.data[offset : offset + size]

    def begin(self, index: int, term: int, members: tuple[str, ...], size: int, crc: int) -> FileSnapshotWriter:
        """Start receiving a snapshot into ``snapshot.incoming.tmp``; an unfinished one begun earlier is aborted.

        The file is the ``snapshot`` file to be, header and all; ``finish``
        flushes it and renames it over ``snapshot``. A crash before leaves a
        ``.tmp`` file that the next ``open()`` deletes.
        """
        self._live()
        if self._receiving is not None:
            self._receiving.abort()
        self._receiving = FileSnapshotWriter(self, index, term, tuple(members), size, crc)
        return self._receiving


def _bin_header(size: int) -> bytes:
    """msgpack's header of a ``bin`` of ``size`` bytes (its Packer writes one only with the bytes)."""
    if size < 1 << 8:
        return struct.pack(">BB", 0xC4, size)
    if size < 1 << 16:
        return struct.pack(">BH", 0xC5, size)
    return struct.pack(">BI", 0xC6, size)


class FileSnapshotWriter:
    """A snapshot being received by a ``FileSnapshotStore``: each chunk goes to a temporary file as it arrives."""

    def __init__(
        self, store: FileSnapshotStore, index: int, term: int, members: tuple[str, ...], size: int, crc: int
    ) -> None:
        self.index, self.term, self.members, self.size, self.crc = index, term, members, size, crc
        self._store = store
        self._path = store._storage.directory / "snapshot.incoming.tmp"
        packer = msgpack.Packer()
        # The payload is the snapshot file's: [index, term, members, data], data's bin header announcing ``size``.
        self._prefix = packer.pack_array_header(4) + packer.pack(index) + packer.pack(term)
        self._prefix += packer.pack(list(members)) + _bin_header(size)
        self._fd: int | None = None
        self._written = 0
        self._data_crc = 0
        self._payload_crc = zlib.crc32(self._prefix)
        self._done = False

    def __repr__(self) -> str:
        return f"FileSnapshotWriter(index={self.index}, {self._written}/{self.size} bytes)"

    @property
    def written(self) -> int:
        """How many bytes of the data have been written."""
        return self._written

    def _open(self) -> int:
        self._store._live()
        if self._done:
            raise RuntimeError("this snapshot write was finished or aborted")
        if self._fd is None:
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            # the frame header is written at ``finish``, once the payload's CRC is known
            _write_all(self._fd, _file_header(_SNAPSHOT) + bytes(_FRAME_HEADER.size) + self._prefix)
        return self._fd

    async def write(self, offset: int, chunk: bytes) -> None:
        """Write ``chunk`` at ``offset`` to the temporary file (in a worker thread; flushed only at ``finish``).

        Raises:
            ValueError: ``offset`` is not ``written``, or the chunk runs past ``size``.
        """
        _check_chunk(self._written, self.size, offset, chunk)
        fd = self._open()
        self._written += len(chunk)
        self._data_crc = zlib.crc32(chunk, self._data_crc)
        self._payload_crc = zlib.crc32(chunk, self._payload_crc)
        await self._store._storage._flush(_write_all, fd, chunk)

    async def finish(self) -> Snapshot:
        """Verify the data, flush the file and rename it over ``snapshot``; then it is the store's snapshot.

        Raises:
            ValueError: the data is short or fails its CRC-32; the write is aborted.
        """
        fd = self._open()
        try:
            _check_whole(self.size, self.crc, self._written, self._data_crc)
        except ValueError:
            self.abort()
            raise
        self._done, self._fd = True, None
        storage, store = self._store._storage, self._store
        length = len(self._prefix) + self.size
        head = struct.pack(">4sII", _FRAME_MAGIC, length, self._payload_crc)
        head += struct.pack(">I", zlib.crc32(head))
        async with store._lock:
            install = storage._install_snapshot
            snapshot = await storage._flush(install, store._incarnation, fd, head, self._path)
            store._snapshot, store._dirty = snapshot, False
        return snapshot

    def abort(self) -> None:
        """Throw away what was written (the temporary file goes)."""
        self._done = True
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._path.unlink(missing_ok=True)
