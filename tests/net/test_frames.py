"""Framing: payloads in, the same payloads out, however the stream is cut; bad streams refused early."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genstatem.net import (
    DEFAULT_MAX_FRAME_SIZE,
    FRAME_HEADER_SIZE,
    FRAME_MAGIC,
    FRAME_VERSION,
    MAX_FRAME_SIZE_LIMIT,
    FrameDecoder,
    FrameError,
    encode_frame,
)

from .strategies import mutated

FUZZ = settings(max_examples=300, deadline=None)

payloads = st.lists(st.binary(max_size=300), max_size=8)


def header(size: int, *, magic: bytes = FRAME_MAGIC, version: int = FRAME_VERSION) -> bytes:
    return magic + bytes([version]) + size.to_bytes(4, "big")


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (taken modulo its length)."""
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[start:end] for start, end in itertools.pairwise(points)]


def feed_all(decoder: FrameDecoder, chunks: list[bytes]) -> list[bytes]:
    frames: list[bytes] = []
    for chunk in chunks:
        frames += decoder.feed(chunk)
        assert decoder.statistics().buffered_bytes <= FRAME_HEADER_SIZE + decoder.max_frame_size
    return frames


# -- encoding -----------------------------------------------------------------


def test_frame_layout() -> None:
    """A frame is magic, version, 4-byte big-endian length, then the payload."""
    assert encode_frame(b"abc") == b"GS\x01\x00\x00\x00\x03abc"
    assert FRAME_HEADER_SIZE == 7


def test_encode_refuses_oversized_payload() -> None:
    """The sender refuses a payload larger than max_frame_size."""
    with pytest.raises(FrameError, match="frame of 11 bytes exceeds 10"):
        encode_frame(b"x" * 11, max_frame_size=10)


def test_max_frame_size_is_validated() -> None:
    """max_frame_size must fit the 4-byte length field."""
    with pytest.raises(ValueError, match="max_frame_size"):
        FrameDecoder(max_frame_size=MAX_FRAME_SIZE_LIMIT + 1)
    with pytest.raises(ValueError, match="max_frame_size"):
        encode_frame(b"", max_frame_size=-1)
    assert FrameDecoder().max_frame_size == DEFAULT_MAX_FRAME_SIZE


# -- decoding -------------------------------------------------------------------


def test_frames_in_one_chunk() -> None:
    """Several frames in one chunk, including an empty one, come out in order."""
    decoder = FrameDecoder()
    stream = encode_frame(b"one") + encode_frame(b"") + encode_frame(b"three")
    assert decoder.feed(stream) == [b"one", b"", b"three"]
    assert decoder.statistics().frames_decoded == 3
    assert decoder.statistics().buffered_bytes == 0


def test_byte_at_a_time() -> None:
    """Feeding one byte at a time yields each frame once its last byte arrives."""
    decoder = FrameDecoder()
    stream = encode_frame(b"ab") + encode_frame(b"c")
    results = [decoder.feed(stream[i : i + 1]) for i in range(len(stream))]
    assert [i for i, frames in enumerate(results) if frames] == [FRAME_HEADER_SIZE + 1, len(stream) - 1]
    assert [frame for frames in results for frame in frames] == [b"ab", b"c"]


def test_empty_feed_is_harmless() -> None:
    """An empty chunk yields nothing and changes nothing."""
    decoder = FrameDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(encode_frame(b"x")[:3]) == []
    assert decoder.feed(b"") == []
    assert decoder.statistics().buffered_bytes == 3


def test_accepts_bytearray_and_memoryview() -> None:
    """feed takes any bytes-like chunk and always returns bytes."""
    decoder = FrameDecoder()
    assert decoder.feed(bytearray(encode_frame(b"a"))) == [b"a"]
    frames = decoder.feed(memoryview(encode_frame(b"b")))
    assert frames == [b"b"]
    assert type(frames[0]) is bytes


def test_frame_of_exactly_max_size_is_accepted() -> None:
    """The limit is inclusive."""
    decoder = FrameDecoder(max_frame_size=16)
    assert decoder.feed(encode_frame(b"x" * 16, max_frame_size=16)) == [b"x" * 16]


@FUZZ
@given(payloads, st.lists(st.integers(min_value=0), max_size=20))
def test_split_feeding_yields_the_same_frames(frames: list[bytes], cuts: list[int]) -> None:
    """A valid stream cut into chunks of any sizes yields exactly the frames that were sent."""
    stream = b"".join(encode_frame(frame) for frame in frames)
    decoder = FrameDecoder()
    assert feed_all(decoder, chunked(stream, cuts)) == frames
    decoder.eof()


# -- refusing bad streams ---------------------------------------------------------


def test_bad_magic_is_refused_on_the_first_byte() -> None:
    """A stream that does not start with the magic fails as soon as the first wrong byte arrives."""
    with pytest.raises(FrameError, match="bad magic") as info:
        FrameDecoder().feed(b"H")
    assert info.value.reason == "bad magic"
    with pytest.raises(FrameError, match="bad magic"):
        FrameDecoder().feed(b"GET / HTTP/1.1\r\n")


def test_unsupported_version_is_refused() -> None:
    """A frame of another version fails with the version in the reason."""
    with pytest.raises(FrameError, match="unsupported version 7"):
        FrameDecoder().feed(header(1, version=7) + b"x")


def test_oversized_frame_is_refused_before_its_payload() -> None:
    """A header announcing too large a frame fails on the header alone, with nothing buffered."""
    decoder = FrameDecoder()
    with pytest.raises(FrameError) as info:
        decoder.feed(header(5_000_000))
    assert info.value.reason == "frame of 5000000 bytes exceeds 1048576"
    assert decoder.statistics().buffered_bytes == 0


def test_decoder_is_unusable_after_an_error() -> None:
    """After a FrameError every later feed fails too, even with valid bytes."""
    decoder = FrameDecoder()
    with pytest.raises(FrameError):
        decoder.feed(b"XX")
    with pytest.raises(FrameError, match="already failed: bad magic"):
        decoder.feed(encode_frame(b"ok"))
    with pytest.raises(FrameError, match="already failed"):
        decoder.eof()


def test_error_mid_chunk_drops_the_buffer() -> None:
    """A bad header after a partial frame raises and releases what was buffered."""
    decoder = FrameDecoder()
    decoder.feed(header(100) + b"x" * 50)
    assert decoder.statistics().buffered_bytes == 50
    with pytest.raises(FrameError, match="bad magic"):
        decoder.feed(b"x" * 50 + b"ZZ")
    assert decoder.statistics().buffered_bytes == 0


def test_eof_tells_a_clean_close_from_a_cut_frame() -> None:
    """eof passes on a frame boundary and fails inside a header or a payload."""
    clean = FrameDecoder()
    clean.feed(encode_frame(b"abc"))
    clean.eof()
    in_header = FrameDecoder()
    in_header.feed(b"GS")
    with pytest.raises(FrameError, match="2 bytes into a frame header"):
        in_header.eof()
    in_payload = FrameDecoder()
    in_payload.feed(encode_frame(b"abc")[:-1])
    with pytest.raises(FrameError, match="2 bytes into a frame of 3 bytes"):
        in_payload.eof()


def test_flood_never_grows_the_buffer_beyond_the_bound() -> None:
    """A maximal frame followed by a flood of garbage never holds more than header + max_frame_size."""
    limit = 4096
    decoder = FrameDecoder(max_frame_size=limit)
    bound = FRAME_HEADER_SIZE + limit
    frames = feed_all(decoder, [header(limit)] + [b"\x00" * 1000] * 4)
    assert frames == []
    assert decoder.statistics().buffered_bytes == 4000
    with pytest.raises(FrameError, match="bad magic"):
        # One huge chunk: the rest of the frame, then garbage.
        decoder.feed(b"\x00" * (limit - 4000) + b"\xff" * (10 * bound))
    assert decoder.statistics().buffered_bytes == 0


def test_large_chunks_of_max_frames_stay_within_the_bound() -> None:
    """Chunks holding several maximal frames at once never leave more than one partial frame buffered."""
    limit = 1000
    decoder = FrameDecoder(max_frame_size=limit)
    stream = b"".join(encode_frame(bytes([i]) * limit, max_frame_size=limit) for i in range(10))
    frames = feed_all(decoder, chunked(stream, [2500, 2501, 7000, 9999]))
    assert frames == [bytes([i]) * limit for i in range(10)]


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=10))
def test_random_bytes_raise_only_frame_error(chunks: list[bytes]) -> None:
    """Random chunks yield frames or raise FrameError, never anything else, and stay within the bound."""
    decoder = FrameDecoder(max_frame_size=256)
    with contextlib.suppress(FrameError):
        feed_all(decoder, chunks)


def mutated_streams() -> st.SearchStrategy[bytes]:
    """A valid stream with bytes flipped, cut off, inserted or deleted."""
    frames = st.lists(st.binary(max_size=40))
    return mutated(frames.map(lambda fs: b"".join(encode_frame(frame, max_frame_size=256) for frame in fs)))


@FUZZ
@given(mutated_streams(), st.lists(st.integers(min_value=0), max_size=10))
def test_mutated_streams_raise_only_frame_error(stream: bytes, cuts: list[int]) -> None:
    """Damaged streams, however chunked, yield frames or raise FrameError, never anything else."""
    decoder = FrameDecoder(max_frame_size=256)
    try:
        frames = feed_all(decoder, chunked(stream, cuts))
    except FrameError:
        return
    assert all(len(frame) <= 256 for frame in frames)
