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

The bytes of these files are ``_file_format.py``'s; the stores a node
uses, ``_file_stores.py``'s.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
import msgpack  # type: ignore[import-untyped]

from .._core import get_logger
from ._file_format import (
    _FILE_HEADER,
    _META,
    _SEGMENT,
    _SNAPSHOT,
    _TERM,
    FORMAT_VERSION,
    RESTORE_ADVICE,
    SEGMENT_BYTES,
    StorageError,
    _file_header,
    _frame,
    _read_whole,
    _replay,
    _segment_data,
    _segment_info,
    _segment_info_seq,
)
from ._file_stores import FileLogStore, FileSnapshotStore, FileTermStore, _LogWork, _Rewrite, _Segment
from ._storage import STALE, Snapshot, _Log

__all__ = ["FORMAT_VERSION", "SEGMENT_BYTES", "FileStorage", "StorageError"]

log = get_logger("genstatem.raft.storage")

_T = TypeVar("_T")

INLINE_FLUSH_SECONDS: Final = 0.001
"""A flush expected to take less than this runs in the event loop: a worker thread's hand-off costs as much."""

STALLED_FLUSH_SECONDS: Final = 0.002
"""A flush that took longer than this is a stall: the next ones go to a worker thread at once."""

_SMALL_WRITES: Final = frozenset({"_flush_log", "_flush_term"})
"""The writes that are timed and may run in the event loop: a log frame (one sync's appends) and the term file."""

_fdatasync = getattr(os, "fdatasync", os.fsync)
_fsync = os.fsync


# -- writing files ----------------------------------------------------------------------------


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

        Only the small writes of ``_SMALL_WRITES`` (a log frame, the term) are
        timed and may run in the loop; a snapshot, whatever its size, is
        always written in a thread. Nothing runs in the loop while a write
        is in a thread, since it would wait there for the thread's lock.

        Every write of the stores goes through here, so that
        ``genstatem.testing.SimulatedDisk`` can run it on a simulation's
        virtual time instead, and tear it at a crash.
        """
        small = write.__name__ in _SMALL_WRITES
        if small and self._flush_estimate < self._inline_flush_seconds and not self._threaded_flushes:
            try:
                return self._timed(write, *args)
            finally:
                await anyio.lowlevel.checkpoint()
        self._threaded_flushes += 1
        try:
            if small:
                return await anyio.to_thread.run_sync(self._timed, write, *args)
            return await anyio.to_thread.run_sync(write, *args)
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

    def _write_chunk(self, fd: int, data: bytes) -> None:
        """Write ``data`` to ``fd`` whole (a chunk of a snapshot being received), through ``_flush``."""
        _write_all(fd, data)
