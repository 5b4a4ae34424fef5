"""The stores of one incarnation of a ``FileStorage``: log, term and snapshot, and a snapshot being received.

Each holds its state in memory and asks its ``FileStorage`` to write and
flush at ``sync()``; once the storage is opened again (a restart of the
node) or closed, the stores of the old incarnation refuse every call.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgpack  # type: ignore[import-untyped]

from ._file_format import (
    _APPEND,
    _FRAME_HEADER,
    _SNAPSHOT,
    _TRUNCATE,
    _bin_header,
    _encode_entries,
    _file_header,
    _frame_head,
)
from ._log import Entry
from ._storage import STALE, LogReads, Snapshot, _check_chunk, _check_vote, _check_whole, _Log

if TYPE_CHECKING:
    from ._file_storage import FileStorage


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
        _check_vote(self._term, self._voted_for, term, voted_for)
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
            self._store._storage._write_chunk(
                self._fd, _file_header(_SNAPSHOT) + bytes(_FRAME_HEADER.size) + self._prefix
            )
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
        storage = self._store._storage
        await storage._flush(storage._write_chunk, fd, chunk)

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
        head = _frame_head(length, self._payload_crc)
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
