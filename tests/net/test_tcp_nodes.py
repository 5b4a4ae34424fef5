"""Actor systems over TCP under load and under attack: backpressure, leaks, and errors that name the cause.

Every test runs two ``ActorSystem``s in this process on real sockets on
127.0.0.1, on asyncio and trio; every loop is bounded in count and time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

import genstatem as gs
from genstatem.lowlevel import mailbox_size
from genstatem.net import NodeUnreachable, TcpNetwork

pytestmark = pytest.mark.anyio

SECRET = b"correct horse battery staple"
WAIT = 10.0  # seconds any one expected thing may take
FAST = {"reconnect_initial_delay": 0.02, "reconnect_max_delay": 0.2}


class Sink(gs.GenStateMachine):
    """Counts the casts it gets, each only once its gate is open; checks they come in order."""

    async def init(self, arg: tuple[anyio.Event, anyio.Event, int]) -> gs.Init:
        self.gate, self.done, self.expected = arg
        self.seen = 0
        return gs.Init("open", None)

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Cast(), int(number):
                await self.gate.wait()
                assert number == self.seen, (number, self.seen)
                self.seen += 1
                if self.seen == self.expected:
                    self.done.set()
            case gs.Call(caller), "seen":
                return gs.KeepState(actions=gs.Reply(caller, self.seen))
            case gs.Call(caller), "hang":
                return None  # never answered, which is legal
        return None


async def eventually(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait until ``condition()`` holds, looking every few milliseconds, for at most ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        for _ in range(int(timeout / 0.005)):
            if condition():
                return
            await anyio.sleep(0.005)
    raise AssertionError("the condition never held")


@asynccontextmanager
async def tcp_nodes(**options: Any) -> AsyncIterator[tuple[gs.ActorSystem, gs.ActorSystem, TcpNetwork, TcpNetwork]]:
    """Nodes ``a`` and ``b`` on TCP, each with ``options``."""
    peers: dict[str, tuple[str, int]] = {}
    net_a = TcpNetwork(secret=SECRET, peers=peers, **{**FAST, **options})
    net_b = TcpNetwork(secret=SECRET, peers=peers, **{**FAST, **options})
    async with gs.ActorSystem(node="a", network=net_a) as a, gs.ActorSystem(node="b", network=net_b) as b:
        peers["a"] = net_a.transport.address
        peers["b"] = net_b.transport.address
        yield a, b, net_a, net_b


async def test_a_fast_sender_is_held_back_while_the_receivers_mailbox_holds_the_limit() -> None:
    """The receiving node stops reading once a peer's undelivered messages pass receive_buffer_bytes."""
    count = 50_000
    gate, done = anyio.Event(), anyio.Event()
    async with tcp_nodes(receive_buffer_bytes=32 << 10) as (a, b, net_a, net_b):
        sink = await b.start(Sink, (gate, done, count), name="sink")
        ref = a.remote("b", "sink")
        with anyio.fail_after(WAIT):
            sent = 0
            while sent < count:
                with anyio.move_on_after(0.5):  # the sender may be held back before it has sent them all
                    await net_a.transport.drain("b")
                if net_a.transport.statistics().buffered_frames >= net_a.transport.options.send_buffer_frames:
                    break
                ref.cast(sent)
                sent += 1
        statistics = net_b.transport.statistics
        await eventually(lambda: statistics().receive_pauses > 0 or statistics().frames_received == sent)
        # What waits in the mailbox is the limit's worth of small frames, plus at most one read.
        assert mailbox_size(sink) < 8_000
        assert statistics().frames_received < sent
        gate.set()
        while sent < count:
            await net_a.transport.drain("b")
            ref.cast(sent)
            sent += 1
        with anyio.fail_after(WAIT):
            await done.wait()
        assert await sink.call("seen") == count
        assert statistics().frames_dropped == 0
        assert net_a.transport.statistics().frames_dropped == 0


async def test_a_refused_handshake_fails_the_call_naming_the_cause_logged_once() -> None:
    """A node with the wrong secret: calls to it fail at once with NodeUnreachable saying why, one warning."""
    peers: dict[str, tuple[str, int]] = {}
    net_a = TcpNetwork(secret=SECRET, peers=peers, **FAST)
    net_b = TcpNetwork(secret=b"not the secret", peers=peers, **FAST)
    with capture_logs() as logs:
        async with gs.ActorSystem(node="a", network=net_a) as a, gs.ActorSystem(node="b", network=net_b) as b:
            peers["a"], peers["b"] = net_a.transport.address, net_b.transport.address
            await b.start(Sink, (anyio.Event(), anyio.Event(), -1), name="sink")
            for _ in range(4):
                with anyio.fail_after(WAIT / 2), pytest.raises(NodeUnreachable) as caught:
                    await a.remote("b", "sink").call("seen", timeout=WAIT)
                assert caught.value.reason == "noconnection"
                assert caught.value.node == "b"
                assert "bad secret" in str(caught.value)
            assert net_a.transport.statistics().handshake_failures == 4  # one dial per call: no redial storm
    warnings = [
        entry
        for entry in logs
        if entry["event"] == "tcp handshake failed" and entry["node"] == "a" and entry["log_level"] == "warning"
    ]
    assert len(warnings) == 1
    assert "bad secret" in warnings[0]["reason"]
