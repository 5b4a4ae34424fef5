"""The TCP connection handshake: both ends prove they hold the shared secret before a frame crosses.

The handshake, version 4, is four frames (each a small payload starting
``b"GSH"``, the version and the message kind, then length-prefixed fields)::

    dialler  -> listener  HELLO      my name, the name I expect, my nonce, my incarnation, TLS or not, the time,
                                     HMAC(secret, "hello", names, my nonce, my incarnation, TLS or not, the time)
    [TLS, when used: its handshake, then everything below inside it]
    listener -> dialler   CHALLENGE  my name, my nonce, my incarnation      (or REFUSED)
    dialler  -> listener  PROOF      HMAC(secret, "client", names, nonces, incarnations)
    listener -> dialler   ACCEPT     HMAC(secret, "server", names, nonces, incarnations)  (or REFUSED)

The HELLO's MAC lets the listener tell, from the first message, a dialler
that holds the secret from one that does not, so only holders of the secret
ever wait in its handshake past their HELLO (``_tcp_admission.py``). A
captured HELLO sent again still carries a valid MAC: the listener takes a
HELLO only if its time (wall clock, in milliseconds) is within
``HELLO_WINDOW`` of its own clock and its nonce was not seen in that window
(``SeenHellos``). A replay that got through anyway could not complete the
handshake: the PROOF covers the listener's fresh nonce.

The HELLO goes first even under TLS, in the clear, so that a correct
dialler leaves the pool of connections without a valid HELLO right after
its connect, however many round trips TLS then takes. It carries no
secret; an observer learns from it the two node names (and a nonce, an
incarnation and a time, of no use to anyone without the secret). The
dialler starts TLS right after it; the listener reads the HELLO to its
last byte and no further, checks it, and only then runs TLS on the rest of
the stream. A refusal of the HELLO is sent in the clear, which the
dialler tells apart from TLS by its first byte. The HELLO says whether TLS
follows, under its MAC, so a TLS/plain mismatch is refused at once, naming
it, and no one can make either end skip TLS.

The incarnation is random per started transport, so a node that restarted
under the same name is told apart from a second connection of the same node.
``accept`` is the listener's half, ``dial`` the dialler's.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import heapq
import hmac
import secrets
import ssl
import time
from collections.abc import Callable
from typing import Final, NoReturn

import anyio
import attrs
from anyio.abc import ByteStream, SocketStream

from . import _tls
from ._frames import FRAME_HEADER_SIZE, FRAME_MAGIC, FrameDecoder, encode_frame

# 2: refs and addresses carry the node's creation (an older node could not decode them).
# 3: the HELLO carries a timestamp and a MAC of the secret; Raft's Append travels in a
#    compact form, no longer as a record (raft/_wire.py).
# 4: the HELLO comes before TLS, and says whether TLS follows.
HANDSHAKE_VERSION: Final = 4
"""The version of the connection handshake this module speaks."""

HELLO_WINDOW: Final = 300.0
"""How far, in seconds, a HELLO's timestamp may be from the listener's clock, either way.

Nodes' clocks are assumed NTP-synced, to well within this; it bounds how
long a listener must remember a HELLO's nonce to refuse it sent again.
"""

MAX_SEEN_HELLOS: Final = 16384
"""The most HELLO nonces a listener remembers (about 3 MiB); past it, HELLOs are refused until some expire."""

INCARNATION_SIZE: Final = 16
READ_CHUNK: Final = 65536

_HANDSHAKE_MAGIC: Final = b"GSH"
_HANDSHAKE_MAX_FRAME: Final = 1024  # what an unauthenticated peer can make us buffer
_NONCE_SIZE: Final = 32
_TIMESTAMP_SIZE: Final = 8
_WITH_TLS: Final = b"\x01"
_WITHOUT_TLS: Final = b"\x00"

_HELLO_ROLE: Final = b"hello"
_CLIENT_ROLE: Final = b"client"
_SERVER_ROLE: Final = b"server"

# Refusals that are part of normal operation, not a failure: two nodes dialled
# each other at once, or a peer dialled again before seeing the old connection go.
SIMULTANEOUS: Final = "simultaneous connect; the other connection wins"
ALREADY_CONNECTED: Final = "already connected"
SUPERSEDED: Final = "superseded by another connection"
_BENIGN: Final = frozenset({SIMULTANEOUS, ALREADY_CONNECTED, SUPERSEDED})
_CLOSED_IN_HANDSHAKE: Final = "connection closed during the handshake"
TIMED_OUT: Final = "handshake timed out"
BAD_HELLO_MAC: Final = "bad secret: the peer's HELLO does not carry the secret's MAC"
REPLAYED: Final = "replayed HELLO: its nonce was seen within the freshness window"
TLS_REQUIRED: Final = "TLS mismatch: this node requires TLS"
TLS_UNUSED: Final = "TLS mismatch: this node does not use TLS"


class _Kind(enum.IntEnum):
    HELLO = 1
    CHALLENGE = 2
    PROOF = 3
    ACCEPT = 4
    REFUSED = 5


_ARITY: Final = {_Kind.HELLO: 7, _Kind.CHALLENGE: 3, _Kind.PROOF: 1, _Kind.ACCEPT: 1, _Kind.REFUSED: 1}


class HandshakeError(Exception):
    """The handshake cannot go on; ``benign`` when that is normal (a lost race)."""

    def __init__(self, reason: str, *, benign: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.benign = benign


@attrs.frozen
class Identity:
    """Who this end is: its node name, the network's secret and this run's incarnation."""

    node: str
    secret: bytes = attrs.field(repr=False)
    incarnation: bytes


class SeenHellos:
    """The HELLOs a listener took within the freshness window: stale ones are refused, and nonces seen again.

    Only a HELLO whose MAC holds and whose timestamp is fresh enters, so
    only a holder of the secret can add to it: a flood without the secret,
    or replaying captured HELLOs, cannot grow it. A nonce is forgotten once
    its HELLO's timestamp leaves the window, when the HELLO would be
    refused as stale anyway. Past ``capacity`` nonces (honest nodes dial
    far less often) fresh HELLOs are refused until some expire, rather than
    forgetting a nonce that could then be replayed.

    Args:
        window: ``HELLO_WINDOW``, in seconds.
        capacity: ``MAX_SEEN_HELLOS``.
        clock: the wall clock, in seconds since the epoch.
    """

    def __init__(
        self,
        *,
        window: float = HELLO_WINDOW,
        capacity: int = MAX_SEEN_HELLOS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._window = window
        self._capacity = capacity
        self._clock = clock
        self._nonces: set[bytes] = set()
        self._expiries: list[tuple[float, bytes]] = []  # a heap: the soonest to expire first

    def __len__(self) -> int:
        return len(self._nonces)

    def check(self, nonce: bytes, timestamp_ms: int) -> str | None:
        """Record the nonce of a HELLO whose MAC holds; why the HELLO is refused, if it is."""
        now = self._clock()
        sent = timestamp_ms / 1000
        if sent < now - self._window:
            return f"clock skew: the HELLO's timestamp is more than {self._window:g} s behind this node's clock"
        if sent > now + self._window:
            return f"clock skew: the HELLO's timestamp is more than {self._window:g} s ahead of this node's clock"
        while self._expiries and self._expiries[0][0] < now:
            self._nonces.discard(heapq.heappop(self._expiries)[1])
        if nonce in self._nonces:
            return REPLAYED
        if len(self._nonces) >= self._capacity:
            return "too many HELLOs within the freshness window to tell a replay; try again later"
        self._nonces.add(nonce)
        heapq.heappush(self._expiries, (sent + self._window, nonce))
        return None


@attrs.define
class Attempt:
    """A connection in its handshake, for the log; the handshake fills in the stream it ends on and the peer.

    ``refusal`` is set when a dialled peer answered but would not have the
    connection (wrong secret, handshake version, TLS): retrying soon will not help.
    """

    direction: str
    address: str
    stream: ByteStream | None = None
    peer: str | None = None
    refusal: str | None = None


@attrs.frozen
class Authenticated:
    """A connection whose peer proved it holds the secret, ready to carry frames.

    Attributes:
        peer: the peer's node name.
        incarnation: the peer's incarnation.
        stream: the stream to carry frames on (TLS, when used).
        decoder: the decoder to read that stream with.
        first_frames: frames that arrived with the handshake's last message.
        greeting: what to write before any frame (the listener's ACCEPT,
            sent by the writer so that the handshake's deadline never cuts a
            connection already up).
    """

    peer: str
    incarnation: bytes
    stream: ByteStream
    decoder: FrameDecoder
    first_frames: list[bytes]
    greeting: bytes


async def accept(
    attempt: Attempt,
    me: Identity,
    *,
    tls: ssl.SSLContext | None,
    max_frame_size: int,
    admit: Callable[[str, bytes], str | None],
    seen: SeenHellos,
    on_hello: Callable[[], None] = lambda: None,
) -> Authenticated:
    """The listener's half, on ``attempt.stream``.

    Args:
        attempt: the incoming connection; ``peer`` is set once the dialler names itself.
        me: this node.
        tls: the server context, to run TLS once the HELLO is taken.
        max_frame_size: the largest frame the connection accepts.
        admit: called with the authenticated peer and its incarnation; returns
            why the connection may not become the peer's (a benign refusal), or ``None``.
        seen: the HELLOs this listener took lately, to refuse one sent again.
        on_hello: called once the dialler sent a valid HELLO for this node
            (its MAC holds, it is fresh and not seen before, it agrees on
            TLS), before TLS and the CHALLENGE.

    Raises:
        HandshakeError: refused, here or by the peer (the refusal was sent).
    """
    assert attempt.stream is not None
    stream = attempt.stream
    decoder = FrameDecoder(max_frame_size=_HANDSHAKE_MAX_FRAME)

    async def refuse(reason: str, *, benign: bool = False) -> NoReturn:
        with contextlib.suppress(Exception):  # the reason is logged here either way
            await stream.send(_pack(_Kind.REFUSED, reason.encode()))
        raise HandshakeError(reason, benign=benign)

    try:
        hello = await _receive_hello(stream, decoder)
    except HandshakeError as exc:
        await refuse(exc.reason)
    attempt.peer = client = hello.client
    if (refusal := _hello_refusal(hello, me, seen, tls=tls is not None)) is not None:
        await refuse(refusal)
    on_hello()
    if tls is not None:  # the HELLO was read to its last byte: TLS reads on from there
        stream = attempt.stream = await _tls.wrap(stream, tls, server_side=True)
    client_incarnation = hello.incarnation
    server_nonce = secrets.token_bytes(_NONCE_SIZE)
    await stream.send(_pack(_Kind.CHALLENGE, me.node.encode(), server_nonce, me.incarnation))
    transcript = (client, me.node, hello.nonce, server_nonce, client_incarnation, me.incarnation)
    try:
        _, (proof,) = _unpack(await _receive_only(stream, decoder), _Kind.PROOF)
    except HandshakeError as exc:
        await refuse(exc.reason)
    if not hmac.compare_digest(proof, _mac(me.secret, _CLIENT_ROLE, *transcript)):
        await refuse("bad secret: the peer's proof does not match")
    refusal = admit(client, client_incarnation)
    if refusal is not None:
        await refuse(refusal, benign=True)
    greeting = _pack(_Kind.ACCEPT, _mac(me.secret, _SERVER_ROLE, *transcript))
    return Authenticated(client, client_incarnation, stream, FrameDecoder(max_frame_size=max_frame_size), [], greeting)


async def dial(
    attempt: Attempt, me: Identity, *, hostname: str, tls: ssl.SSLContext | None, max_frame_size: int
) -> Authenticated:
    """The dialler's half, on ``attempt.stream``, to reach node ``attempt.peer`` at ``hostname``.

    Raises:
        HandshakeError: refused, by the peer or because it is not the node expected.
    """
    stream = attempt.stream
    peer = attempt.peer
    assert isinstance(stream, SocketStream)
    assert peer is not None
    client_nonce = secrets.token_bytes(_NONCE_SIZE)
    await stream.send(_hello(me, peer, client_nonce, _now_ms(), tls=tls is not None))
    if tls is not None:  # at once: the listener reads no further than the HELLO until it took it
        stream = attempt.stream = await _tls.wrap(_RefusalInTheClear(stream), tls, server_side=False, hostname=hostname)
    # Frames may follow the ACCEPT at once, so this decoder goes on to read the connection.
    decoder = FrameDecoder(max_frame_size=max(max_frame_size, _HANDSHAKE_MAX_FRAME))
    kind, fields = _unpack(await _receive_only(stream, decoder), _Kind.CHALLENGE)
    _raise_if_refused(kind, fields)
    server_raw, server_nonce, server_incarnation = fields
    if _decode_name(server_raw) != peer:
        raise HandshakeError(f"wrong node: reached {_decode_name(server_raw)!r}, not {peer!r}")
    if len(server_nonce) != _NONCE_SIZE or len(server_incarnation) != INCARNATION_SIZE:
        raise HandshakeError("malformed handshake: bad nonce or incarnation")
    transcript = (me.node, peer, client_nonce, server_nonce, me.incarnation, server_incarnation)
    await stream.send(_pack(_Kind.PROOF, _mac(me.secret, _CLIENT_ROLE, *transcript)))
    payload, first_frames = await _receive_frames(stream, decoder)
    kind, fields = _unpack(payload, _Kind.ACCEPT)
    _raise_if_refused(kind, fields)
    if not hmac.compare_digest(fields[0], _mac(me.secret, _SERVER_ROLE, *transcript)):
        raise HandshakeError("bad secret: the peer's proof does not match")
    return Authenticated(peer, server_incarnation, stream, decoder, first_frames, b"")


def is_refusal(exc: Exception) -> bool:
    """Whether ``exc``, failing a dial after the TCP connect, says the peer will not have this node.

    A timeout, a lost race or a connection closed unread (the peer busy) is
    worth retrying at once; a bad secret, a wrong node, another handshake
    version or a TLS failure is not, until something changes.
    """
    if isinstance(exc, HandshakeError):
        return not exc.benign and exc.reason not in (_CLOSED_IN_HANDSHAKE, TIMED_OUT)
    return tls_failure(exc) is not None


def tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind ``exc``, if any (anyio wraps some in ``BrokenResourceError``)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__
    return None


def is_closed(exc: Exception) -> bool:
    """Whether ``exc`` says only that the peer went away."""
    if isinstance(exc, HandshakeError):
        return exc.reason == _CLOSED_IN_HANDSHAKE
    return isinstance(exc, anyio.BrokenResourceError | ConnectionError)


# -- messages ------------------------------------------------------------------------------


def _pack(kind: _Kind, *fields: bytes) -> bytes:
    parts = [_HANDSHAKE_MAGIC, bytes((HANDSHAKE_VERSION, kind))]
    for field in fields:
        parts += (len(field).to_bytes(2, "big"), field)
    return encode_frame(b"".join(parts), max_frame_size=_HANDSHAKE_MAX_FRAME)


def _unpack(payload: bytes, expected: _Kind) -> tuple[_Kind, list[bytes]]:
    """Parse a handshake message that must be ``expected`` (or a refusal)."""
    if payload[: len(_HANDSHAKE_MAGIC)] != _HANDSHAKE_MAGIC:
        raise HandshakeError("malformed handshake: not a handshake message")
    position = len(_HANDSHAKE_MAGIC)
    if len(payload) < position + 2:
        raise HandshakeError("malformed handshake: truncated header")
    version, kind_code = payload[position], payload[position + 1]
    if version != HANDSHAKE_VERSION:
        raise HandshakeError(f"unsupported handshake version {version} (this node speaks {HANDSHAKE_VERSION})")
    if kind_code not in (expected, _Kind.REFUSED):
        raise HandshakeError(f"malformed handshake: expected {expected.name}, got message kind {kind_code}")
    kind = _Kind(kind_code)
    position += 2
    fields: list[bytes] = []
    while position < len(payload):
        size = int.from_bytes(payload[position : position + 2], "big")
        field = payload[position + 2 : position + 2 + size]
        if position + 2 > len(payload) or len(field) != size:
            raise HandshakeError("malformed handshake: truncated field")
        fields.append(field)
        position += 2 + size
    if len(fields) != _ARITY[kind]:
        raise HandshakeError(f"malformed handshake: {kind.name} with {len(fields)} fields")
    return kind, fields


@attrs.frozen
class _Hello:
    client: str
    expected: str
    nonce: bytes
    incarnation: bytes
    tls: bool
    timestamp_ms: int
    mac: bytes


def _hello(me: Identity, peer: str, nonce: bytes, timestamp_ms: int, *, tls: bool = False) -> bytes:
    """The HELLO ``me`` sends to ``peer``, stamped with ``timestamp_ms`` (wall clock, ms since the epoch).

    ``tls`` says whether TLS follows it on the connection.
    """
    unsigned = _Hello(me.node, peer, nonce, me.incarnation, tls, timestamp_ms, b"")
    mac = _hello_mac(me.secret, unsigned)
    timestamp = timestamp_ms.to_bytes(_TIMESTAMP_SIZE, "big")
    flag = _WITH_TLS if tls else _WITHOUT_TLS
    return _pack(_Kind.HELLO, me.node.encode(), peer.encode(), nonce, me.incarnation, flag, timestamp, mac)


def _now_ms() -> int:
    """The wall clock, in milliseconds since the epoch, as a HELLO is stamped."""
    return int(time.time() * 1000)


def _hello_mac(secret: bytes, hello: _Hello) -> bytes:
    """The MAC a HELLO carries: bound to both names, the dialler's nonce and incarnation, TLS, and the time."""
    flag = _WITH_TLS if hello.tls else _WITHOUT_TLS
    timestamp = hello.timestamp_ms.to_bytes(_TIMESTAMP_SIZE, "big")
    client, expected = hello.client.encode(), hello.expected.encode()
    return _hmac(secret, _HELLO_ROLE, client, expected, hello.nonce, hello.incarnation, flag, timestamp)


def _hello_refusal(hello: _Hello, me: Identity, seen: SeenHellos, *, tls: bool) -> str | None:
    """Why the listener ``me`` (with ``tls`` or not) refuses ``hello``, if it does.

    The MAC first, so the rest answer only holders of the secret.
    """
    if not hmac.compare_digest(hello.mac, _hello_mac(me.secret, hello)):
        return BAD_HELLO_MAC
    if (stale := seen.check(hello.nonce, hello.timestamp_ms)) is not None:
        return stale
    if hello.tls != tls:
        return TLS_REQUIRED if tls else TLS_UNUSED
    if hello.expected != me.node:
        return f"wrong node: this is {me.node!r}, not {hello.expected!r}"
    if hello.client == me.node:
        return f"the peer claims this node's own name {hello.client!r}"
    return None


def _raise_if_refused(kind: _Kind, fields: list[bytes]) -> None:
    if kind is _Kind.REFUSED:
        reason = fields[0].decode(errors="replace")
        raise HandshakeError(f"refused by the peer: {reason}", benign=reason in _BENIGN)


def _mac(
    secret: bytes,
    role: bytes,
    client: str,
    server: str,
    client_nonce: bytes,
    server_nonce: bytes,
    client_incarnation: bytes,
    server_incarnation: bytes,
) -> bytes:
    """The proof a side sends: bound to its role, both names, both nonces and both incarnations."""
    return _hmac(
        secret,
        role,
        client.encode(),
        server.encode(),
        client_nonce,
        server_nonce,
        client_incarnation,
        server_incarnation,
    )


def _hmac(secret: bytes, role: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 of ``parts``, each length-prefixed, bound to this protocol, its version and ``role``."""
    framed = (b"genstatem tcp handshake", bytes((HANDSHAKE_VERSION,)), role, *parts)
    message = b"".join(len(part).to_bytes(2, "big") + part for part in framed)
    return hmac.new(secret, message, hashlib.sha256).digest()


async def _receive_frames(stream: ByteStream, decoder: FrameDecoder) -> tuple[bytes, list[bytes]]:
    """The next frame, and any that arrived with it."""
    while True:
        try:
            chunk = await stream.receive(READ_CHUNK)
        except anyio.EndOfStream:
            raise HandshakeError(_CLOSED_IN_HANDSHAKE) from None
        frames = decoder.feed(chunk)
        if frames:
            return frames[0], frames[1:]


async def _receive_only(stream: ByteStream, decoder: FrameDecoder) -> bytes:
    """The next frame, which the peer must not have followed with anything."""
    frame, more = await _receive_frames(stream, decoder)
    if more or decoder.statistics().buffered_bytes:
        raise HandshakeError("unexpected data during the handshake")
    return frame


async def _receive_exactly_one(stream: ByteStream, decoder: FrameDecoder) -> bytes:
    """The next frame, read to its last byte and no further, so that what follows (TLS) is left to read.

    ``decoder`` checks the header as soon as it is in, so no more than
    its ``max_frame_size`` is ever asked for.
    """
    header = bytearray()
    wanted = FRAME_HEADER_SIZE
    while True:
        try:
            chunk = await stream.receive(wanted)
        except anyio.EndOfStream:
            raise HandshakeError(_CLOSED_IN_HANDSHAKE) from None
        if frames := decoder.feed(chunk):
            return frames[0]
        if len(header) < FRAME_HEADER_SIZE:
            header += chunk
            wanted = FRAME_HEADER_SIZE - len(header)
            if not wanted:  # the decoder took it: the length is within bounds
                wanted = int.from_bytes(header[FRAME_HEADER_SIZE - 4 :], "big")
        else:
            wanted -= len(chunk)


async def _receive_hello(stream: ByteStream, decoder: FrameDecoder) -> _Hello:
    """The dialler's HELLO, well formed (its MAC not checked yet), and not a byte past it."""
    kind, fields = _unpack(await _receive_exactly_one(stream, decoder), _Kind.HELLO)
    if kind is not _Kind.HELLO:
        raise HandshakeError("malformed handshake: expected HELLO, got REFUSED")
    client_raw, expected_raw, nonce, incarnation, flag, timestamp, mac = fields
    client, expected = _decode_name(client_raw), _decode_name(expected_raw)
    if len(nonce) != _NONCE_SIZE or len(incarnation) != INCARNATION_SIZE:
        raise HandshakeError("malformed handshake: bad nonce or incarnation")
    if flag not in (_WITH_TLS, _WITHOUT_TLS):
        raise HandshakeError("malformed handshake: bad TLS flag")
    if len(timestamp) != _TIMESTAMP_SIZE:
        raise HandshakeError("malformed handshake: bad timestamp")
    return _Hello(client, expected, nonce, incarnation, flag == _WITH_TLS, int.from_bytes(timestamp, "big"), mac)


class _RefusalInTheClear(_tls.StreamOver):
    """The dialler's socket under TLS: a REFUSED the listener sent in the clear, instead of TLS, is raised.

    A listener refuses a HELLO before TLS starts. TLS records never start
    with the frame magic's first byte, so the first bytes tell the two apart.
    """

    def __init__(self, stream: ByteStream) -> None:
        super().__init__(stream)
        self._first = True

    async def receive(self, max_bytes: int = READ_CHUNK) -> bytes:
        data = await self._stream.receive(max_bytes)
        if self._first:
            self._first = False
            if data[:1] == FRAME_MAGIC[:1]:
                await self._raise_refusal(data)
        return data

    async def _raise_refusal(self, data: bytes) -> NoReturn:
        decoder = FrameDecoder(max_frame_size=_HANDSHAKE_MAX_FRAME)
        while not (frames := decoder.feed(data)):
            try:
                data = await self._stream.receive(_HANDSHAKE_MAX_FRAME)
            except anyio.EndOfStream:
                raise HandshakeError(_CLOSED_IN_HANDSHAKE) from None
        _raise_if_refused(*_unpack(frames[0], _Kind.REFUSED))
        raise AssertionError("unreachable: _unpack returns only a REFUSED here")


def _decode_name(raw: bytes) -> str:
    try:
        name = raw.decode()
    except UnicodeDecodeError:
        raise HandshakeError("malformed handshake: a node name is not UTF-8") from None
    if not name:
        raise HandshakeError("malformed handshake: empty node name")
    return name
