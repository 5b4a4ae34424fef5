"""What a ``TcpTransport`` counts, and the frozen snapshot ``statistics()`` returns."""

from __future__ import annotations

import attrs


@attrs.frozen
class TcpStatistics:
    """A snapshot of a ``TcpTransport``'s counters.

    Attributes:
        frames_sent: frames handed to a connection's socket (as with any
            TCP write, the last ones before a connection fails may not arrive).
        frames_received: frames delivered to ``on_frame``.
        frames_dropped: frames lost: refused by a full send buffer (``send``
            returned ``False``), queued for a connection that was lost or for
            a node with no known address, or sent after ``stop``.
        connections_established: connections that completed the handshake.
        connections_lost: established connections that went down.
        handshake_failures: connections refused or abandoned during the
            handshake: wrong secret, wrong node, bad or timed-out handshake.
        connect_failures: outgoing TCP connects that failed (peer not listening).
        connections_refused: incoming connections closed unread because too
            many handshakes were already in progress from known hosts, or
            from the connection's own address.
        handshakes_evicted: incoming connections from hosts that are not
            known, closed during their handshake to make room for a newer one
            (the one that had waited longest at the same stage).
        receive_pauses: times a connection stopped being read because the
            messages from its peer still waiting in local mailboxes passed
            ``receive_buffer_bytes``.
        connected_peers: nodes with a working connection now.
        peer_records: nodes the transport keeps a record of now: connected,
            being dialled, with frames queued, or in a reconnect backoff
            (idle ones are swept as the table grows).
        buffered_frames: frames waiting in send buffers now.
    """

    frames_sent: int
    frames_received: int
    frames_dropped: int
    connections_established: int
    connections_lost: int
    handshake_failures: int
    connect_failures: int
    connections_refused: int
    handshakes_evicted: int
    receive_pauses: int
    connected_peers: int
    buffered_frames: int
    peer_records: int


class Counters:
    """A transport's running counts (see ``TcpStatistics`` for what each means)."""

    __slots__ = (
        "connect_failures",
        "connections_established",
        "connections_lost",
        "connections_refused",
        "frames_dropped",
        "frames_received",
        "frames_sent",
        "handshake_failures",
        "handshakes_evicted",
        "receive_pauses",
    )

    def __init__(self) -> None:
        self.frames_sent = 0
        self.frames_received = 0
        self.frames_dropped = 0
        self.connections_established = 0
        self.connections_lost = 0
        self.handshake_failures = 0
        self.connect_failures = 0
        self.connections_refused = 0
        self.handshakes_evicted = 0
        self.receive_pauses = 0

    def snapshot(self, *, connected_peers: int, buffered_frames: int, peer_records: int) -> TcpStatistics:
        """The counts now, with the figures only the transport can measure."""
        return TcpStatistics(
            frames_sent=self.frames_sent,
            frames_received=self.frames_received,
            frames_dropped=self.frames_dropped,
            connections_established=self.connections_established,
            connections_lost=self.connections_lost,
            handshake_failures=self.handshake_failures,
            connect_failures=self.connect_failures,
            connections_refused=self.connections_refused,
            handshakes_evicted=self.handshakes_evicted,
            receive_pauses=self.receive_pauses,
            connected_peers=connected_peers,
            buffered_frames=buffered_frames,
            peer_records=peer_records,
        )
