"""Call round trips: calls per second and p50/p99 latency, one caller, one actor.

Each round trip is timed with ``time.perf_counter_ns``. The actor answers
with ``KeepState(actions=Reply(caller, value))``, the usual way.

Baseline, measured in the same run: a bare request/reply between two tasks:
the client puts ``(request, future)`` on an ``asyncio.Queue`` and awaits the
future, the server task gets it and sets the future's result.

    python benchmarks/bench_call.py             # 200,000 calls
    python benchmarks/bench_call.py --n 20000   # quick run

Target: ours / baseline >= 0.5 (calls per second).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import statistics
import time
from typing import Any

import anyio
import structlog

import genstatem as gs

structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    cache_logger_on_first_use=True,
)

TARGET = 0.5


class Echo(gs.GenStateMachine):
    """Replies to every call with the request."""

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if event_type.__class__ is gs.Call:
            return gs.KeepState(actions=gs.Reply(event_type.caller, content))
        return None


class AsyncEcho(gs.GenStateMachine):
    """The same with an ``async def`` handler."""

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if event_type.__class__ is gs.Call:
            return gs.KeepState(actions=gs.Reply(event_type.caller, content))
        return None


HANDLERS = {"sync": Echo, "async": AsyncEcho}
_NO_TIMEOUT = "none"


def summarize(lat_ns: list[int], total_s: float) -> dict[str, float]:
    lat_ns.sort()
    n = len(lat_ns)
    return {
        "per_s": n / total_s,
        "p50_us": lat_ns[n // 2] / 1000,
        "p99_us": lat_ns[min(n - 1, (n * 99) // 100)] / 1000,
        "mean_us": statistics.fmean(lat_ns) / 1000,
    }


async def run_ours(n: int, timeout: float | None, handler: str) -> dict[str, float]:
    async with gs.ActorSystem() as system:
        ref = await system.start(HANDLERS[handler], ("idle", None))
        assert ref is not None
        call = ref.call
        for i in range(1000):  # warm up
            await call(i, timeout)
        lat = [0] * n
        clock = time.perf_counter_ns
        gc.collect()
        t0 = clock()
        for i in range(n):
            start = clock()
            await call(i, timeout)
            lat[i] = clock() - start
        total = (clock() - t0) / 1e9
    return summarize(lat, total)


async def run_baseline(n: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def server() -> None:
        while True:
            request, fut = await queue.get()
            if fut is None:
                return
            fut.set_result(request)

    task = asyncio.create_task(server())

    async def call(request: Any) -> Any:
        fut = loop.create_future()
        queue.put_nowait((request, fut))
        return await fut

    for i in range(1000):  # warm up
        await call(i)
    lat = [0] * n
    clock = time.perf_counter_ns
    gc.collect()
    t0 = clock()
    for i in range(n):
        start = clock()
        await call(i)
        lat[i] = clock() - start
    total = (clock() - t0) / 1e9
    queue.put_nowait((None, None))
    await task
    return summarize(lat, total)


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return max(runs, key=lambda r: r["per_s"])


async def main(args: argparse.Namespace) -> dict[str, Any]:
    timeout = None if args.timeout == _NO_TIMEOUT else float(args.timeout)
    ours: list[dict[str, float]] = []
    base: list[dict[str, float]] = []
    for _ in range(args.repeat):  # alternate, keep the best run of each
        base.append(await run_baseline(args.n))
        ours.append(await run_ours(args.n, timeout, args.handler))
    o, b = best(ours), best(base)
    ratio = o["per_s"] / b["per_s"]
    return {
        "bench": "call",
        "n": args.n,
        "handler": args.handler,
        "timeout": timeout,
        "ours": o,
        "baseline": b,
        "ratio": ratio,
        "target": TARGET,
        "ok": ratio >= TARGET,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="calls per run (default 200,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; the best counts (default 3)")
    parser.add_argument(
        "--timeout",
        default="5.0",
        help="the call timeout in seconds, or 'none' for no timer (default 5.0, the API default)",
    )
    parser.add_argument("--handler", choices=sorted(HANDLERS), default="sync", help="def or async def handler")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the report")
    return parser.parse_args()


def report(result: dict[str, Any]) -> None:
    o, b = result["ours"], result["baseline"]
    print(f"call round trips: {result['n']:,} calls, handler={result['handler']}, timeout={result['timeout']}")
    print(f"  {'':22}{'calls/s':>12}{'p50 us':>10}{'p99 us':>10}{'mean us':>10}")
    for label, r in (("genstatem call", o), ("queue + future", b)):
        print(f"  {label:22}{r['per_s']:>12,.0f}{r['p50_us']:>10.2f}{r['p99_us']:>10.2f}{r['mean_us']:>10.2f}")
    verdict = "OK" if result["ok"] else "BELOW TARGET"
    print(f"  ratio (calls/s)       {result['ratio']:.3f}  (target >= {result['target']})  {verdict}")


if __name__ == "__main__":
    arguments = parse_args()
    outcome = anyio.run(main, arguments)
    if arguments.json:
        print(json.dumps(outcome))
    else:
        report(outcome)
