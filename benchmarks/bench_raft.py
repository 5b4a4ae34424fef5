"""Raft: committed proposals and linearizable reads per second, with p50/p99 latency.

Three Raft nodes (``a``, ``b``, ``c``) and a client node in this process, on
a ``MemoryNetwork``, on asyncio; each node has a ``KVMachine`` and a
``MemoryStorage``. Clients are ``RaftClient`` sessions on the client node;
each proposal is a ``KVMachine.put`` (keys cycle over 1,024), answered once
a majority has it and the leader has applied it; each read is a
``KVMachine.get`` through ReadIndex. Measured, each with 1 client and with
64 concurrent clients (each client one request at a time):

- proposals: committed proposals per second, p50/p99 latency;
- reads: linearizable reads per second, p50/p99 latency.

Baseline for each figure, measured in the same run: the same clients make
the same number of bare call round trips, with the same payload, to a
trivial echo GenStateMachine on the leader's node. The ratio ``raft/bare``
is what a Raft request costs over the one network round trip it needs
anyway: the leader's round trip to its followers, the log, the apply.

    python benchmarks/bench_raft.py            # 20,000 requests per figure
    python benchmarks/bench_raft.py --n 2000   # quick run
    python benchmarks/bench_raft.py --json     # one JSON object
    python benchmarks/bench_raft.py --snapshot-every 0   # never compact the log
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import structlog

import genstatem as gs
from genstatem.net import MemoryNetwork
from genstatem.raft import GetStatus, KVMachine, MemoryStorage, RaftClient, RaftConfig, RaftNode, RaftSpec, RaftStatus

structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    logger_factory=structlog.PrintLoggerFactory(sys.stderr),  # stdout is for the table or the JSON
    cache_logger_on_first_use=True,
)

MEMBERS = ("a", "b", "c")
SNAPSHOT_EVERY = RaftConfig().snapshot_every
KEYS = 1024
MANY = 64


class Echo(gs.GenStateMachine):
    """Replies to every call with the request: the bare round trip."""

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if event_type.__class__ is gs.Call:
            return gs.KeepState(actions=gs.Reply(event_type.caller, content))
        return None


def summarize(latencies_ns: list[int], seconds: float) -> dict[str, float]:
    latencies_ns.sort()
    n = len(latencies_ns)
    return {
        "n": n,
        "per_s": n / seconds,
        "p50_us": latencies_ns[n // 2] / 1000,
        "p99_us": latencies_ns[min(n - 1, (n * 99) // 100)] / 1000,
    }


Request = Callable[[int], Awaitable[Any]]


async def measure(requests: list[Request], n: int) -> dict[str, float]:
    """``n`` requests in all, shared among the clients (one request function each), each client one at a time."""
    latencies: list[int] = []
    per_client = n // len(requests)

    async def client(request: Request) -> None:
        for i in range(per_client):
            t0 = time.perf_counter_ns()
            await request(i)
            latencies.append(time.perf_counter_ns() - t0)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for request in requests:
            tg.start_soon(client, request)
    return summarize(latencies, time.perf_counter() - start)


async def leader_status(systems: dict[str, gs.ActorSystem]) -> RaftStatus:
    """Wait (10 s at most) until one node leads; return its status."""
    with anyio.fail_after(10):
        while True:
            for system in systems.values():
                ref = system.whereis("raft")
                assert ref is not None
                status: RaftStatus = await ref.call(GetStatus())
                if status.role == "leader":
                    return status
            await anyio.sleep(0.05)


async def bench(n: int, snapshot_every: int | None) -> dict[str, Any]:
    config = RaftConfig(election_timeout=(0.5, 1.0), heartbeat_interval=0.05, snapshot_every=snapshot_every)
    network = MemoryNetwork()
    systems = {member: gs.ActorSystem(node=member, network=network) for member in MEMBERS}
    async with systems["a"], systems["b"], systems["c"], gs.ActorSystem(node="client", network=network) as client:
        for system in systems.values():
            await system.start(RaftNode, RaftSpec(MEMBERS, KVMachine, MemoryStorage(), config), name="raft")
            await system.start(Echo, ("echo", None), name="echo")
        leader = await leader_status(systems)
        echo = client.remote(leader.id, "echo")
        payload = KVMachine.put(f"k{KEYS - 1}", "v" * 16)  # as big as the proposals

        def clients(count: int) -> list[RaftClient]:
            return [RaftClient(client, MEMBERS, client_id=f"bench-{count}-{i}", timeout=30.0) for i in range(count)]

        def proposer(raft: RaftClient) -> Request:
            return lambda i: raft.propose(KVMachine.put(f"k{i % KEYS}", f"{i:016d}"))

        def reader(raft: RaftClient) -> Request:
            return lambda i: raft.read(KVMachine.get(f"k{i % KEYS}"))

        def bare(_: RaftClient) -> Request:
            return lambda i: echo.call(payload, 30.0)

        figures: dict[str, Any] = {}
        for count in (1, MANY):
            sessions = clients(count)
            await measure([proposer(s) for s in sessions], 200)  # warm up: finds the leader
            for what, make in (("propose", proposer), ("read", reader)):
                raft = await measure([make(s) for s in sessions], n)
                echoed = await measure([bare(s) for s in sessions], n)
                figures[f"{what}_{count}"] = {"raft": raft, "bare": echoed, "ratio": raft["per_s"] / echoed["per_s"]}
        after = await leader_status(systems)
        # the same leader in the same term throughout, or an election skewed the figures
        figures["leader_changes"] = int((after.id, after.term) != (leader.id, leader.term))
        figures["commit_index"] = after.commit_index
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="requests per figure (default 20,000)")
    parser.add_argument(
        "--snapshot-every",
        type=int,
        default=SNAPSHOT_EVERY,
        help=f"RaftConfig.snapshot_every (default {SNAPSHOT_EVERY:,}; 0: never snapshot)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    snapshot_every = args.snapshot_every or None
    figures = anyio.run(bench, max(args.n, MANY), snapshot_every, backend="asyncio")
    figures = {"bench": "raft", "n": args.n, "snapshot_every": snapshot_every, **figures}
    if args.json:
        print(json.dumps(figures))
        return
    header = ("measure", "raft", "p50 / p99", "bare calls", "p50 / p99", "raft/bare")
    rows = [header]
    for count in (1, MANY):
        for what, label in (("propose", "committed proposals"), ("read", "linearizable reads")):
            figure = figures[f"{what}_{count}"]
            raft, bare = figure["raft"], figure["bare"]
            rows.append(
                (
                    f"{label}, {count} client{'s' if count > 1 else ''}",
                    f"{raft['per_s']:,.0f}/s",
                    f"{raft['p50_us']:,.0f} / {raft['p99_us']:,.0f} us",
                    f"{bare['per_s']:,.0f}/s",
                    f"{bare['p50_us']:,.0f} / {bare['p99_us']:,.0f} us",
                    f"{figure['ratio']:.2f}",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print(
        f"3 Raft nodes + 1 client node in one process, MemoryNetwork, asyncio; {args.n:,} requests per figure; "
        f"snapshot every {snapshot_every or 'never'}"
    )
    for row in rows:
        print(
            "  ".join(
                cell.rjust(width) if i else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
    changes, commit = figures["leader_changes"], figures["commit_index"]
    print(f"leader changes during the run: {changes}; commit index at the end: {commit:,}")


if __name__ == "__main__":
    main()
