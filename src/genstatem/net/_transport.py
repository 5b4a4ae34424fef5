"""What a node needs from a network: carry opaque frames between named nodes.

A transport moves bytes; the node above it encodes and decodes messages and
runs the distribution protocol (links, monitors, calls across nodes). Three
transports implement this: in memory, simulated (``genstatem.testing``), and
TCP. Frames from one node to another arrive in the order sent, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

FrameHandler = Callable[[str, bytes], None]
"""``handler(peer_node, frame)``: called for each frame that arrives, in order."""

PeerHandler = Callable[[str], None]
"""``handler(peer_node)``: called when a connection to ``peer_node`` comes up or is lost."""


Backlog = Callable[[str], int]
"""``backlog(peer_node)``: bytes of the frames from ``peer_node`` handed to ``on_frame`` that still wait
in the mailboxes of the actors they were for (an upper bound: never less than the truth)."""


RefusalHandler = Callable[[str, str], None]
"""``handler(peer_node, reason)``: a dial to ``peer_node`` was refused for ``reason``; its queue is dropped."""


def ignore_frame(peer: str, frame: bytes) -> None:
    """A :data:`FrameHandler` that drops the frame: a transport's handler before ``start``."""
    del peer, frame


def ignore_peer(peer: str) -> None:
    """A :data:`PeerHandler` that does nothing: a transport's handler before ``start``."""
    del peer


class Transport(Protocol):
    """One node's endpoint on a network."""

    async def start(
        self,
        node: str,
        on_frame: FrameHandler,
        on_peer_up: PeerHandler,
        on_peer_down: PeerHandler,
    ) -> None:
        """Join the network as ``node``; from now on arriving frames go to ``on_frame``.

        ``on_peer_down(peer)`` is called once when a working connection to
        ``peer`` is lost (every frame still unsent to it is dropped);
        ``on_peer_up(peer)`` once a connection is (re-)established.
        """
        ...

    def send(self, peer: str, frame: bytes) -> bool:
        """Queue ``frame`` for ``peer`` without blocking; connect first if need be.

        Returns:
            ``False`` when the frame was dropped because the send buffer to
            ``peer`` is full (see ``drain``); ``True`` when it was queued.
        """
        ...

    async def drain(self, peer: str) -> None:
        """Wait until the send buffer to ``peer`` has room again (backpressure)."""
        ...

    def disconnect(self, peer: str) -> None:
        """Drop the connection to ``peer`` (``on_peer_down`` fires on both sides)."""
        ...

    async def stop(self) -> None:
        """Leave the network: close every connection and stop listening."""
        ...


@runtime_checkable
class ReceiveBackpressure(Protocol):
    """A transport that can stop reading from a peer while the node holds too much of what it sent.

    A node gives such a transport its :data:`Backlog` before ``start``; the
    transport stops reading a peer's connection while the backlog from that
    peer is over its limit, so the peer is slowed by flow control instead of
    growing this node's memory.
    """

    def watch_backlog(self, backlog: Backlog) -> None:
        """Use ``backlog`` to learn what each peer's frames still occupy in this node."""
        ...


@runtime_checkable
class ReportsRefusals(Protocol):
    """A transport that tells its node when a peer refuses the connection, and why.

    The node then fails what waits on that peer with an error naming the
    reason, instead of letting it time out.
    """

    def watch_refusals(self, handler: RefusalHandler) -> None:
        """Call ``handler(peer, reason)`` each time a dial to ``peer`` is refused."""
        ...
