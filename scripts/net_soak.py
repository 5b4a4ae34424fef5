"""Run mixed load between two TCP nodes for a while, sample memory, and fail if it grows.

    python scripts/net_soak.py --seconds 600                 # the long run
    python scripts/net_soak.py --seconds 3 --max-growth-mib 2  # about what the test suite runs

Nodes ``a`` and ``b`` run in this process on 127.0.0.1, over real sockets.
Each round starts fresh workers on ``b`` (new actor ids), and from ``a``:
answered calls, calls the worker never answers (given up after a short
timeout), bursts of casts that honour ``drain``, monitors and links (from an
actor trapping exits), then crashes half the workers, stops the rest, and
restarts one under a name already used. After each round both nodes' tables
must be back where they started (``Node.statistics``). After a warm-up, each
round samples traced memory (``tracemalloc``, after a garbage collection) and
the process's RSS; the run fails if traced memory at the end exceeds its
level at the end of the warm-up by more than ``--max-growth-mib``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import structlog

import genstatem as gs
from genstatem.net import NodeStatistics, TcpNetwork

SECRET = b"soak secret"
WORKERS = 20
CASTS = 2_000
MIB = 1 << 20


class Worker(gs.GenStateMachine):
    """Answers pings, never answers "hang", crashes on "crash", counts casts."""

    async def init(self, arg: Any) -> gs.Init:
        return gs.Init("up", 0)

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Call(caller), "ping":
                return gs.KeepState(actions=gs.Reply(caller, data))
            case gs.Call(_), "hang":
                return None  # legal: the caller gives up
            case gs.Call(_), "crash":
                raise RuntimeError("crashed on purpose")
            case gs.Cast(), int():
                return gs.KeepState(data + 1)
        return None


class Watcher(gs.GenStateMachine):
    """Links to and monitors what it is told to, trapping exits; counts what it hears."""

    trap_exits = True

    async def init(self, arg: Any) -> gs.Init:
        return gs.Init("up", {"exits": 0, "downs": 0})

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Call(caller), ("watch", ref):
                self.link(ref)
                self.monitor(ref)
                return gs.KeepState(actions=gs.Reply(caller, "ok"))
            case gs.Call(caller), "heard":
                return gs.KeepState(actions=gs.Reply(caller, dict(data)))
            case gs.Info(), gs.Exit():
                return gs.KeepState({**data, "exits": data["exits"] + 1})
            case gs.Info(), gs.Down():
                return gs.KeepState({**data, "downs": data["downs"] + 1})
        return None


def rss_mib() -> float:
    """The process's resident set size, in MiB (0 where /proc is not there)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return pages * 4096 / MIB


def traced_mib() -> float:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] / MIB


def tables(network: TcpNetwork) -> NodeStatistics:
    assert network.node is not None
    return network.node.statistics()


async def round_of_load(
    a: gs.ActorSystem, b: gs.ActorSystem, net_a: TcpNetwork, watcher: gs.ActorRef, number: int, load: tuple[int, int]
) -> None:
    """One round: ``load[0]`` workers come, are called, cast to (``load[1]`` casts), watched, crashed, and go."""
    workers, casts = load
    names = [f"w{number}.{i}" for i in range(workers)]
    for name in names:
        await b.start(Worker, None, name=name)
    refs = []
    for name in names:
        ref = a.remote("b", name)
        assert await ref.call("ping") == 0
        with anyio.move_on_after(5):
            with contextlib.suppress(gs.CallTimeout):
                await ref.call("hang", timeout=0.001)
        refs.append(ref)
    target = refs[0]
    for i in range(casts):
        await net_a.transport.drain("b")
        target.cast(i)
    assert await target.call("ping", timeout=30) == casts
    for ref in refs:
        assert await ref.get_state() == ("up", casts if ref is target else 0)
        await watcher.call(("watch", ref))
    for ref in refs[: workers // 2]:
        with contextlib.suppress(gs.ActorExited):
            await ref.call("crash")
    for ref in refs[workers // 2 :]:
        await ref.stop()
    restarted = await b.start(Worker, None, name=names[0])
    assert restarted is not None
    await restarted.stop()
    with anyio.fail_after(10):
        for _ in range(1000):
            if (await watcher.call("heard"))["downs"] >= (number + 1) * workers:
                break
            await anyio.sleep(0.01)


def settled(statistics: NodeStatistics) -> bool:
    """Nothing left in the node's tables once a round is over."""
    return not (
        statistics.pending_calls or statistics.incoming_calls or statistics.remote_actors or statistics.monitors
    )


async def run(
    seconds: float,
    *,
    max_growth_mib: float,
    workers: int = WORKERS,
    casts: int = CASTS,
    report: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the soak for ``seconds`` and return its figures; ``figures["ok"]`` says whether memory stayed flat."""
    started_tracing = not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    try:
        peers: dict[str, tuple[str, int]] = {}
        net_a = TcpNetwork(secret=SECRET, peers=peers, receive_buffer_bytes=256 << 10)
        net_b = TcpNetwork(secret=SECRET, peers=peers, receive_buffer_bytes=256 << 10)
        async with gs.ActorSystem(node="a", network=net_a) as a, gs.ActorSystem(node="b", network=net_b) as b:
            peers["a"], peers["b"] = net_a.transport.address, net_b.transport.address
            watcher = await a.start(Watcher, None)
            assert watcher is not None
            deadline = time.monotonic() + seconds
            warm_up = 2
            samples: list[tuple[int, float, float]] = []
            number = 0
            while number < warm_up or time.monotonic() < deadline:
                await round_of_load(a, b, net_a, watcher, number, (workers, casts))
                for network in (net_a, net_b):
                    statistics = tables(network)
                    if not settled(statistics):
                        raise AssertionError(f"round {number}: a node's tables did not empty: {statistics}")
                number += 1
                if number >= warm_up:
                    samples.append((number, traced_mib(), rss_mib()))
                    report(f"round {number}: traced {samples[-1][1]:.1f} MiB, rss {samples[-1][2]:.1f} MiB")
            heard = await watcher.call("heard")
            transport_records = net_a.transport.statistics().peer_records
    finally:
        if started_tracing:
            tracemalloc.stop()
    growth = samples[-1][1] - samples[0][1]
    figures = {
        "rounds": number,
        "heard": heard,
        "traced_start_mib": samples[0][1],
        "traced_end_mib": samples[-1][1],
        "traced_growth_mib": growth,
        "rss_start_mib": samples[0][2],
        "rss_end_mib": samples[-1][2],
        "peer_records": transport_records,
        "ok": growth <= max_growth_mib,
    }
    report(
        f"{number} rounds: traced memory {samples[0][1]:.1f} -> {samples[-1][1]:.1f} MiB "
        f"(growth {growth:+.2f}, limit {max_growth_mib}), rss {samples[0][2]:.1f} -> {samples[-1][2]:.1f} MiB"
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run the load (default 60)")
    parser.add_argument(
        "--max-growth-mib", type=float, default=2.0, help="traced memory growth that fails the run (default 2)"
    )
    arguments = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    figures = anyio.run(lambda: run(arguments.seconds, max_growth_mib=arguments.max_growth_mib))
    if not figures["ok"]:
        print("FAILED: memory grew", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
