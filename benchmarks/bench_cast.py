"""Cast throughput: one sender, N casts to one state machine, then one call to sync.

Baseline, measured in the same run: a bare ``asyncio.Queue`` producer/consumer
pair doing exactly what our sender does: put all N messages (never blocking,
yielding to the loop every ``--yield-every`` messages, as the sender does),
then put one last request carrying a future and wait for the consumer to
resolve it (the ``call`` that syncs).

    python benchmarks/bench_cast.py            # 1,000,000 casts
    python benchmarks/bench_cast.py --n 100000 # quick run

Target: ours / baseline >= 0.25.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import time
from typing import Any

import anyio
import structlog

import genstatem as gs

structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    cache_logger_on_first_use=True,
)

TARGET = 0.25


class Counter(gs.GenStateMachine):
    """Counts casts in an attribute; ``call("count")`` replies with the count."""

    count = 0

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if event_type.__class__ is gs.Call:
            return gs.KeepState(actions=gs.Reply(event_type.caller, self.count))
        self.count += 1
        return None


class KeepCounter(Counter):
    """The same, returning ``KeepState()`` instead of ``None``."""

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if event_type.__class__ is gs.Call:
            return gs.KeepState(actions=gs.Reply(event_type.caller, self.count))
        self.count += 1
        return gs.KeepState()


class AsyncCounter(Counter):
    """The same as an ``async def`` handler returning ``None``."""

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:  # type: ignore[override]
        if event_type.__class__ is gs.Call:
            return gs.KeepState(actions=gs.Reply(event_type.caller, self.count))
        self.count += 1
        return None


HANDLERS = {"none": Counter, "keep": KeepCounter, "async": AsyncCounter}


async def run_ours(n: int, yield_every: int, handler: str) -> float:
    """Seconds for N casts and the syncing call."""
    async with gs.ActorSystem() as system:
        ref = await system.start(HANDLERS[handler], ("idle", None))
        assert ref is not None
        cast = ref.cast
        msg = ("tick", 1)
        gc.collect()
        t0 = time.perf_counter()
        if yield_every:
            for i in range(1, n + 1):
                cast(msg)
                if i % yield_every == 0:
                    await asyncio.sleep(0)
        else:
            for _ in range(n):
                cast(msg)
        count = await ref.call("count", timeout=None)
        elapsed = time.perf_counter() - t0
        assert count == n, (count, n)
    return elapsed


async def run_baseline(n: int, yield_every: int) -> float:
    """Seconds for the bare asyncio.Queue pair to move N messages and sync."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    count = 0

    async def consumer() -> None:
        nonlocal count
        while True:
            kind, msg = await queue.get()
            if kind is None:  # the syncing request: reply with the count
                msg.set_result(count)
                return
            count += 1

    task = asyncio.create_task(consumer())
    await asyncio.sleep(0)  # let the consumer start waiting, as our actor does
    put = queue.put_nowait
    item = ("cast", ("tick", 1))
    gc.collect()
    t0 = time.perf_counter()
    if yield_every:
        for i in range(1, n + 1):
            put(item)
            if i % yield_every == 0:
                await asyncio.sleep(0)
    else:
        for _ in range(n):
            put(item)
    done = loop.create_future()
    put((None, done))
    got = await done
    elapsed = time.perf_counter() - t0
    assert got == n, (got, n)
    await task
    return elapsed


async def main(args: argparse.Namespace) -> dict[str, Any]:
    ours: list[float] = []
    base: list[float] = []
    for _ in range(args.repeat):  # alternate, keep the best of each
        base.append(await run_baseline(args.n, args.yield_every))
        ours.append(await run_ours(args.n, args.yield_every, args.handler))
    n = args.n
    ours_rate = n / min(ours)
    base_rate = n / min(base)
    ratio = ours_rate / base_rate
    return {
        "bench": "cast",
        "n": n,
        "handler": args.handler,
        "yield_every": args.yield_every,
        "ours_per_s": ours_rate,
        "baseline_per_s": base_rate,
        "ratio": ratio,
        "target": TARGET,
        "ok": ratio >= TARGET,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="casts per run (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; the best counts (default 3)")
    parser.add_argument(
        "--yield-every",
        type=int,
        default=1000,
        help="sender and producer yield to the loop every K messages; 0: never (default 1000)",
    )
    parser.add_argument(
        "--handler",
        choices=sorted(HANDLERS),
        default="none",
        help="none: def returning None; keep: def returning KeepState(); async: async def returning None",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the report")
    return parser.parse_args()


def report(result: dict[str, Any]) -> None:
    print(f"cast throughput: {result['n']:,} casts, handler={result['handler']}, yield every {result['yield_every']}")
    print(f"  genstatem cast+call : {result['ours_per_s']:>12,.0f} casts/s")
    print(f"  asyncio.Queue pair  : {result['baseline_per_s']:>12,.0f} msgs/s")
    verdict = "OK" if result["ok"] else "BELOW TARGET"
    print(f"  ratio               : {result['ratio']:.3f}  (target >= {result['target']})  {verdict}")


if __name__ == "__main__":
    arguments = parse_args()
    outcome = anyio.run(main, arguments)
    if arguments.json:
        print(json.dumps(outcome))
    else:
        report(outcome)
