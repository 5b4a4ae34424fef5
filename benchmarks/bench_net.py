"""Nodes: casts and calls between two nodes over TCP on loopback, and the simulator's speed.

Two ActorSystems in this process, nodes ``a`` and ``b``, each with its own
``TcpNetwork`` on 127.0.0.1 (authenticated, no TLS). Measured:

- casts from ``a`` to a counter on ``b``, then one call to sync: casts/s;
- calls from ``a`` to an echo on ``b``, one at a time: round trips/s, p50/p99;
- the simulator: messages delivered per second of wall time, two nodes
  pinging each other as fast as the network lets them, on virtual time.

Baselines, measured in the same run: a bare anyio TCP echo on loopback (a
client sends a 32-byte frame and waits for it to come back: round trips/s),
and the same stream one way (frames/s).

    python benchmarks/bench_net.py            # 20,000 calls, 100,000 casts
    python benchmarks/bench_net.py --n 2000   # quick run
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from typing import Any

import anyio
import structlog
from anyio.abc import SocketStream

import genstatem as gs
from genstatem.net import TcpNetwork
from genstatem.testing import Simulation

structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    cache_logger_on_first_use=True,
)


class Counter(gs.GenStateMachine):
    """Counts casts; answers calls with the count (or echoes them)."""

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if event_type.__class__ is gs.Call:
            answer = data if content == "count" else content
            return gs.KeepState(actions=gs.Reply(event_type.caller, answer))
        return gs.KeepState(data + 1)


async def two_tcp_nodes(n_casts: int, n_calls: int) -> dict[str, float]:
    secret = b"bench-secret"
    net_b = TcpNetwork("127.0.0.1", 0, secret=secret, send_buffer_frames=1 << 20, send_buffer_bytes=1 << 30)
    async with gs.ActorSystem(node="b", network=net_b) as b:
        await b.start(Counter, ("counting", 0), name="counter")
        peers = {"b": ("127.0.0.1", net_b.transport.port)}
        net_a = TcpNetwork(
            "127.0.0.1", 0, secret=secret, peers=peers, send_buffer_frames=1 << 20, send_buffer_bytes=1 << 30
        )
        async with gs.ActorSystem(node="a", network=net_a) as a:
            counter = a.remote("b", "counter")
            await counter.call("warm up")
            start = time.perf_counter()
            for i in range(n_casts):
                counter.cast(i)
                if i % 1000 == 999:
                    await net_a.transport.drain("b")
            assert await counter.call("count", timeout=60) == n_casts
            casts = n_casts / (time.perf_counter() - start)
            latencies = []
            start = time.perf_counter()
            for i in range(n_calls):
                t0 = time.perf_counter_ns()
                await counter.call(i)
                latencies.append(time.perf_counter_ns() - t0)
            calls = n_calls / (time.perf_counter() - start)
    quantiles = statistics.quantiles(latencies, n=100)
    return {"casts_per_s": casts, "calls_per_s": calls, "p50_us": quantiles[49] / 1000, "p99_us": quantiles[98] / 1000}


async def bare_tcp(n_frames: int, n_round_trips: int) -> dict[str, float]:
    payload = b"x" * 28

    async def serve(stream: SocketStream) -> None:
        async with stream:
            buffered = b""
            try:
                while True:
                    buffered += await stream.receive()
                    whole = len(buffered) - len(buffered) % 32
                    if whole:
                        if buffered[:4] == b"echo":
                            await stream.send(buffered[:whole])
                        buffered = buffered[whole:]
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with await anyio.connect_tcp("127.0.0.1", port) as client:
            start = time.perf_counter()
            for _i in range(n_frames):
                await client.send(b"cast" + payload)
            one_way = n_frames / (time.perf_counter() - start)
        async with await anyio.connect_tcp("127.0.0.1", port) as client:
            start = time.perf_counter()
            for _ in range(n_round_trips):
                await client.send(b"echo" + payload)
                got = b""
                while len(got) < 32:
                    got += await client.receive()
            echo = n_round_trips / (time.perf_counter() - start)
        tg.cancel_scope.cancel()
    return {"one_way_frames_per_s": one_way, "echo_round_trips_per_s": echo}


class Volley(gs.GenStateMachine):
    """Casts to its peer every time it hears from it: a message per hop, forever."""

    async def init(self, peer: str) -> gs.Init:
        return gs.Init("on", peer, gs.NextEvent(gs.Internal(), "serve"))

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        self.system.remote(data, "volley").cast("ball")


def simulated(seconds_virtual: float) -> dict[str, float]:
    async def scenario(sim: Simulation) -> int:
        async def on_a(system: gs.ActorSystem) -> None:
            await system.start(Volley, "b", name="volley")

        async def on_b(system: gs.ActorSystem) -> None:
            await system.start(Volley, "a", name="volley")

        await sim.start_node("b", on_b)
        await sim.start_node("a", on_a)
        await sim.sleep(seconds_virtual)
        return sim.delivered

    start = time.perf_counter()
    delivered, _ = Simulation.run(scenario, seed=1, trace_actors=False)
    wall = time.perf_counter() - start
    return {"simulated_messages": delivered, "simulated_messages_per_s": delivered / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="calls (casts: 5x as many)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    ours = anyio.run(two_tcp_nodes, args.n * 5, args.n)
    bare = anyio.run(bare_tcp, args.n * 5, args.n)
    sim = simulated(args.n / 100)
    figures = {
        **ours,
        **bare,
        **sim,
        "calls_vs_bare_echo": ours["calls_per_s"] / bare["echo_round_trips_per_s"],
        "casts_vs_bare_one_way": ours["casts_per_s"] / bare["one_way_frames_per_s"],
    }
    if args.json:
        print(json.dumps(figures))
        return
    rows = [
        ("casts a->b over TCP", ours["casts_per_s"], "/s"),
        ("bare TCP one-way frames", bare["one_way_frames_per_s"], f"/s   ratio {figures['casts_vs_bare_one_way']:.2f}"),
        ("calls a->b over TCP", ours["calls_per_s"], f"/s   p50 {ours['p50_us']:.0f} us  p99 {ours['p99_us']:.0f} us"),
        ("bare TCP echo round trip", bare["echo_round_trips_per_s"], f"/s   ratio {figures['calls_vs_bare_echo']:.2f}"),
        ("simulator", sim["simulated_messages_per_s"], f"messages/s ({sim['simulated_messages']:,} delivered)"),
    ]
    for label, value, unit in rows:
        print(f"{label + ':':<26}{value:>10,.0f} {unit}")


if __name__ == "__main__":
    main()
