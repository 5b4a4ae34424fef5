"""The handshake's HELLO: only a fresh one, carrying the secret's MAC and never seen before, counts as a HELLO."""

from __future__ import annotations

import contextlib
import secrets
import ssl
from collections.abc import AsyncIterator

import anyio
import pytest
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.tls import TLSStream

from genstatem.net._frames import FrameDecoder
from genstatem.net._handshake import (
    BAD_HELLO_MAC,
    HELLO_WINDOW,
    INCARNATION_SIZE,
    REPLAYED,
    Attempt,
    HandshakeError,
    Identity,
    SeenHellos,
    _hello,
    _Kind,
    _unpack,
    accept,
)
from genstatem.net._tls import StreamOver

pytestmark = pytest.mark.anyio

SECRET = b"correct horse battery staple"
LISTENER = Identity("b", SECRET, bytes(INCARNATION_SIZE))
NOW = 1_800_000_000.0  # the listener's wall clock, in seconds
WAIT = 10.0


def hello(*, secret: bytes = SECRET, sent: float = NOW, nonce: bytes | None = None, tls: bool = False) -> bytes:
    """A HELLO from node "a" to "b", MACed with ``secret``, stamped ``sent`` (seconds), saying whether TLS follows."""
    me = Identity("a", secret, secrets.token_bytes(INCARNATION_SIZE))
    return _hello(me, "b", nonce or secrets.token_bytes(32), int(sent * 1000), tls=tls)


class Listener:
    """Node "b"'s half of the handshake, on a clock that reads ``NOW``, and who it counted as having said HELLO."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.seen = SeenHellos(clock=lambda: NOW)
        self.heard: list[str | None] = []

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[ByteStream]:
        """The dialler's end of a socket whose other end a fresh ``accept`` serves, in the background."""
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            sub = listener.listeners[0]
            client = await anyio.connect_tcp("127.0.0.1", sub.extra(SocketAttribute.local_port))
            server = await sub.accept()
            attempt = Attempt("incoming", "test", server)

            async def run() -> None:
                with contextlib.suppress(HandshakeError):
                    await accept(
                        attempt,
                        LISTENER,
                        tls=self.tls,
                        max_frame_size=1024,
                        admit=lambda peer, incarnation: None,
                        seen=self.seen,
                        on_hello=lambda: self.heard.append(attempt.peer),
                    )

            async with client, server, anyio.create_task_group() as task_group:
                task_group.start_soon(run)
                yield client
                task_group.cancel_scope.cancel()

    async def answer(self, data: bytes) -> tuple[_Kind, list[bytes]]:
        """Send ``data`` to a fresh ``accept`` and return its first answer (CHALLENGE or REFUSED)."""
        async with self.connected() as client:
            await client.send(data)
            frame = await first_frame(client)
        return _unpack(frame, _Kind.CHALLENGE)


async def first_frame(stream: ByteStream) -> bytes:
    """The first handshake frame that comes on ``stream``, within ``WAIT``."""
    decoder = FrameDecoder(max_frame_size=1024)
    frames: list[bytes] = []
    with anyio.fail_after(WAIT):
        while not frames:
            frames = decoder.feed(await stream.receive())
    return frames[0]


async def test_a_hello_with_the_secrets_mac_is_challenged_and_counts_as_a_hello() -> None:
    """A fresh HELLO carrying the secret's MAC moves on to the CHALLENGE, once on_hello was called."""
    listener = Listener()
    kind, _ = await listener.answer(hello())
    assert kind is _Kind.CHALLENGE
    assert listener.heard == ["a"]


async def test_a_hello_without_the_secrets_mac_is_refused_and_never_counts_as_a_hello() -> None:
    """A well-formed HELLO MACed with another secret is refused as a bad secret, and leaves no nonce behind."""
    listener = Listener()
    kind, fields = await listener.answer(hello(secret=b"not the secret"))
    assert (kind, fields) == (_Kind.REFUSED, [BAD_HELLO_MAC.encode()])
    assert BAD_HELLO_MAC.startswith("bad secret")
    assert listener.heard == []
    assert len(listener.seen) == 0


async def test_a_hello_whose_mac_does_not_cover_its_fields_is_refused() -> None:
    """A real node's HELLO with one byte of its timestamp changed no longer matches its MAC."""
    listener = Listener()
    genuine = bytearray(hello())
    genuine[-35] ^= 1  # the last byte of the timestamp, just before the 32-byte MAC and its length
    kind, fields = await listener.answer(bytes(genuine))
    assert (kind, fields) == (_Kind.REFUSED, [BAD_HELLO_MAC.encode()])
    assert listener.heard == []


async def test_a_replayed_hello_is_refused_and_never_counts_as_a_hello_again() -> None:
    """The same HELLO bytes sent a second time, within the window, are refused as a replay."""
    listener = Listener()
    captured = hello()
    assert (await listener.answer(captured))[0] is _Kind.CHALLENGE
    kind, fields = await listener.answer(captured)
    assert (kind, fields) == (_Kind.REFUSED, [REPLAYED.encode()])
    assert listener.heard == ["a"]


@pytest.mark.parametrize(("offset", "direction"), [(-HELLO_WINDOW - 1, "behind"), (HELLO_WINDOW + 1, "ahead of")])
async def test_a_hello_outside_the_freshness_window_is_refused_naming_clock_skew(offset: float, direction: str) -> None:
    """A HELLO stamped more than HELLO_WINDOW from the listener's clock is refused as clock skew, either way."""
    listener = Listener()
    kind, fields = await listener.answer(hello(sent=NOW + offset))
    assert kind is _Kind.REFUSED
    reason = fields[0].decode()
    assert reason.startswith("clock skew")
    assert f"{direction} this node's clock" in reason
    assert listener.heard == []
    assert len(listener.seen) == 0


async def test_a_hello_at_the_edge_of_the_window_is_taken() -> None:
    """A HELLO stamped just within HELLO_WINDOW of the listener's clock, either way, is challenged."""
    listener = Listener()
    for offset in (-HELLO_WINDOW + 1, HELLO_WINDOW - 1):
        assert (await listener.answer(hello(sent=NOW + offset)))[0] is _Kind.CHALLENGE
    assert listener.heard == ["a", "a"]


def test_seen_nonces_expire_with_the_window_and_stay_bounded() -> None:
    """Past its capacity the cache refuses new HELLOs rather than forget a fresh nonce; expired ones make room."""
    now = [1000.0]
    seen = SeenHellos(window=10.0, capacity=3, clock=lambda: now[0])
    for nonce in (b"1", b"2", b"3"):
        assert seen.check(nonce, 1000_000) is None
    assert seen.check(b"4", 1000_000) == "too many HELLOs within the freshness window to tell a replay; try again later"
    assert seen.check(b"1", 1000_000) == REPLAYED
    assert len(seen) == 3
    now[0] = 1010.0  # the three HELLOs are still fresh at the very edge of the window
    assert seen.check(b"1", 1000_000) == REPLAYED
    now[0] = 1010.5  # now they would be refused as stale: their nonces can go
    assert str(seen.check(b"1", 1000_000)).startswith("clock skew")
    assert seen.check(b"4", 1010_000) is None
    assert len(seen) == 1
    for nonce in (b"5", b"6"):
        assert seen.check(nonce, 1010_400) is None
    assert len(seen) == 3
    assert seen.check(b"7", 1010_400) is not None
    assert len(seen) == 3


def test_a_refused_hello_never_enters_the_nonce_cache() -> None:
    """Stale or future HELLOs, and replays, leave the cache as it was: only fresh nonces grow it."""
    seen = SeenHellos(window=10.0, capacity=3, clock=lambda: 1000.0)
    assert seen.check(b"old", 980_000) is not None
    assert seen.check(b"future", 1020_000) is not None
    assert seen.check(b"1", 1000_000) is None
    assert seen.check(b"1", 1000_000) == REPLAYED
    assert len(seen) == 1


async def test_a_hellos_word_on_tls_is_covered_by_its_mac() -> None:
    """A HELLO whose TLS flag was flipped on the way (to make a node skip TLS) no longer matches its MAC."""
    listener = Listener()
    genuine = bytearray(hello(tls=True))
    genuine[-45] ^= 1  # the TLS flag, just before the timestamp field (2 + 8 bytes) and the MAC field (2 + 32)
    kind, fields = await listener.answer(bytes(genuine))
    assert (kind, fields) == (_Kind.REFUSED, [BAD_HELLO_MAC.encode()])
    assert listener.heard == []


async def test_a_hello_promising_tls_to_a_listener_without_it_is_refused_naming_the_mismatch() -> None:
    """A listener without TLS refuses, in its first answer, a HELLO that says TLS follows."""
    listener = Listener()
    kind, fields = await listener.answer(hello(tls=True))
    assert (kind, fields) == (_Kind.REFUSED, [b"TLS mismatch: this node does not use TLS"])
    assert listener.heard == []


async def test_a_plain_hello_to_a_listener_with_tls_is_refused_in_the_clear_naming_the_mismatch(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """A listener with TLS answers a HELLO that says no TLS follows with a refusal the dialler can read."""
    listener = Listener(tls=tls_contexts[0])
    kind, fields = await listener.answer(hello(tls=False))
    assert (kind, fields) == (_Kind.REFUSED, [b"TLS mismatch: this node requires TLS"])
    assert listener.heard == []


class FirstSendAfter(StreamOver):
    """A stream whose first send carries ``prefix`` in the same write: a HELLO and TLS's first bytes together."""

    def __init__(self, stream: ByteStream, prefix: bytes) -> None:
        super().__init__(stream)
        self._prefix = prefix

    async def send(self, item: bytes) -> None:
        item, self._prefix = self._prefix + item, b""
        await self._stream.send(item)


async def test_tls_starts_right_after_the_hello_though_both_arrive_in_one_write(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """The listener reads the HELLO to its last byte and no further, so the TLS bytes behind it reach TLS, whole."""
    server_context, client_context = tls_contexts
    listener = Listener(tls=server_context)
    async with listener.connected() as raw:
        with anyio.fail_after(WAIT):
            client = await TLSStream.wrap(
                FirstSendAfter(raw, hello(tls=True)),
                hostname="127.0.0.1",
                ssl_context=client_context,
                standard_compatible=False,
            )
        frame = await first_frame(client)
    assert _unpack(frame, _Kind.CHALLENGE)[0] is _Kind.CHALLENGE
    assert listener.heard == ["a"]
