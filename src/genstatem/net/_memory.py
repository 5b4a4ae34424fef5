"""The in-memory network: nodes in one process, connected at once, never lossy.

Frames still go through each node's codec, so a message that could not
cross a real network fails here too, at the sender.
"""

from __future__ import annotations

import contextlib

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._core import ActorSystem
from ._node import Node
from ._ticks import DEFAULT_TICK_TIME, check_tick_time
from ._transport import FrameHandler, PeerHandler, ignore_frame, ignore_peer

_CONNECT_FAILED = -1
"""The epoch of an inbox item saying: a send to this peer found nobody there."""


class MemoryNetwork:
    """Joins the ActorSystems of one process: ``ActorSystem(node="a", network=net)``.

    Args:
        buffer_frames: frames each node may have waiting for delivery before
            further sends to it are dropped (backpressure: see ``drain``).
        tick_time: seconds a connected node may be silent before it is
            declared down (``"noconnection"``); ``None`` never. Nodes here
            fall silent only when their event loop is stuck, or in tests.

    Raises:
        ValueError: ``tick_time`` is not positive.
    """

    def __init__(self, *, buffer_frames: int = 100_000, tick_time: float | None = DEFAULT_TICK_TIME) -> None:
        self.buffer_frames = buffer_frames
        self.tick_time = check_tick_time(tick_time)
        self._endpoints: dict[str, MemoryTransport] = {}
        # A connection's epoch: frames sent before a disconnect are not delivered after it.
        self._epochs: dict[frozenset[str], int] = {}
        self._nodes: dict[str, Node] = {}

    def node(self, name: str) -> Node:
        """The ``Node`` of the system that joined as ``name`` (for its ``statistics``).

        Raises:
            KeyError: no system joined as ``name``.
        """
        return self._nodes[name]

    def epoch(self, a: str, b: str) -> int:
        return self._epochs.get(frozenset((a, b)), 0)

    async def attach(self, system: ActorSystem) -> Node:
        """Join ``system`` as ``system.node``; used by ``ActorSystem(network=...)``."""
        node = self._nodes[system.node] = await Node.join(system, MemoryTransport(self), tick_time=self.tick_time)
        return node

    def disconnect(self, a: str, b: str) -> None:
        """Cut the connection between nodes ``a`` and ``b``: frames in flight are lost, both see it.

        The next frame either sends connects them again.
        """
        pair = frozenset((a, b))
        self._epochs[pair] = self._epochs.get(pair, 0) + 1
        for node, peer in ((a, b), (b, a)):
            endpoint = self._endpoints.get(node)
            if endpoint is not None:
                endpoint._connected.discard(peer)
                endpoint._on_peer_down(peer)

    def _leave(self, endpoint: MemoryTransport) -> None:
        if self._endpoints.get(endpoint.node) is not endpoint:
            return  # already gone, perhaps replaced by a restarted node of the same name
        del self._endpoints[endpoint.node]
        for other in list(self._endpoints.values()):
            if endpoint.node in other._connected:
                self.disconnect(other.node, endpoint.node)


class MemoryTransport:
    """One node's end of a :class:`MemoryNetwork` (the ``Transport`` protocol)."""

    def __init__(self, network: MemoryNetwork) -> None:
        self.network = network
        self.node = ""
        self._on_frame: FrameHandler = ignore_frame
        self._on_peer_up: PeerHandler = ignore_peer
        self._on_peer_down: PeerHandler = ignore_peer
        self._inbox: tuple[
            MemoryObjectSendStream[tuple[str, int, bytes]], MemoryObjectReceiveStream[tuple[str, int, bytes]]
        ]
        self._task_group: TaskGroup | None = None
        self._connected: set[str] = set()
        self._room = anyio.Event()

    async def start(
        self, node: str, on_frame: FrameHandler, on_peer_up: PeerHandler, on_peer_down: PeerHandler
    ) -> None:
        existing = self.network._endpoints.get(node)
        if existing is not None and existing._gone():
            self.network._leave(existing)  # a crashed incarnation that never left: the restart takes its place
        if node in self.network._endpoints:
            raise ValueError(f"a node named {node!r} is already on this network")
        self.node = node
        self._on_frame, self._on_peer_up, self._on_peer_down = on_frame, on_peer_up, on_peer_down
        self._inbox = anyio.create_memory_object_stream[tuple[str, int, bytes]](self.network.buffer_frames)
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._deliver)
        self.network._endpoints[node] = self

    async def _deliver(self) -> None:
        # Every frame already waiting is delivered in one turn, as a socket read hands over all the bytes that
        # came: the receivers see their messages together (and can batch their work), not one per turn.
        async with self._inbox[1] as inbox:
            async for item in inbox:
                while True:
                    self._deliver_one(*item)
                    try:
                        item = inbox.receive_nowait()
                    except anyio.WouldBlock:
                        break
                    except anyio.EndOfStream:  # the inbox was closed (the node is stopping) while frames were handed
                        self._room.set()
                        return
                self._room.set()

    def _deliver_one(self, peer: str, epoch: int, frame: bytes) -> None:
        if epoch == _CONNECT_FAILED:
            self._on_peer_down(peer)
        elif epoch == self.network.epoch(self.node, peer):
            self._on_frame(peer, frame)

    def _connect(self, other: MemoryTransport) -> None:
        if other.node not in self._connected:
            self._connected.add(other.node)
            other._connected.add(self.node)
            self._on_peer_up(other.node)
            other._on_peer_up(self.node)

    def send(self, peer: str, frame: bytes) -> bool:
        # Like Erlang's send, this never raises for the peer's sake: a peer that is gone,
        # or going (its system cancelled before it could leave), loses the frame.
        other = self.network._endpoints.get(peer)
        if other is not None and other._gone():
            self.network._leave(other)
            other = None
        if other is None:
            # nobody there: the frame is lost and the connect fails, so calls waiting
            # on that node fail with "noconnection" at once instead of timing out
            with contextlib.suppress(anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._inbox[0].send_nowait((peer, _CONNECT_FAILED, b""))
            return True
        self._connect(other)
        try:
            other._inbox[0].send_nowait((self.node, self.network.epoch(self.node, peer), frame))
        except anyio.WouldBlock:
            return False
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.network._leave(other)  # it stopped reading between the check and the send: it is gone
        return True

    def _gone(self) -> bool:
        """Whether this endpoint no longer reads its inbox: its node's task was cancelled or it stopped."""
        return self._inbox[0].statistics().open_receive_streams == 0

    async def drain(self, peer: str) -> None:
        other = self.network._endpoints.get(peer)
        while other is not None and other._inbox[0].statistics().current_buffer_used >= self.network.buffer_frames:
            other._room = anyio.Event()
            await other._room.wait()

    def disconnect(self, peer: str) -> None:
        self.network.disconnect(self.node, peer)

    async def stop(self) -> None:
        self.network._leave(self)
        self._inbox[0].close()
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()
            await self._task_group.__aexit__(None, None, None)
            self._task_group = None
