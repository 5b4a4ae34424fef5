"""The TCP transport: authenticated, ordered, bounded, and robust to bad peers.

Every test runs on real sockets on 127.0.0.1 and real time, on asyncio and
trio; waits are on events, each bounded by ``anyio.fail_after``.
"""

from __future__ import annotations

import contextlib
import secrets
import ssl
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from structlog.testing import capture_logs
from structlog.typing import EventDict

from genstatem.net import (
    FRAME_MAGIC,
    FRAME_VERSION,
    FrameError,
    TcpOptions,
    TcpStatistics,
    TcpTransport,
    _handshake,
    encode_frame,
)
from genstatem.net._frames import FRAME_HEADER_SIZE, FrameDecoder
from genstatem.net._handshake import HANDSHAKE_VERSION, INCARNATION_SIZE, REPLAYED, Identity

pytestmark = pytest.mark.anyio

SECRET = b"correct horse battery staple"
LOOPBACK = "127.0.0.1"
WAIT = 10.0  # seconds any one expected thing may take
NODE_SCRIPT = Path(__file__).with_name("tcp_node_process.py")
FAST = {"reconnect_initial_delay": 0.02, "reconnect_max_delay": 0.2}


class Signal:
    """Wakes whoever waits for a condition each time something may have changed it."""

    def __init__(self) -> None:
        self._changed = anyio.Event()

    def notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_until(self, condition: Callable[[], bool], timeout: float = WAIT) -> None:
        with anyio.fail_after(timeout):
            while not condition():
                await self._changed.wait()


class Recorder:
    """What a transport handed to its node: frames per peer, and peer ups and downs in order."""

    def __init__(self) -> None:
        self.frames: dict[str, list[bytes]] = defaultdict(list)
        self.events: list[tuple[str, str]] = []
        self.signal = Signal()

    def on_frame(self, peer: str, frame: bytes) -> None:
        self.frames[peer].append(frame)
        self.signal.notify()

    def on_peer_up(self, peer: str) -> None:
        self.events.append(("up", peer))
        self.signal.notify()

    def on_peer_down(self, peer: str) -> None:
        self.events.append(("down", peer))
        self.signal.notify()

    def count(self, kind: str, peer: str) -> int:
        return self.events.count((kind, peer))

    async def wait_frames(self, peer: str, count: int) -> list[bytes]:
        await self.signal.wait_until(lambda: len(self.frames[peer]) >= count)
        return self.frames[peer]

    async def wait_event(self, kind: str, peer: str, count: int = 1) -> None:
        await self.signal.wait_until(lambda: self.count(kind, peer) >= count)


@attrs.define
class Node:
    """A started transport and what it delivered."""

    name: str
    transport: TcpTransport
    seen: Recorder

    def send(self, peer: str, frame: bytes) -> bool:
        return self.transport.send(peer, frame)

    def stats(self) -> TcpStatistics:
        return self.transport.statistics()


class Cluster:
    """Nodes on 127.0.0.1 that find each other through one shared address book."""

    def __init__(self, stack: AsyncExitStack) -> None:
        self.stack = stack
        self.addresses: dict[str, tuple[str, int]] = {}

    async def start(self, name: str, **options: Any) -> Node:
        options.setdefault("secret", SECRET)
        options.setdefault("peers", self.addresses)
        for key, value in FAST.items():
            options.setdefault(key, value)
        transport = TcpTransport(LOOPBACK, options.pop("port", 0), **options)
        seen = Recorder()
        await transport.start(name, seen.on_frame, seen.on_peer_up, seen.on_peer_down)
        self.stack.push_async_callback(transport.stop)
        self.addresses[name] = transport.address
        return Node(name, transport, seen)


@asynccontextmanager
async def cluster() -> AsyncIterator[Cluster]:
    async with AsyncExitStack() as stack:
        yield Cluster(stack)


@contextmanager
def watched_logs() -> Iterator[tuple[list[EventDict], Signal]]:
    """``capture_logs``, with a signal raised at each entry so a test can wait for one."""
    signal = Signal()

    def notify(logger: Any, method: str, event_dict: EventDict) -> EventDict:
        signal.notify()
        return event_dict

    with capture_logs(processors=[notify]) as logs:
        yield logs, signal


def entries(logs: list[EventDict], event: str, **fields: Any) -> list[EventDict]:
    return [entry for entry in logs if entry["event"] == event and all(entry.get(k) == v for k, v in fields.items())]


async def wait_log(logs: list[EventDict], signal: Signal, event: str, **fields: Any) -> EventDict:
    await signal.wait_until(lambda: bool(entries(logs, event, **fields)))
    return entries(logs, event, **fields)[0]


async def read_until_closed(stream: anyio.abc.ByteStream) -> None:
    """Read and discard until the other end closes the connection."""
    with anyio.fail_after(WAIT):
        while True:
            try:
                await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return


async def test_frames_arrive_in_order_both_ways() -> None:
    """Between each pair of three nodes, every frame arrives, in the order sent, in both directions."""
    async with cluster() as net:
        nodes = [await net.start(name) for name in ("a", "b", "c")]
        for sender in nodes:
            for receiver in nodes:
                if receiver is not sender:
                    for i in range(300):
                        assert sender.send(receiver.name, f"{sender.name}->{receiver.name} {i}".encode())
        for receiver in nodes:
            for sender in nodes:
                if receiver is not sender:
                    frames = await receiver.seen.wait_frames(sender.name, 300)
                    assert frames == [f"{sender.name}->{receiver.name} {i}".encode() for i in range(300)]
        for node in nodes:
            stats = node.stats()
            assert (stats.frames_sent, stats.frames_received, stats.frames_dropped) == (600, 600, 0)
            assert stats.connected_peers == 2


async def test_first_send_connects_lazily() -> None:
    """No connection exists until the first send, which connects and fires on_peer_up once on each side."""
    async with cluster() as net:
        a, b = await net.start("a"), await net.start("b")
        assert a.stats().connected_peers == b.stats().connected_peers == 0
        assert a.send("b", b"hello")
        assert await b.seen.wait_frames("a", 1) == [b"hello"]
        await a.seen.wait_event("up", "b")
        assert b.send("a", b"hi")
        assert await a.seen.wait_frames("b", 1) == [b"hi"]
        assert a.seen.events == [("up", "b")]
        assert b.seen.events == [("up", "a")]
        assert a.stats().connections_established == b.stats().connections_established == 1


async def test_simultaneous_connects_leave_one_connection() -> None:
    """Two nodes dialling each other at once end with one connection and lose no frame."""
    for round_ in range(5):
        async with cluster() as net:
            a, b = await net.start(f"a{round_}"), await net.start(f"b{round_}")
            for i in range(20):
                assert a.send(b.name, b"%d" % i)
                assert b.send(a.name, b"%d" % i)
            assert await b.seen.wait_frames(a.name, 20) == [b"%d" % i for i in range(20)]
            assert await a.seen.wait_frames(b.name, 20) == [b"%d" % i for i in range(20)]
            assert a.seen.events == [("up", b.name)]
            assert b.seen.events == [("up", a.name)]
            assert a.stats().handshake_failures == b.stats().handshake_failures == 0


async def test_wrong_secret_is_refused_and_logged() -> None:
    """A node with another secret is refused on both sides with a logged reason; the listener serves others."""
    with watched_logs() as (logs, signal):
        async with cluster() as net:
            b = await net.start("b")
            intruder = await net.start("intruder", secret=b"not the secret")
            assert intruder.send("b", b"let me in")
            refused = await wait_log(logs, signal, "tcp handshake failed", node="b")
            assert refused["log_level"] == "warning"
            assert refused["peer"] == "intruder"
            assert "bad secret" in refused["reason"]
            failed = await wait_log(logs, signal, "tcp handshake failed", node="intruder")
            assert "bad secret" in failed["reason"]
            assert SECRET.hex() not in repr(logs)

            c = await net.start("c")
            assert c.send("b", b"friend")
            assert await b.seen.wait_frames("c", 1) == [b"friend"]
            assert b.seen.events == [("up", "c")]
            assert intruder.seen.events == []
            assert "intruder" not in b.seen.frames
            assert b.stats().handshake_failures >= 1


async def test_wrong_expected_node_is_refused_and_logged() -> None:
    """Dialling an address where another node listens is refused as the wrong node, and logged."""
    with watched_logs() as (logs, signal):
        async with cluster() as net:
            c = await net.start("c")
            a = await net.start("a", peers={"b": c.transport.address, "c": c.transport.address})
            assert a.send("b", b"for b")
            refused = await wait_log(logs, signal, "tcp handshake failed", node="c")
            assert "wrong node" in refused["reason"]
            assert "'b'" in refused["reason"]
            failed = await wait_log(logs, signal, "tcp handshake failed", node="a", peer="b")
            assert "wrong node" in failed["reason"]
            assert a.send("c", b"for c")
            assert await c.seen.wait_frames("a", 1) == [b"for c"]
            assert c.seen.events == [("up", "a")]


def silence() -> bytes:
    return b""


def hello_to(node: str, secret: bytes = b"not the secret") -> Callable[[], bytes]:
    """A fresh, well-formed HELLO to ``node``, each time with a new nonce, MACed with ``secret`` (not the network's)."""
    return lambda: _handshake._hello(
        Identity("mallory", secret, secrets.token_bytes(INCARNATION_SIZE)),
        node,
        secrets.token_bytes(32),
        _handshake._now_ms(),
    )


def replayed_hello_to(node: str) -> Callable[[], bytes]:
    """The same HELLO to ``node`` each time, as a real node sent it once (made at the first call, so it is fresh)."""
    captured: list[bytes] = []

    def replay() -> bytes:
        if not captured:
            captured.append(hello_to(node, SECRET)())
        return captured[0]

    return replay


def v2_hello_to(node: str) -> bytes:
    """A HELLO as a node speaking handshake version 2 sent it: names, nonce and incarnation, no time, no MAC."""
    fields = (b"old", node.encode(), secrets.token_bytes(32), secrets.token_bytes(INCARNATION_SIZE))
    return encode_frame(b"GSH" + bytes((2, 1)) + b"".join(len(field).to_bytes(2, "big") + field for field in fields))


def v3_hello_to(node: str) -> bytes:
    """A HELLO as a node speaking handshake version 3 sent it: no word on TLS."""
    fields = (b"old", node.encode(), secrets.token_bytes(32), secrets.token_bytes(INCARNATION_SIZE))
    fields += (_handshake._now_ms().to_bytes(8, "big"), secrets.token_bytes(32))
    return encode_frame(b"GSH" + bytes((3, 1)) + b"".join(len(field).to_bytes(2, "big") + field for field in fields))


def tls_client_hello() -> bytes:
    """The first flight of a TLS client to 127.0.0.1: its ClientHello."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).wrap_bio(incoming, outgoing, server_hostname=LOOPBACK)
    with contextlib.suppress(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", "bad magic", id="garbage"),
        pytest.param(FRAME_MAGIC + bytes([99]) + bytes(4), "unsupported version 99", id="bad-version"),
        pytest.param(FRAME_MAGIC + bytes([FRAME_VERSION]) + (2**31).to_bytes(4, "big"), "exceeds", id="oversized"),
        pytest.param(encode_frame(b"not a handshake"), "not a handshake message", id="not-handshake"),
        pytest.param(encode_frame(b"GSH\x07\x01"), "unsupported handshake version 7", id="handshake-version"),
        pytest.param(v2_hello_to("b"), "unsupported handshake version 2 (this node speaks 4)", id="v2-hello"),
        pytest.param(v3_hello_to("b"), "unsupported handshake version 3 (this node speaks 4)", id="v3-hello"),
        pytest.param(tls_client_hello(), "bad magic", id="tls-before-the-hello"),
        pytest.param(hello_to("b")(), "bad secret", id="hello-without-the-secret"),
        pytest.param(
            _handshake._hello(Identity("a", SECRET, bytes(INCARNATION_SIZE)), "b", bytes(32), 0),
            "clock skew",
            id="hello-from-1970",
        ),
    ],
)
async def test_bad_bytes_from_a_raw_socket_are_disconnected(data: bytes, reason: str) -> None:
    """A connection that sends bytes no node would send is closed with a logged reason; the listener goes on."""
    with watched_logs() as (logs, signal):
        async with cluster() as net:
            b = await net.start("b")
            raw = await anyio.connect_tcp(LOOPBACK, b.transport.port)
            async with raw:
                await raw.send(data)
                await read_until_closed(raw)
            failed = await wait_log(logs, signal, "tcp handshake failed", node="b")
            assert reason in failed["reason"]
            assert b.stats().handshake_failures == 1

            a = await net.start("a")
            assert a.send("b", b"still serving")
            assert await b.seen.wait_frames("a", 1) == [b"still serving"]


async def test_bad_frame_on_a_connection_closes_only_that_connection() -> None:
    """An oversized frame from an authenticated peer closes that connection, logged; other connections go on."""
    with watched_logs() as (logs, signal):
        async with cluster() as net:
            b = await net.start("b", max_frame_size=1024)
            a, c = await net.start("a"), await net.start("c")
            assert c.send("b", b"before")
            assert a.send("b", b"small")
            assert await b.seen.wait_frames("a", 1) == [b"small"]
            assert a.send("b", bytes(2000))
            lost = await wait_log(logs, signal, "tcp connection lost", node="b", peer="a")
            assert lost["log_level"] == "warning"
            assert "exceeds 1024" in lost["reason"]
            await a.seen.wait_event("down", "b")
            await b.seen.wait_event("down", "a")
            assert c.send("b", b"after")
            assert await b.seen.wait_frames("c", 2) == [b"before", b"after"]
            assert b.seen.count("down", "c") == 0


async def test_unauthenticated_connections_are_bounded_and_time_out() -> None:
    """Connections beyond max_handshakes are closed at once, silent ones time out, and real nodes still get in."""
    with watched_logs() as (logs, signal):
        async with cluster() as net, AsyncExitStack() as sockets:
            b = await net.start("b", max_handshakes=2, handshake_timeout=1.0)
            raws = [
                await sockets.enter_async_context(await anyio.connect_tcp(LOOPBACK, b.transport.port)) for _ in range(5)
            ]
            async with anyio.create_task_group() as task_group:
                for raw in raws:
                    task_group.start_soon(read_until_closed, raw)
            await signal.wait_until(lambda: len(entries(logs, "tcp handshake failed", node="b")) == 2)
            assert b.stats().connections_refused == 3
            assert b.stats().handshake_failures == 2
            assert {entry["reason"] for entry in entries(logs, "tcp handshake failed")} == {"handshake timed out"}

            a = await net.start("a")
            assert a.send("b", b"welcome")
            assert await b.seen.wait_frames("a", 1) == [b"welcome"]


async def hold_a_slot(
    port: int, source: str, stop: anyio.Event, streams: set[anyio.abc.ByteStream], greeting: Callable[[], bytes]
) -> None:
    """Keep one connection from ``source`` open to ``port``, dialling again each time it is closed.

    Each connection sends ``greeting()`` (nothing, part of a HELLO, or a valid one) and then stalls.
    """
    while not stop.is_set():
        try:
            stream = await anyio.connect_tcp(LOOPBACK, port, local_host=source)
        except OSError:
            await anyio.sleep(0.01)
            continue
        streams.add(stream)
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            if data := greeting():
                await stream.send(data)
            while not stop.is_set():
                await stream.receive()
        streams.discard(stream)
        await anyio.aclose_forcefully(stream)
        await anyio.sleep(0.005)


@asynccontextmanager
async def flooding(
    target: Node, sources: list[str], per_source: int, greeting: Callable[[], bytes] = silence
) -> AsyncIterator[None]:
    """Stalled connections from each of ``sources``, redialled as soon as closed, for the ``with`` block.

    The block starts once ``target`` has turned away (refused, evicted or
    failed the handshake of) at least one per source: the flood holds every
    slot it can.
    """
    stop = anyio.Event()
    streams: set[anyio.abc.ByteStream] = set()
    async with anyio.create_task_group() as task_group:
        for source in sources:
            for _ in range(per_source):
                task_group.start_soon(hold_a_slot, target.transport.port, source, stop, streams, greeting)
        with anyio.fail_after(WAIT):
            for _ in range(1000):
                stats = target.stats()
                if stats.connections_refused + stats.handshakes_evicted + stats.handshake_failures >= len(sources):
                    break
                await anyio.sleep(0.01)
        try:
            yield
        finally:
            stop.set()
            for stream in list(streams):
                await anyio.aclose_forcefully(stream)


async def test_one_flooding_address_cannot_lock_a_new_node_out() -> None:
    """A host redialling every socket it is refused holds at most max_handshakes_per_address slots."""
    async with cluster() as net:
        b = await net.start("b", peers={}, max_handshakes=8, max_handshakes_per_address=4, handshake_timeout=3.0)
        async with flooding(b, ["127.0.0.2"], per_source=20):
            c = await net.start("c")
            assert c.send("b", b"let me in")
            with anyio.fail_after(1.5):  # half the handshake timeout: no slot had to expire
                assert await b.seen.wait_frames("c", 1) == [b"let me in"]


async def test_a_flood_from_many_addresses_cannot_starve_a_known_node() -> None:
    """Hosts listed in peers have handshake slots of their own, which unknown hosts never take."""
    async with cluster() as net:
        b = await net.start("b", max_handshakes=8, max_handshakes_per_address=4, handshake_timeout=3.0)
        sources = [f"127.0.0.{last}" for last in range(2, 22)]
        async with flooding(b, sources, per_source=1):
            c = await net.start("c")
            assert c.send("b", b"let me in")
            with anyio.fail_after(1.5):
                assert await b.seen.wait_frames("c", 1) == [b"let me in"]


@pytest.mark.parametrize(
    "greeting",
    [silence, lambda: hello_to("b")()[:20], hello_to("b"), replayed_hello_to("b")],
    ids=["silent", "part-of-a-hello", "hello-without-the-secret", "replayed-hello"],
)
async def test_a_flood_from_many_addresses_cannot_lock_a_new_node_out(greeting: Callable[[], bytes]) -> None:
    """A node from an unknown host gets in at once while stalled connections from many hosts fill every slot."""
    async with cluster() as net:
        b = await net.start("b", peers={}, max_handshakes=8, max_handshakes_per_address=4, handshake_timeout=3.0)
        sources = [f"127.0.0.{last}" for last in range(2, 22)]
        async with flooding(b, sources, per_source=1, greeting=greeting):
            c = await net.start("c")
            assert c.send("b", b"let me in")
            with anyio.fail_after(1.5):  # half the handshake timeout: no slot had to expire
                assert await b.seen.wait_frames("c", 1) == [b"let me in"]
        assert b.stats().handshakes_evicted + b.stats().handshake_failures >= len(sources)


@asynccontextmanager
async def slow_answers(target: Node, delay: float) -> AsyncIterator[int]:
    """A proxy to ``target`` that passes the dialler's bytes at once and the listener's ``delay`` later; its port.

    It dials ``target`` only once the dialler's first bytes (its HELLO) are
    in, so they reach ``target`` right after the connect, as a dialler's do.
    """

    async def pump(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream, lag: float) -> None:
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            while True:
                data = await source.receive()
                await anyio.sleep(lag)
                await sink.send(data)
        await anyio.aclose_forcefully(sink)

    async def relay(client: anyio.abc.SocketStream) -> None:
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            first = await client.receive()
            server = await anyio.connect_tcp(*target.transport.address)
            await server.send(first)
            async with client, server, anyio.create_task_group() as task_group:
                task_group.start_soon(pump, client, server, 0.0)
                task_group.start_soon(pump, server, client, delay)

    listener = await anyio.create_tcp_listener(local_host=LOOPBACK)
    async with listener, anyio.create_task_group() as proxies:
        proxies.start_soon(listener.serve, relay)
        yield listener.extra(anyio.abc.SocketAttribute.local_port)
        proxies.cancel_scope.cancel()


async def test_a_fast_flood_of_hellos_without_the_secret_cannot_lock_out_a_node_with_a_long_round_trip() -> None:
    """HELLOs from many hosts, redialled as fast as refused, never close a node waiting 0.3 s for each answer.

    With a HELLO anyone could make, a flood that got max_handshakes HELLOs
    through during the node's round trip closed it, again at each redial.
    """
    async with cluster() as net:
        b = await net.start("b", peers={}, max_handshakes=8, max_handshakes_per_address=4, handshake_timeout=3.0)
        sources = [f"127.0.0.{last}" for last in range(2, 22)]
        async with slow_answers(b, delay=0.3) as port, flooding(b, sources, per_source=4, greeting=hello_to("b")):
            c = await net.start("c", peers={"b": (LOOPBACK, port)})
            failures_before = b.stats().handshake_failures
            assert c.send("b", b"let me in")
            with anyio.fail_after(2.0):  # two round trips of 0.6 s, and margin; under the handshake timeout
                assert await b.seen.wait_frames("c", 1) == [b"let me in"]
            assert b.stats().handshake_failures > failures_before + 8  # the flood went on meanwhile
        assert c.stats().handshake_failures == 0


@pytest.mark.parametrize("greeting", [silence, tls_client_hello], ids=["silent", "stalled-tls-client-hello"])
async def test_a_flood_cannot_lock_out_a_tls_node_with_a_long_round_trip(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext], greeting: Callable[[], bytes]
) -> None:
    """Over TLS, stalled connections from many hosts never close a node waiting 0.3 s for each answer.

    When TLS ran before the HELLO, the node sat among the connections
    without a valid HELLO for its TLS round trips, and a flood, which needs
    no secret to be accepted, closed it there, again at each redial.
    """
    server, client = tls_contexts
    tls = {"server_ssl_context": server, "client_ssl_context": client}
    async with cluster() as net:
        b = await net.start("b", peers={}, max_handshakes=8, max_handshakes_per_address=4, handshake_timeout=6.0, **tls)
        sources = [f"127.0.0.{last}" for last in range(2, 22)]
        async with slow_answers(b, delay=0.3) as port, flooding(b, sources, per_source=4, greeting=greeting):
            c = await net.start("c", peers={"b": (LOOPBACK, port)}, **tls)
            turned_away = b.stats().handshakes_evicted + b.stats().handshake_failures
            assert c.send("b", b"let me in")
            with anyio.fail_after(3.0):  # about 1.3 s (each answer 0.3 s late, in turn), and margin; half the timeout
                assert await b.seen.wait_frames("c", 1) == [b"let me in"]
            assert b.stats().handshakes_evicted + b.stats().handshake_failures > turned_away + 8  # the flood went on
        assert c.stats().handshake_failures == 0


async def exchange_with(target: Node, data: bytes) -> bytes:
    """Send ``data`` to ``target`` on a raw connection; the payload of the first frame it answers."""
    async with await anyio.connect_tcp(LOOPBACK, target.transport.port) as raw:
        await raw.send(data)
        decoder = FrameDecoder(max_frame_size=1024)
        with anyio.fail_after(WAIT):
            while not (frames := decoder.feed(await raw.receive())):
                pass
        return frames[0]


async def test_a_captured_hello_sent_again_is_refused_as_a_replay() -> None:
    """A real node's HELLO, recorded on the wire and sent again, is refused before any CHALLENGE, and logged."""
    sent: list[bytes] = []

    async def pump(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream, record: bool) -> None:
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            while True:
                data = await source.receive()
                if record:
                    sent.append(data)
                await sink.send(data)
        await anyio.aclose_forcefully(sink)

    with watched_logs() as (logs, signal):
        async with cluster() as net:
            b = await net.start("b")

            async def relay(client: anyio.abc.SocketStream) -> None:
                server = await anyio.connect_tcp(*b.transport.address)
                async with client, server, anyio.create_task_group() as task_group:
                    task_group.start_soon(pump, client, server, True)
                    task_group.start_soon(pump, server, client, False)

            listener = await anyio.create_tcp_listener(local_host=LOOPBACK)
            async with listener, anyio.create_task_group() as proxies:
                proxies.start_soon(listener.serve, relay)
                port = listener.extra(anyio.abc.SocketAttribute.local_port)
                a = await net.start("a", peers={"b": (LOOPBACK, port)})
                assert a.send("b", b"ping")
                assert await b.seen.wait_frames("a", 1) == [b"ping"]
                proxies.cancel_scope.cancel()

            (hello, *_) = FrameDecoder(max_frame_size=1 << 20).feed(b"".join(sent))
            answer = await exchange_with(b, encode_frame(hello))
            assert answer.endswith(REPLAYED.encode())
            assert answer[4] == 5  # REFUSED, not a CHALLENGE: the replay never counted as a HELLO
            failed = await wait_log(logs, signal, "tcp handshake failed", node="b", reason=REPLAYED)
            assert failed["peer"] == "a"
            assert b.seen.count("up", "a") == 1  # the proxied connection only


async def test_a_node_whose_clock_is_off_is_refused_naming_clock_skew(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dialler whose clock is 10 minutes behind is refused; both sides name clock skew, the dialler backs off."""
    wall = _handshake._now_ms
    with watched_logs() as (logs, signal):
        async with cluster() as net:
            b = await net.start("b")
            a = await net.start("a")
            refusals: list[tuple[str, str]] = []

            def refused(peer: str, reason: str) -> None:
                refusals.append((peer, reason))
                signal.notify()

            a.transport.watch_refusals(refused)
            monkeypatch.setattr(_handshake, "_now_ms", lambda: wall() - 600_000)  # only diallers read it
            assert a.send("b", b"hello")
            failed = await wait_log(logs, signal, "tcp handshake failed", node="b")
            assert failed["reason"].startswith("clock skew: the HELLO's timestamp is more than 300 s behind")
            await signal.wait_until(lambda: bool(refusals))
            assert refusals == [("b", f"refused by the peer: {failed['reason']}")]
            assert b.seen.events == []


async def test_disconnect_fires_peer_down_on_both_sides_and_send_reconnects() -> None:
    """disconnect() takes the connection down on both sides once; the next send brings a new one up."""
    async with cluster() as net:
        a, b = await net.start("a"), await net.start("b")
        assert a.send("b", b"1")
        await b.seen.wait_frames("a", 1)
        a.transport.disconnect("b")
        assert a.seen.events == [("up", "b"), ("down", "b")]
        await b.seen.wait_event("down", "a")
        assert a.send("b", b"2")
        assert await b.seen.wait_frames("a", 2) == [b"1", b"2"]
        await a.seen.wait_event("up", "b", 2)
        assert a.seen.events == [("up", "b"), ("down", "b"), ("up", "b")]
        assert b.seen.events == [("up", "a"), ("down", "a"), ("up", "a")]


async def test_redialling_a_peer_that_dialled_us_after_disconnect() -> None:
    """After disconnecting a connection the peer dialled, sending again reconnects even before the peer noticed."""
    async with cluster() as net:
        a, b = await net.start("a"), await net.start("b")
        assert b.send("a", b"1")
        await a.seen.wait_frames("b", 1)
        a.transport.disconnect("b")
        assert a.send("b", b"2")
        assert await b.seen.wait_frames("a", 1) == [b"2"]
        await b.seen.wait_event("up", "a", 2)
        assert b.seen.events == [("up", "a"), ("down", "a"), ("up", "a")]


async def test_frame_handler_raising_closes_that_connection() -> None:
    """An exception from on_frame is logged and takes down that connection only; the node goes on."""
    with watched_logs() as (logs, signal):
        async with cluster() as net:
            a, b, c = await net.start("a"), await net.start("b"), await net.start("c")
            deliver = b.transport._on_frame

            def on_frame(peer: str, frame: bytes) -> None:
                if frame == b"boom":
                    raise RuntimeError("handler bug")
                deliver(peer, frame)

            b.transport._on_frame = on_frame
            assert a.send("b", b"boom")
            assert a.send("b", b"never delivered")
            entry = await wait_log(logs, signal, "tcp frame handler raised", node="b", peer="a")
            assert entry["log_level"] == "error"
            await b.seen.wait_event("down", "a")
            await a.seen.wait_event("down", "b")
            assert "a" not in b.seen.frames
            assert c.send("b", b"fine")
            assert await b.seen.wait_frames("c", 1) == [b"fine"]


@pytest.mark.parametrize("with_tls", [False, True], ids=["plain", "tls"])
async def test_the_secret_never_crosses_the_wire(
    with_tls: bool, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    """Through a recording proxy, nodes authenticate and exchange frames without the secret in any byte sent.

    With TLS, only the HELLO is in the clear: the frames are not.
    """
    server_context, client_context = tls_contexts
    tls = {"server_ssl_context": server_context, "client_ssl_context": client_context} if with_tls else {}
    recorded: list[bytes] = []

    async def pump(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream) -> None:
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            while True:
                data = await source.receive()
                recorded.append(data)
                await sink.send(data)
        await anyio.aclose_forcefully(sink)

    listener = await anyio.create_tcp_listener(local_host=LOOPBACK)
    async with cluster() as net, listener, anyio.create_task_group() as proxies:
        b = await net.start("b", **tls)

        async def relay(client: anyio.abc.SocketStream) -> None:
            server = await anyio.connect_tcp(*b.transport.address)
            async with client, server, anyio.create_task_group() as task_group:
                task_group.start_soon(pump, client, server)
                task_group.start_soon(pump, server, client)

        proxies.start_soon(listener.serve, relay)
        a = await net.start("a", peers={"b": (LOOPBACK, listener.extra(anyio.abc.SocketAttribute.local_port))}, **tls)
        assert a.send("b", b"ping")
        assert await b.seen.wait_frames("a", 1) == [b"ping"]
        assert b.send("a", b"pong")
        assert await a.seen.wait_frames("b", 1) == [b"pong"]
        wire = b"".join(recorded)
        assert SECRET not in wire
        assert (b"ping" in wire, b"pong" in wire) == (not with_tls, not with_tls)
        hello_size = FRAME_HEADER_SIZE + int.from_bytes(wire[FRAME_HEADER_SIZE - 4 : FRAME_HEADER_SIZE], "big")
        assert wire[FRAME_HEADER_SIZE : FRAME_HEADER_SIZE + 3] == b"GSH"  # the HELLO, first and in the clear
        after_hello = wire[hello_size : hello_size + 2]
        assert after_hello == (b"\x16\x03" if with_tls else FRAME_MAGIC)  # a TLS handshake record, or the CHALLENGE
        proxies.cancel_scope.cancel()


async def test_silent_listener_times_out_the_dialler() -> None:
    """A dial to a socket that never answers the handshake gives up after handshake_timeout and tries again."""
    with watched_logs() as (logs, signal):
        async with cluster() as net, await anyio.create_tcp_listener(local_host=LOOPBACK) as silent:
            async with anyio.create_task_group() as task_group:

                async def hold(stream: anyio.abc.SocketStream) -> None:
                    async with stream:
                        await anyio.sleep_forever()

                task_group.start_soon(silent.serve, hold)
                port = silent.extra(anyio.abc.SocketAttribute.local_port)
                a = await net.start("a", peers={"mute": (LOOPBACK, port)}, handshake_timeout=0.2)
                assert a.send("mute", b"hello?")
                await signal.wait_until(
                    lambda: len(entries(logs, "tcp handshake failed", node="a", reason="handshake timed out")) >= 2
                )
                task_group.cancel_scope.cancel()
            assert a.seen.events == []
            assert a.stats().buffered_frames == 1


async def test_peer_stopping_fires_peer_down_once() -> None:
    """When a peer stops, on_peer_down fires once on each side, and the survivor keeps running."""
    async with cluster() as net:
        a, b, c = await net.start("a"), await net.start("b"), await net.start("c")
        assert a.send("b", b"x")
        assert a.send("c", b"x")
        await b.seen.wait_frames("a", 1)
        await c.seen.wait_frames("a", 1)
        await b.transport.stop()
        assert b.seen.events == [("up", "a"), ("down", "a")]
        await a.seen.wait_event("down", "b")
        assert a.seen.count("down", "b") == 1
        assert not b.send("a", b"after stop")
        assert a.send("c", b"y")
        assert await c.seen.wait_frames("a", 2) == [b"x", b"y"]


async def test_reconnects_after_the_peer_restarts_on_the_same_port() -> None:
    """Frames sent while a peer is down are delivered, in order, once it is back on the same port."""
    with watched_logs() as (logs, signal):
        async with cluster() as net:
            a, b = await net.start("a"), await net.start("b")
            port = b.transport.port
            assert a.send("b", b"first life")
            await b.seen.wait_frames("a", 1)
            await b.transport.stop()
            await a.seen.wait_event("down", "b")
            for i in range(5):
                assert a.send("b", b"%d" % i)
            await signal.wait_until(lambda: len(entries(logs, "tcp connect failed", node="a", peer="b")) >= 2)
            reborn = await net.start("b", port=port)
            assert await reborn.seen.wait_frames("a", 5) == [b"%d" % i for i in range(5)]
            await a.seen.wait_event("up", "b", 2)
            assert a.seen.events == [("up", "b"), ("down", "b"), ("up", "b")]
            assert a.stats().connect_failures >= 2


async def test_full_send_buffer_refuses_frames_and_drain_waits_for_room() -> None:
    """Beyond the buffer limit send returns False and counts a drop; drain returns once the peer takes the frames."""
    async with cluster() as net:
        probe = await net.start("b")
        port = probe.transport.port
        await probe.transport.stop()
        a = await net.start("a", send_buffer_frames=3)
        assert [a.send("b", b"%d" % i) for i in range(4)] == [True, True, True, False]
        assert (a.stats().buffered_frames, a.stats().frames_dropped) == (3, 1)

        drained = anyio.Event()

        async def drain() -> None:
            await a.transport.drain("b")
            drained.set()

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(drain)
            await anyio.wait_all_tasks_blocked()
            assert not drained.is_set()
            b = await net.start("b", port=port)
            with anyio.fail_after(WAIT):
                await drained.wait()
        assert await b.seen.wait_frames("a", 3) == [b"0", b"1", b"2"]
        assert a.send("b", b"3")
        assert await b.seen.wait_frames("a", 4) == [b"0", b"1", b"2", b"3"]
        assert a.stats().frames_dropped == 1


async def test_send_buffer_bytes_limit_refuses_frames() -> None:
    """The byte limit refuses a frame once the buffer holds that many bytes, and disconnect drops them."""
    async with cluster() as net:
        a = await net.start("a", send_buffer_bytes=1000, peers={"b": (LOOPBACK, 1)})
        assert a.send("b", bytes(600))
        assert a.send("b", bytes(600))
        assert not a.send("b", b"x")
        a.transport.disconnect("b")
        with anyio.fail_after(WAIT):
            await a.transport.drain("b")
        assert (a.stats().buffered_frames, a.stats().frames_dropped) == (0, 3)
        assert a.send("b", b"x")


async def test_send_to_a_node_without_address_drops_and_logs() -> None:
    """Frames for a node the address book does not know are dropped, with a warning."""
    with watched_logs() as (logs, signal):
        async with cluster() as net:
            a = await net.start("a")
            assert a.send("nowhere", b"lost")
            entry = await wait_log(logs, signal, "tcp peer has no address", node="a", peer="nowhere")
            assert entry["log_level"] == "warning"
            assert entry["frames_dropped"] == 1
            assert a.stats().frames_dropped == 1


async def test_the_table_of_peers_shrinks_as_peers_go() -> None:
    """Records of nodes with nothing queued, no connection and no backoff are swept as new ones come."""
    with capture_logs():
        async with cluster() as net:
            a = await net.start("a")
            for i in range(500):
                assert a.send(f"gone{i}", b"lost")  # no address: its dialler drops it, leaving an idle record
                with anyio.fail_after(WAIT):
                    for _ in range(1000):
                        if a.stats().frames_dropped == i + 1:
                            break
                        await anyio.sleep(0.001)
            assert a.stats().frames_dropped == 500
            assert a.stats().peer_records < 130


async def test_send_checks_frame_size_and_node_names() -> None:
    """send refuses a frame over max_frame_size, a send to itself, and use before start or after stop."""
    transport = TcpTransport(LOOPBACK, secret=SECRET, max_frame_size=16)
    with pytest.raises(RuntimeError):
        transport.send("b", b"x")
    async with cluster() as net:
        a = await net.start("a", max_frame_size=16)
        with pytest.raises(FrameError):
            a.send("b", bytes(17))
        with pytest.raises(ValueError, match="itself"):
            a.send("a", b"x")
        await a.transport.stop()
        await a.transport.stop()
        assert not a.send("b", b"x")


def test_options_are_checked() -> None:
    """An empty secret, half a TLS configuration, or a zero limit is refused up front."""
    context = ssl.create_default_context()
    with pytest.raises(ValueError, match="secret"):
        TcpTransport(secret=b"")
    with pytest.raises(ValueError, match="both"):
        TcpTransport(secret=SECRET, client_ssl_context=context)
    with pytest.raises(ValueError, match="at least 1"):
        TcpTransport(secret=SECRET, send_buffer_frames=0)


def test_options_can_be_given_as_one_tcp_options() -> None:
    """A TcpOptions stands for the keyword options; giving both is refused, and the secret stays out of its repr."""
    options = TcpOptions(secret=SECRET, send_buffer_frames=7)
    assert TcpTransport(LOOPBACK, options=options).options is options
    assert TcpTransport(secret=SECRET, send_buffer_frames=7).options == options
    with pytest.raises(TypeError, match="not both"):
        TcpTransport(options=options, send_buffer_frames=8)
    with pytest.raises(ValueError, match="at least 1"):
        TcpOptions(secret=SECRET, max_handshakes=0)
    assert SECRET.decode() not in repr(options)


async def test_tls_carries_frames_and_refuses_plain_connections(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """Over mutual TLS, frames flow both ways in order; a node without TLS cannot get in."""
    server, client = tls_contexts
    with watched_logs() as (logs, signal):
        async with cluster() as net:
            tls = {"server_ssl_context": server, "client_ssl_context": client}
            a, b = await net.start("a", **tls), await net.start("b", **tls)
            for i in range(100):
                assert a.send("b", b"a%d" % i)
                assert b.send("a", b"b%d" % i)
            assert await b.seen.wait_frames("a", 100) == [b"a%d" % i for i in range(100)]
            assert await a.seen.wait_frames("b", 100) == [b"b%d" % i for i in range(100)]

            plain = await net.start("plain")
            assert plain.send("b", b"let me in")
            failed = await wait_log(logs, signal, "tcp handshake failed", node="b", direction="incoming")
            assert failed["reason"] == "TLS mismatch: this node requires TLS"
            assert "plain" not in b.seen.frames
            assert plain.seen.events == []
            assert a.send("b", b"still here")
            assert (await b.seen.wait_frames("a", 101))[-1] == b"still here"


async def test_a_tls_failure_is_reported_as_a_refusal_naming_it(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """A dialler that does not trust the listener's certificate reports the TLS failure once, and drops the frames."""
    server, _ = tls_contexts
    stranger = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)  # trusts no throwaway CA
    with watched_logs() as (logs, signal):
        async with cluster() as net:
            b = await net.start("b", server_ssl_context=server, client_ssl_context=stranger)
            a = await net.start("a", server_ssl_context=server, client_ssl_context=stranger)
            refusals: list[tuple[str, str]] = []

            def refused(peer: str, reason: str) -> None:
                refusals.append((peer, reason))
                signal.notify()

            a.transport.watch_refusals(refused)
            assert a.send("b", b"hello")
            await signal.wait_until(lambda: bool(refusals))
            assert refusals[0][0] == "b"
            assert refusals[0][1].startswith("TLS failed: ")
            assert "CERTIFICATE_VERIFY_FAILED" in refusals[0][1]
            assert a.stats().buffered_frames == 0
            assert "a" not in b.seen.frames
            failed = entries(logs, "tcp handshake failed", node="a")
            assert [entry["log_level"] for entry in failed][:1] == ["warning"]


@pytest.mark.parametrize(
    ("dialler_tls", "reason"),
    [(False, "TLS mismatch: this node requires TLS"), (True, "TLS mismatch: this node does not use TLS")],
    ids=["plain-dials-tls", "tls-dials-plain"],
)
async def test_a_tls_mismatch_is_refused_at_once_naming_it(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext], dialler_tls: bool, reason: str
) -> None:
    """A node dialling one that differs on TLS is refused at its HELLO, both naming the mismatch, not timing out."""
    server, client = tls_contexts
    tls = {"server_ssl_context": server, "client_ssl_context": client}
    with watched_logs() as (logs, signal):
        async with cluster() as net:
            b = await net.start("b", handshake_timeout=30.0, **({} if dialler_tls else tls))
            a = await net.start("a", handshake_timeout=30.0, **(tls if dialler_tls else {}))
            refusals: list[tuple[str, str]] = []

            def refused(peer: str, why: str) -> None:
                refusals.append((peer, why))
                signal.notify()

            a.transport.watch_refusals(refused)
            assert a.send("b", b"hello")
            await signal.wait_until(lambda: bool(refusals), timeout=2.0)  # not the 30 s handshake timeout
            assert refusals == [("b", f"refused by the peer: {reason}")]
            failed = await wait_log(logs, signal, "tcp handshake failed", node="b")
            assert failed["reason"] == reason
            assert failed["peer"] == "a"
            assert b.seen.events == []
            assert a.seen.events == []


async def test_a_handshake_version_mismatch_is_reported_as_a_refusal_naming_it() -> None:
    """A listener speaking another handshake version: the dialler says which, instead of timing out."""
    listener = await anyio.create_tcp_listener(local_host=LOOPBACK, local_port=0)

    other = HANDSHAKE_VERSION + 1

    async def answer_in_another_version(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()  # the HELLO
            await stream.send(encode_frame(b"GSH" + bytes((other, 2)) + b"\x00\x01b"))
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                await stream.receive()

    async with listener, anyio.create_task_group() as task_group, cluster() as net:
        task_group.start_soon(listener.serve, answer_in_another_version)
        net.addresses["old"] = (LOOPBACK, listener.extra(anyio.abc.SocketAttribute.local_port))
        a = await net.start("a")
        refusals: list[tuple[str, str]] = []
        a.transport.watch_refusals(lambda peer, reason: refusals.append((peer, reason)))
        assert a.send("old", b"hello")
        with anyio.fail_after(WAIT):
            while not refusals:  # noqa: ASYNC110 - the handler is all there is to wait on
                await anyio.sleep(0.01)
        assert refusals == [("old", f"unsupported handshake version {other} (this node speaks {HANDSHAKE_VERSION})")]
        task_group.cancel_scope.cancel()


async def read_line(process: anyio.abc.Process) -> str:
    assert process.stdout is not None
    line = b""
    while not line.endswith(b"\n"):
        line += await process.stdout.receive(1)
    return line.decode().strip()


async def test_nodes_in_separate_processes_exchange_frames(tmp_path: Path) -> None:
    """Nodes in three OS processes connect, authenticate and carry frames in order between every pair."""
    async with cluster() as net, AsyncExitStack() as processes:
        parent = await net.start("parent")
        logs = {name: tmp_path / f"{name}.log" for name in ("p1", "p2")}

        async def spawn(name: str) -> anyio.abc.Process:
            command = [sys.executable, str(NODE_SCRIPT), name, SECRET.hex(), "parent", str(parent.transport.port)]
            process = await anyio.open_process(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=processes.enter_context(logs[name].open("wb")),
            )

            async def reap() -> None:
                with anyio.CancelScope(shield=True):
                    if process.returncode is None:
                        process.kill()
                    await process.wait()
                    await process.aclose()

            processes.push_async_callback(reap)
            return process

        try:
            with anyio.fail_after(30):
                children = {name: await spawn(name) for name in ("p1", "p2")}
                for name, process in children.items():
                    words = (await read_line(process)).split()
                    assert words[0] == "listening"
                    net.addresses[name] = (LOOPBACK, int(words[1]))
                for name, other in (("p1", "p2"), ("p2", "p1")):
                    assert parent.send(name, f"peer {other} {net.addresses[other][1]}".encode())
                    for i in range(50):
                        assert parent.send(name, b"%d" % i)
                    assert parent.send(name, f"send {other} 50".encode())
                reports = await parent.seen.wait_frames("p1", 100)
                assert [r for r in reports if r.startswith(b"p1|parent|")] == [b"p1|parent|%d" % i for i in range(50)]
                assert [r for r in reports if r.startswith(b"p1|p2|")] == [b"p1|p2|p2:%d" % i for i in range(50)]
                reports = await parent.seen.wait_frames("p2", 100)
                assert [r for r in reports if r.startswith(b"p2|parent|")] == [b"p2|parent|%d" % i for i in range(50)]
                assert [r for r in reports if r.startswith(b"p2|p1|")] == [b"p2|p1|p1:%d" % i for i in range(50)]

                for name in children:
                    assert parent.send(name, b"stop")
                for process in children.values():
                    assert await process.wait() == 0
                await parent.seen.wait_event("down", "p1")
                await parent.seen.wait_event("down", "p2")
        except BaseException:
            for name, path in logs.items():
                print(f"--- {name} ---\n{path.read_text(errors='replace')}", file=sys.stderr)
            raise
        assert parent.stats().handshake_failures == 0
