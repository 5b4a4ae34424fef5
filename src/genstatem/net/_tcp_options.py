"""``TcpOptions``: how a ``TcpTransport`` authenticates, buffers, and reconnects."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping

import attrs

from ._frames import DEFAULT_MAX_FRAME_SIZE, FrameDecoder
from ._ticks import DEFAULT_TICK_TIME, check_tick_time

PeerAddresses = Mapping[str, tuple[str, int]] | Callable[[str], tuple[str, int] | None]
"""Where each node listens: a mapping, or a function returning ``None`` for an unknown node."""


def _no_peers_if_none(peers: PeerAddresses | None) -> PeerAddresses:
    return {} if peers is None else peers


@attrs.frozen(kw_only=True)
class TcpOptions:
    """The options of a ``TcpTransport``, checked when made.

    Attributes:
        secret: the key every node of the network shares; never sent, only
            used to prove knowledge of it.
        peers: where the other nodes listen, as a mapping (read at each
            connect, so it may be updated) or a function of the node name
            returning ``None`` for an unknown node.
        server_ssl_context: with ``client_ssl_context``, run every connection
            over TLS; this one for connections accepted.
        client_ssl_context: the context for connections dialled; the peer's
            certificate is checked against the host from ``peers``.
        max_frame_size: the largest frame, in bytes, sent or accepted; give
            every node the same.
        send_buffer_frames: frames a peer's send buffer holds before ``send``
            refuses more.
        send_buffer_bytes: bytes a peer's send buffer holds before ``send``
            refuses more (a frame is accepted while the buffer is below it).
        receive_buffer_bytes: frame bytes from one peer whose messages may wait
            in this node's mailboxes, not yet taken by the actors they are for,
            before the node stops reading that peer's connection until they
            take some (TCP flow control then slows the peer down).
        handshake_timeout: seconds a new connection has to connect, finish
            TLS and the handshake.
        max_handshakes: incoming connections allowed in their handshake at
            once from known hosts (the IP addresses in a ``peers`` mapping,
            and those of nodes connected now), more being closed unread; and
            from all other hosts together, as many before their HELLO and as
            many after it, where a newcomer closes the one that waited
            longest, so that no flood keeps a new node out.
        max_handshakes_per_address: incoming connections allowed in their
            handshake at once from any one host that is not known; more are
            closed unread.
        reconnect_initial_delay: seconds before retrying a failed connect;
            doubled at each failure, with jitter.
        reconnect_max_delay: the cap on that delay.
        tick_time: seconds a connected node may be silent before the
            connection is dropped and it is declared down (``"noconnection"``);
            ``None`` never (only TCP keepalive, after minutes, then).

    Raises:
        ValueError: an empty secret, only one TLS context, or a limit out of range.
    """

    secret: bytes = attrs.field(repr=False)
    peers: PeerAddresses = attrs.field(factory=dict, converter=_no_peers_if_none, eq=False)
    server_ssl_context: ssl.SSLContext | None = None
    client_ssl_context: ssl.SSLContext | None = None
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    send_buffer_frames: int = 1024
    send_buffer_bytes: int = 8 << 20
    receive_buffer_bytes: int = 4 << 20
    handshake_timeout: float = 5.0
    max_handshakes: int = 64
    max_handshakes_per_address: int = 4
    reconnect_initial_delay: float = 0.1
    reconnect_max_delay: float = 5.0
    tick_time: float | None = attrs.field(default=DEFAULT_TICK_TIME, converter=check_tick_time)

    def __attrs_post_init__(self) -> None:
        if not self.secret:
            raise ValueError("secret must not be empty")
        if (self.server_ssl_context is None) != (self.client_ssl_context is None):
            raise ValueError("give both server_ssl_context and client_ssl_context, or neither")
        if (
            min(
                self.send_buffer_frames,
                self.send_buffer_bytes,
                self.receive_buffer_bytes,
                self.max_handshakes,
                self.max_handshakes_per_address,
            )
            < 1
        ):
            raise ValueError("buffer limits and max_handshakes must be at least 1")
        if self.handshake_timeout <= 0 or not 0 < self.reconnect_initial_delay <= self.reconnect_max_delay:
            raise ValueError("timeouts must be positive, and reconnect_initial_delay <= reconnect_max_delay")
        FrameDecoder(max_frame_size=self.max_frame_size)  # validates the size
