"""Framing: cutting a byte stream into length-prefixed, versioned payloads.

A frame is a 7-byte header — the magic ``b"GS"``, a version byte, and the
payload's length as a 4-byte big-endian unsigned integer — followed by the
payload. The decoder checks each header field as soon as its bytes arrive, so
a peer speaking another protocol or announcing an oversized frame is refused
before any of its payload is held in memory.
"""

from __future__ import annotations

from typing import Final

import attrs

FRAME_MAGIC: Final = b"GS"
"""The bytes every frame starts with."""

FRAME_VERSION: Final = 1
"""The frame format version this module writes and reads."""

FRAME_HEADER_SIZE: Final = len(FRAME_MAGIC) + 1 + 4
"""Bytes before the payload: magic, version, big-endian length."""

DEFAULT_MAX_FRAME_SIZE: Final = 1 << 20
"""Largest payload accepted by default, in bytes (1 MiB)."""

MAX_FRAME_SIZE_LIMIT: Final = 2**32 - 1
"""The largest payload the 4-byte length field can describe."""

_VERSION_AT: Final = len(FRAME_MAGIC)
_LENGTH_AT: Final = _VERSION_AT + 1


class FrameError(ValueError):
    """The byte stream is not a valid sequence of frames.

    After a ``FrameDecoder`` raises it, the stream has lost its framing and the
    connection should be closed.

    Attributes:
        reason: what was wrong, e.g. ``"bad magic"`` or ``"unsupported
            version 7"``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _check_max_frame_size(max_frame_size: int) -> None:
    if not 0 <= max_frame_size <= MAX_FRAME_SIZE_LIMIT:
        raise ValueError(f"max_frame_size must be between 0 and {MAX_FRAME_SIZE_LIMIT}, not {max_frame_size}")


def encode_frame(payload: bytes, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """Wrap ``payload`` in a frame header.

    Args:
        payload: the bytes to send, typically one encoded message.
        max_frame_size: the largest payload allowed; match the receiver's,
            so that an oversized frame fails here rather than at the peer.

    Returns:
        The header followed by ``payload``.

    Raises:
        FrameError: ``payload`` is larger than ``max_frame_size``.
    """
    _check_max_frame_size(max_frame_size)
    size = len(payload)
    if size > max_frame_size:
        raise FrameError(f"frame of {size} bytes exceeds {max_frame_size}")
    return b"".join((FRAME_MAGIC, bytes((FRAME_VERSION,)), size.to_bytes(4, "big"), payload))


@attrs.frozen
class FrameStatistics:
    """A snapshot of a ``FrameDecoder``.

    Attributes:
        buffered_bytes: bytes held for a frame not yet complete; never more
            than ``max_frame_size`` (or a partial header).
        frames_decoded: frames returned so far.
    """

    buffered_bytes: int
    frames_decoded: int


class FrameDecoder:
    """Turns the bytes of a stream, in chunks of any size, back into payloads.

    It holds at most one partial frame, and takes from each chunk only the
    bytes that frame still needs, so its memory stays within
    ``FRAME_HEADER_SIZE + max_frame_size`` however the stream is chunked. On
    bad input it raises ``FrameError`` and refuses all further input: the
    framing is lost, and the connection should be closed.

    Args:
        max_frame_size: the largest payload accepted, checked when the header
            arrives, before any of the payload is buffered.
    """

    __slots__ = ("_buffer", "_error", "_frames_decoded", "_max_frame_size", "_payload_size")

    def __init__(self, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        _check_max_frame_size(max_frame_size)
        self._max_frame_size = max_frame_size
        self._buffer = bytearray()
        # None while reading a header; the payload's length once it is read.
        self._payload_size: int | None = None
        self._error: FrameError | None = None
        self._frames_decoded = 0

    @property
    def max_frame_size(self) -> int:
        """The largest payload accepted, in bytes."""
        return self._max_frame_size

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Take the next bytes of the stream and return the payloads they complete.

        Args:
            data: the next chunk, of any size (empty is allowed).

        Returns:
            The payloads completed by ``data``, in order; often none.

        Raises:
            FrameError: the stream has a bad magic, an unsupported version or
                an oversized frame, or this decoder failed before. Payloads
                completed earlier in the same chunk are lost with the
                connection.
        """
        if self._error is not None:
            raise FrameError(f"decoder already failed: {self._error.reason}")
        try:
            with memoryview(data) as view, view.cast("B") as chunk:
                return self._consume(chunk)
        except FrameError as exc:
            self._error = exc
            self._buffer = bytearray()
            self._payload_size = None
            raise

    def eof(self) -> None:
        """Check that the stream ended on a frame boundary.

        Call it when the peer closes the connection, to tell a clean close
        from one that cut a frame short.

        Raises:
            FrameError: a frame was left incomplete, or this decoder failed.
        """
        if self._error is not None:
            raise FrameError(f"decoder already failed: {self._error.reason}")
        if self._payload_size is not None:
            raise FrameError(f"stream ended {len(self._buffer)} bytes into a frame of {self._payload_size} bytes")
        if self._buffer:
            raise FrameError(f"stream ended {len(self._buffer)} bytes into a frame header")

    def statistics(self) -> FrameStatistics:
        """Return how much is buffered and how many frames came out so far."""
        return FrameStatistics(buffered_bytes=len(self._buffer), frames_decoded=self._frames_decoded)

    def _consume(self, chunk: memoryview) -> list[bytes]:
        frames: list[bytes] = []
        buffer = self._buffer
        position, end = 0, len(chunk)
        while position < end:
            size = self._payload_size
            if size is None:
                taken = chunk[position : position + FRAME_HEADER_SIZE - len(buffer)]
                buffer += taken
                position += len(taken)
                size = self._check_header(buffer)
                if size is None:
                    break
                buffer.clear()
                self._payload_size = size
            missing = size - len(buffer)
            if not buffer and end - position >= missing:
                # The whole payload is in this chunk: one copy, no buffering.
                frames.append(bytes(chunk[position : position + missing]))
                position += missing
            else:
                taken = chunk[position : position + missing]
                buffer += taken
                position += len(taken)
                if len(buffer) < size:
                    break
                frames.append(bytes(buffer))
                buffer.clear()
            self._payload_size = None
            self._frames_decoded += 1
        return frames

    def _check_header(self, header: bytearray) -> int | None:
        """Validate as much of the header as has arrived; its payload size once complete."""
        have = len(header)
        if header[: min(have, _VERSION_AT)] != FRAME_MAGIC[: min(have, _VERSION_AT)]:
            raise FrameError("bad magic")
        if have > _VERSION_AT and header[_VERSION_AT] != FRAME_VERSION:
            raise FrameError(f"unsupported version {header[_VERSION_AT]}")
        if have < FRAME_HEADER_SIZE:
            return None
        size = int.from_bytes(header[_LENGTH_AT:FRAME_HEADER_SIZE], "big")
        if size > self._max_frame_size:
            raise FrameError(f"frame of {size} bytes exceeds {self._max_frame_size}")
        return size
