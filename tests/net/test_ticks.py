"""Liveness: connected nodes tick each other, and a silent peer is declared down within ``tick_time``.

The memory-network tests run on virtual time; the TCP ones on real sockets
on 127.0.0.1 with a small ``tick_time``, each wait bounded.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream, TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

import genstatem as gs
from genstatem.net import DEFAULT_TICK_TIME, MemoryNetwork, MemoryTransport, Node, TcpNetwork, TcpOptions

pytestmark = pytest.mark.anyio

SECRET = b"tick tock"
TCP_TICK = 0.5  # small, so that real sockets notice silence quickly
SLACK = 2.0  # seconds a loaded machine may add to a detection on real time


class Watcher(gs.GenStateMachine):
    """Monitors what it is told to, and forwards every Info event to its stream."""

    async def init(self, arg: Any) -> gs.Init:
        self.out: MemoryObjectSendStream[Any] = arg
        return gs.Init("up", None)

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Call(caller), ("monitor", ref):
                return gs.KeepState(actions=gs.Reply(caller, self.monitor(ref)))
            case gs.Call(caller), "hang":
                return None
            case gs.Call(caller), request:
                return gs.KeepState(actions=gs.Reply(caller, request))
            case gs.Cast(), _:
                return None
            case gs.Info(), message:
                self.out.send_nowait(message)
        return None


class SilenceableNetwork(MemoryNetwork):
    """A memory network whose node pairs can be silenced: frames dropped, connections kept, nobody told.

    It also counts the ticks each node sends to each other one.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.silenced: set[tuple[str, str]] = set()
        self.ticks: dict[tuple[str, str], int] = {}
        self.nodes: dict[str, Node] = {}

    def silence(self, a: str, b: str) -> None:
        self.silenced |= {(a, b), (b, a)}

    async def attach(self, system: gs.ActorSystem) -> Node:
        node = await Node.join(system, SilenceableTransport(self), tick_time=self.tick_time)
        self.nodes[system.node] = node
        return node


class SilenceableTransport(MemoryTransport):
    """A memory transport that loses what its network has silenced, and counts ticks."""

    network: SilenceableNetwork

    def send(self, peer: str, frame: bytes) -> bool:
        node = self.network.nodes.get(self.node)
        if node is not None and type(node.codec.decode(frame)).__name__ == "TickMsg":
            link = (self.node, peer)
            self.network.ticks[link] = self.network.ticks.get(link, 0) + 1
        if (self.node, peer) in self.network.silenced:
            return True
        return super().send(peer, frame)


@asynccontextmanager
async def two_nodes(network: MemoryNetwork) -> AsyncIterator[tuple[gs.ActorSystem, gs.ActorSystem]]:
    async with gs.ActorSystem(node="a", network=network) as a, gs.ActorSystem(node="b", network=network) as b:
        yield a, b


@asynccontextmanager
async def watcher(system: gs.ActorSystem) -> AsyncIterator[tuple[gs.ActorRef, MemoryObjectReceiveStream[Any]]]:
    send, receive = anyio.create_memory_object_stream[Any](100)
    with send, receive:
        yield await system.start(Watcher, send), receive


class TestOnVirtualTime:
    """The memory network on virtual time: every bound exact."""

    @pytest.fixture
    def anyio_backend(self, virtual_anyio_backend: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        return virtual_anyio_backend

    async def test_a_silent_peer_is_declared_down_within_the_tick_time(self) -> None:
        """A pair silenced both ways fires noconnection on monitors, calls and wait_exit within tick_time."""
        network = SilenceableNetwork()
        async with two_nodes(network) as (a, b), watcher(a) as (watching, downs):
            await b.start(Watcher, None, name="target")
            target = a.remote("b", "target")
            assert await target.call("hello") == "hello"
            monitor = await watching.call(("monitor", target))
            silenced_at = a.now()
            network.silence("a", "b")
            results: dict[str, Any] = {}

            async def call_forever() -> None:
                try:
                    await target.call("hang", timeout=None)
                except gs.ActorExited as exc:
                    results["call"] = (exc.reason, a.now())

            async def wait_exit() -> None:
                results["wait_exit"] = (await target.wait_exit(), a.now())

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(call_forever)
                tasks.start_soon(wait_exit)
                down = await downs.receive()
                results["monitor"] = (down.reason, a.now())
            assert down == gs.Down(monitor, target, "noconnection")
            for what, (reason, at) in results.items():
                assert reason == "noconnection", what
                # the last frame heard came at most half a tick time before the silence
                assert silenced_at + DEFAULT_TICK_TIME / 4 <= at <= silenced_at + DEFAULT_TICK_TIME, what

    async def test_a_busy_or_idle_healthy_connection_is_never_declared_down(self) -> None:
        """Casts one way only, then nothing at all, for many tick times: the monitor never fires."""
        network = SilenceableNetwork()
        async with two_nodes(network) as (a, b), watcher(a) as (watching, downs):
            target = await b.start(Watcher, None, name="target")
            remote = a.remote("b", "target")
            await watching.call(("monitor", remote))
            for _ in range(int(10 * DEFAULT_TICK_TIME)):
                remote.cast("work")
                await anyio.sleep(1)
            await anyio.sleep(10 * DEFAULT_TICK_TIME)
            assert await remote.call("still there") == "still there"
            assert target.alive
            with pytest.raises(anyio.WouldBlock):
                downs.receive_nowait()

    async def test_ticks_go_only_to_quiet_peers_at_most_one_per_check(self) -> None:
        """An idle pair ticks once per quarter tick time each way; a peer sent to all along gets none."""
        network = SilenceableNetwork()
        async with two_nodes(network) as (a, _):
            remote = a.remote("b", "nobody")
            remote.cast("connect")
            start = a.now()
            for _ in range(int(5 * DEFAULT_TICK_TIME)):
                remote.cast("work")
                await anyio.sleep(1)
            busy = dict(network.ticks)
            checks = (a.now() - start) / (DEFAULT_TICK_TIME / 4)
            assert busy.get(("a", "b"), 0) == 0
            assert checks - 1 <= busy[("b", "a")] <= checks + 1
            network.ticks.clear()
            await anyio.sleep(10 * DEFAULT_TICK_TIME)
            assert network.ticks.keys() == {("a", "b"), ("b", "a")}
            assert all(39 <= ticks <= 41 for ticks in network.ticks.values())  # 40 checks, give or take the edges

    async def test_tick_time_none_turns_liveness_off(self) -> None:
        """With tick_time=None nothing is ticked and a silent peer stays connected."""
        network = SilenceableNetwork(tick_time=None)
        async with two_nodes(network) as (a, b), watcher(a) as (watching, downs):
            await b.start(Watcher, None, name="target")
            await watching.call(("monitor", a.remote("b", "target")))
            network.silence("a", "b")
            await anyio.sleep(100 * DEFAULT_TICK_TIME)
            assert network.ticks == {}
            with pytest.raises(anyio.WouldBlock):
                downs.receive_nowait()


def test_tick_time_is_checked() -> None:
    """tick_time is a positive number of seconds, or None."""
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="tick_time"):
            MemoryNetwork(tick_time=bad)
        with pytest.raises(ValueError, match="tick_time"):
            TcpOptions(secret=SECRET, tick_time=bad)
    assert TcpOptions(secret=SECRET).tick_time == DEFAULT_TICK_TIME == MemoryNetwork().tick_time
    assert TcpOptions(secret=SECRET, tick_time=None).tick_time is None


class Relay:
    """A TCP relay that forwards both ways until ``stop_forwarding``; then it reads and discards, sockets open."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.forwarding = True
        self.port = 0

    async def serve(self, tasks: TaskGroup, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(SocketAttribute.local_port)
        task_status.started()

        async def handle(incoming: SocketStream) -> None:
            outgoing = await anyio.connect_tcp(*self.target)
            async with incoming, outgoing, anyio.create_task_group() as pumps:
                pumps.start_soon(self.pump, incoming, outgoing)
                pumps.start_soon(self.pump, outgoing, incoming)

        async with listener:
            await listener.serve(handle, tasks)

    async def pump(self, source: SocketStream, sink: SocketStream) -> None:
        async for chunk in source:
            if self.forwarding:
                await sink.send(chunk)


async def test_a_relay_that_stops_forwarding_is_noticed_over_tcp() -> None:
    """Through a relay that goes silent with both sockets open: monitor, call and wait_exit end with noconnection."""
    b_network = TcpNetwork(secret=SECRET, tick_time=TCP_TICK)
    async with gs.ActorSystem(node="b", network=b_network) as b, anyio.create_task_group() as tasks:
        relay = Relay(("127.0.0.1", b_network.transport.port))
        await tasks.start(relay.serve, tasks)
        a_network = TcpNetwork(secret=SECRET, tick_time=TCP_TICK, peers={"b": ("127.0.0.1", relay.port)})
        async with gs.ActorSystem(node="a", network=a_network) as a, watcher(a) as (watching, downs):
            await b.start(Watcher, None, name="target")
            target = a.remote("b", "target")
            assert await target.call("hello") == "hello"
            monitor = await watching.call(("monitor", target))
            await anyio.sleep(3 * TCP_TICK)  # ticks keep a quiet but healthy connection up
            assert await target.call("still there") == "still there"
            results: dict[str, Any] = {}

            async def call_forever() -> None:
                try:
                    await target.call("hang", timeout=None)
                except gs.ActorExited as exc:
                    results["call"] = exc.reason

            async def wait_exit() -> None:
                results["wait_exit"] = await target.wait_exit()

            relay.forwarding = False
            silenced_at = anyio.current_time()
            with anyio.fail_after(TCP_TICK + SLACK):
                async with anyio.create_task_group() as waits:
                    waits.start_soon(call_forever)
                    waits.start_soon(wait_exit)
                    results["monitor"] = await downs.receive()
            assert anyio.current_time() - silenced_at <= TCP_TICK + SLACK
            assert results == {
                "call": "noconnection",
                "wait_exit": "noconnection",
                "monitor": gs.Down(monitor, target, "noconnection"),
            }
        tasks.cancel_scope.cancel()


async def test_tcp_connections_have_keepalive_on() -> None:
    """Both the dialled and the accepted socket of a node connection have SO_KEEPALIVE set."""
    b_network = TcpNetwork(secret=SECRET)
    async with gs.ActorSystem(node="b", network=b_network) as b:
        await b.start(Watcher, None, name="target")
        a_network = TcpNetwork(secret=SECRET, peers={"b": ("127.0.0.1", b_network.transport.port)})
        async with gs.ActorSystem(node="a", network=a_network) as a:
            assert await a.remote("b", "target").call("hello") == "hello"
            for transport in (a_network.transport, b_network.transport):
                (peer,) = transport._peers.values()
                assert peer.connection is not None
                sock = peer.connection.stream.extra(SocketAttribute.raw_socket)
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
