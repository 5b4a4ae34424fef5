"""The TCP connection handshake: both ends prove they hold the shared secret before a frame crosses.

The handshake, version 1, is four frames (each a small payload starting
``b"GSH"``, the version and the message kind, then length-prefixed fields)::

    dialler  -> listener  HELLO      my name, the name I expect, my nonce, my incarnation
    listener -> dialler   CHALLENGE  my name, my nonce, my incarnation      (or REFUSED)
    dialler  -> listener  PROOF      HMAC(secret, "client", names, nonces, incarnations)
    listener -> dialler   ACCEPT     HMAC(secret, "server", names, nonces, incarnations)  (or REFUSED)

The incarnation is random per started transport, so a node that restarted
under the same name is told apart from a second connection of the same node.
``accept`` is the listener's half, ``dial`` the dialler's; TLS, when used,
runs first, underneath.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import secrets
import ssl
from collections.abc import Callable
from typing import Final, NoReturn

import anyio
import attrs
from anyio.abc import ByteStream, SocketStream

from . import _tls
from ._frames import FrameDecoder, encode_frame

# 2: refs and addresses carry the node's creation (an older node could not decode them).
# 3: Raft's Append travels in a compact form, no longer as a record (raft/_wire.py).
HANDSHAKE_VERSION: Final = 3
"""The version of the connection handshake this module speaks."""

INCARNATION_SIZE: Final = 16
READ_CHUNK: Final = 65536

_HANDSHAKE_MAGIC: Final = b"GSH"
_HANDSHAKE_MAX_FRAME: Final = 1024  # what an unauthenticated peer can make us buffer
_NONCE_SIZE: Final = 32

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


class _Kind(enum.IntEnum):
    HELLO = 1
    CHALLENGE = 2
    PROOF = 3
    ACCEPT = 4
    REFUSED = 5


_ARITY: Final = {_Kind.HELLO: 4, _Kind.CHALLENGE: 3, _Kind.PROOF: 1, _Kind.ACCEPT: 1, _Kind.REFUSED: 1}


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
) -> Authenticated:
    """The listener's half, on ``attempt.stream``.

    Args:
        attempt: the incoming connection; ``peer`` is set once the dialler names itself.
        me: this node.
        tls: the server context, to run TLS first.
        max_frame_size: the largest frame the connection accepts.
        admit: called with the authenticated peer and its incarnation; returns
            why the connection may not become the peer's (a benign refusal), or ``None``.

    Raises:
        HandshakeError: refused, here or by the peer (the refusal was sent).
    """
    assert attempt.stream is not None
    stream = attempt.stream
    if tls is not None:
        assert isinstance(stream, SocketStream)
        stream = attempt.stream = await _tls.wrap(stream, tls, server_side=True)
    decoder = FrameDecoder(max_frame_size=_HANDSHAKE_MAX_FRAME)

    async def refuse(reason: str, *, benign: bool = False) -> NoReturn:
        with contextlib.suppress(Exception):  # the reason is logged here either way
            await stream.send(_pack(_Kind.REFUSED, reason.encode()))
        raise HandshakeError(reason, benign=benign)

    try:
        client, expected, client_nonce, client_incarnation = await _receive_hello(stream, decoder)
    except HandshakeError as exc:
        await refuse(exc.reason)
    attempt.peer = client
    if expected != me.node:
        await refuse(f"wrong node: this is {me.node!r}, not {expected!r}")
    if client == me.node:
        await refuse(f"the peer claims this node's own name {client!r}")
    server_nonce = secrets.token_bytes(_NONCE_SIZE)
    await stream.send(_pack(_Kind.CHALLENGE, me.node.encode(), server_nonce, me.incarnation))
    transcript = (client, me.node, client_nonce, server_nonce, client_incarnation, me.incarnation)
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
    if tls is not None:
        stream = attempt.stream = await _tls.wrap(stream, tls, server_side=False, hostname=hostname)
    # Frames may follow the ACCEPT at once, so this decoder goes on to read the connection.
    decoder = FrameDecoder(max_frame_size=max(max_frame_size, _HANDSHAKE_MAX_FRAME))
    client_nonce = secrets.token_bytes(_NONCE_SIZE)
    await stream.send(_pack(_Kind.HELLO, me.node.encode(), peer.encode(), client_nonce, me.incarnation))
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
    parts = (
        b"genstatem tcp handshake",
        bytes((HANDSHAKE_VERSION,)),
        role,
        client.encode(),
        server.encode(),
        client_nonce,
        server_nonce,
        client_incarnation,
        server_incarnation,
    )
    message = b"".join(len(part).to_bytes(2, "big") + part for part in parts)
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


async def _receive_hello(stream: ByteStream, decoder: FrameDecoder) -> tuple[str, str, bytes, bytes]:
    """The dialler's HELLO: its name, the name it expects, its nonce and its incarnation."""
    _, (client_raw, expected_raw, nonce, incarnation) = _unpack(await _receive_only(stream, decoder), _Kind.HELLO)
    client, expected = _decode_name(client_raw), _decode_name(expected_raw)
    if len(nonce) != _NONCE_SIZE or len(incarnation) != INCARNATION_SIZE:
        raise HandshakeError("malformed handshake: bad nonce or incarnation")
    return client, expected, nonce, incarnation


def _decode_name(raw: bytes) -> str:
    try:
        name = raw.decode()
    except UnicodeDecodeError:
        raise HandshakeError("malformed handshake: a node name is not UTF-8") from None
    if not name:
        raise HandshakeError("malformed handshake: empty node name")
    return name
