"""What a ``TcpTransport`` keeps per remote node: its send buffer, its dialler and its connection."""

from __future__ import annotations

from collections import deque

import anyio
from anyio.abc import ByteStream

from ._frames import FrameDecoder


class Dialer:
    """One node's attempts to connect to a peer; cancelled when another connection wins."""

    __slots__ = ("cancelled", "scope")

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()


class Peer:
    """What a transport keeps per remote node: its send buffer and its connection."""

    __slots__ = (
        "backoff",
        "connection",
        "dialer",
        "failure",
        "name",
        "queue",
        "queued_bytes",
        "queued_frames",
        "retry_at",
        "room",
    )

    def __init__(self, name: str, backoff: float) -> None:
        self.name = name
        # Encoded frames not yet handed to a connection's socket.
        self.queue: deque[bytes] = deque()
        self.queued_frames = 0
        self.queued_bytes = 0
        self.connection: Connection | None = None
        self.dialer: Dialer | None = None
        self.room: anyio.Event | None = None
        self.backoff = backoff
        # When the next dial may start (a dialler started meanwhile waits for it), and
        # why the last one failed: the same failure again is not logged again.
        self.retry_at = 0.0
        self.failure: str | None = None

    def idle(self, now: float) -> bool:
        """Nothing to send, no connection, no dialler, nobody waiting, no backoff to remember."""
        return (
            self.connection is None
            and self.dialer is None
            and not self.queue
            and self.room is None
            and self.retry_at <= now
        )


class Connection:
    """An authenticated connection to a peer, from ``on_peer_up`` to ``on_peer_down``."""

    __slots__ = (
        "backlog",
        "closed",
        "decoder",
        "greeting",
        "host",
        "incarnation",
        "outgoing",
        "peer",
        "scope",
        "stream",
        "wakeup",
    )

    def __init__(
        self, peer: Peer, stream: ByteStream, decoder: FrameDecoder, *, outgoing: bool, incarnation: bytes
    ) -> None:
        self.peer = peer
        self.stream = stream
        self.decoder = decoder
        self.outgoing = outgoing
        self.incarnation = incarnation
        self.scope = anyio.CancelScope()
        self.wakeup = anyio.Event()
        self.closed = False
        # Written before any frame: the listener's ACCEPT, sent by the writer so
        # that the handshake's deadline never cuts a connection already up.
        self.greeting = b""
        # Frame bytes from the peer the node may still hold: the node's figure
        # when last asked, plus what was delivered since.
        self.backlog = 0
        self.host = ""  # the peer's IP address: a known host, whose handshakes have slots of their own
