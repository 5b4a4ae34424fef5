"""The on-disk format of ``FileStorage``: files, frames, entries and log segments, and ``StorageError``.

Every file starts with a 16-byte header (``genstatm``, a 4-byte kind, the
format version), then frames: a 16-byte frame header (``GSfr``, payload
length, payload CRC-32, header CRC-32) and a msgpack payload. The meta,
term and snapshot files hold one frame each; a log segment holds an info
frame (its sequence number, and for a *base* segment the compaction point)
and then one frame per sync, of appends and truncations.

What is here only encodes and decodes bytes, and reads files; writing and
flushing them is ``FileStorage``'s (``_file_storage.py``).
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import msgpack  # type: ignore[import-untyped]

from ._log import KINDS, Entry
from ._storage import _Log

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


def _frame_head(length: int, crc: int) -> bytes:
    """The header of a frame whose payload has ``length`` bytes and CRC-32 ``crc``."""
    head = struct.pack(">4sII", _FRAME_MAGIC, length, crc)
    return head + struct.pack(">I", zlib.crc32(head))


def _frame(payload: bytes) -> bytes:
    return _frame_head(len(payload), zlib.crc32(payload)) + payload


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


# -- log segments ----------------------------------------------------------------------


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


def _bin_header(size: int) -> bytes:
    """msgpack's header of a ``bin`` of ``size`` bytes (its Packer writes one only with the bytes)."""
    if size < 1 << 8:
        return struct.pack(">BB", 0xC4, size)
    if size < 1 << 16:
        return struct.pack(">BH", 0xC5, size)
    return struct.pack(">BI", 0xC6, size)
