"""Start N idle actors in one ActorSystem: time, time per actor, memory per actor, exit time.

Two passes, so that tracemalloc does not slow the timed one:

1. timed: ``await system.start(Idle)`` N times (``start`` returns once
   ``init`` has returned, so starts are one after the other), then the time
   to leave the ``async with`` block, which stops every actor.
2. memory: the same under ``tracemalloc``; traced memory after the starts
   minus before, divided by N.

Baseline, measured in the same run: N bare asyncio tasks, each awaiting its
own future (created, then one ``sleep(0)`` so all reach their ``await``);
exit = resolve every future and gather the tasks.

    python benchmarks/bench_start.py            # 100,000 actors
    python benchmarks/bench_start.py --n 10000  # quick run

Targets: start under 3 s for 100,000 actors (scaled for another N), under
4 KiB per actor.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import time
import tracemalloc
from typing import Any

import anyio
import structlog

import genstatem as gs

structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    cache_logger_on_first_use=True,
)

TARGET_SECONDS_PER_100K = 3.0
TARGET_BYTES = 4096


class Idle(gs.GenStateMachine):
    """Starts in ``"idle"`` and waits forever."""

    def init(self, arg: Any) -> gs.Init:  # type: ignore[override]
        return gs.Init("idle", None)

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        return None


class GcClock:
    """Seconds spent in the cyclic garbage collector while active."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._t0 = 0.0

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._t0


async def ours_time(n: int) -> dict[str, float]:
    gc.collect()
    t0 = time.perf_counter()
    system = gs.ActorSystem()
    async with system:
        start = system.start
        with GcClock() as gc_clock:
            for _ in range(n):
                await start(Idle)
        t1 = time.perf_counter()
        assert len(system.actors()) == n
    t2 = time.perf_counter()
    return {"start_s": t1 - t0, "exit_s": t2 - t1, "gc_s": gc_clock.seconds}


async def ours_memory(n: int) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        async with gs.ActorSystem() as system:
            gc.collect()
            before, _ = tracemalloc.get_traced_memory()
            start = system.start
            for _ in range(n):
                await start(Idle)
            await asyncio.sleep(0)
            gc.collect()
            after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (after - before) / n


async def _bare(fut: asyncio.Future[None]) -> None:
    await fut


async def baseline_run(n: int, trace: bool) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    gc.collect()
    if trace:
        tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    t0 = time.perf_counter()
    with GcClock() as gc_clock:
        futures = [loop.create_future() for _ in range(n)]
        tasks = [loop.create_task(_bare(fut)) for fut in futures]
        await asyncio.sleep(0)  # every task runs up to its await
    t1 = time.perf_counter()
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    if trace:
        tracemalloc.stop()
    t2 = time.perf_counter()
    for fut in futures:
        fut.set_result(None)
    await asyncio.gather(*tasks)
    t3 = time.perf_counter()
    return {"start_s": t1 - t0, "exit_s": t3 - t2, "gc_s": gc_clock.seconds, "bytes": (after - before) / n}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    n = args.n
    base_t = await baseline_run(n, trace=False)
    ours_t = await ours_time(n)
    base_m = (await baseline_run(n, trace=True))["bytes"]
    ours_m = await ours_memory(n)
    target_s = TARGET_SECONDS_PER_100K * n / 100_000
    return {
        "bench": "start",
        "n": n,
        "ours": {**ours_t, "per_actor_us": ours_t["start_s"] / n * 1e6, "bytes": ours_m},
        "baseline": {**base_t, "per_actor_us": base_t["start_s"] / n * 1e6, "bytes": base_m},
        "ratio": base_t["start_s"] / ours_t["start_s"],
        "target_s": target_s,
        "target_bytes": TARGET_BYTES,
        "ok": ours_t["start_s"] < target_s and ours_m < TARGET_BYTES,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="actors to start (default 100,000)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the report")
    return parser.parse_args()


def report(result: dict[str, Any]) -> None:
    o, b = result["ours"], result["baseline"]
    print(f"start {result['n']:,} idle actors in one ActorSystem")
    print(f"  {'':24}{'start s':>9}{'(gc s)':>9}{'us/actor':>10}{'B/actor':>9}{'exit s':>9}")
    for label, r in (("genstatem start", o), ("bare task + future", b)):
        print(
            f"  {label:24}{r['start_s']:>9.3f}{r['gc_s']:>9.3f}{r['per_actor_us']:>10.2f}"
            f"{r['bytes']:>9,.0f}{r['exit_s']:>9.3f}"
        )
    print("  (gc s: the part of the start time spent in Python's cyclic garbage collector)")
    print(f"  ratio (baseline/ours start time): {result['ratio']:.3f}")
    time_ok = o["start_s"] < result["target_s"]
    mem_ok = o["bytes"] < result["target_bytes"]
    print(f"  start time target < {result['target_s']:.2f} s: {'OK' if time_ok else 'MISSED'}")
    print(f"  memory target < {result['target_bytes']:,} B/actor: {'OK' if mem_ok else 'MISSED'}")


if __name__ == "__main__":
    arguments = parse_args()
    outcome = anyio.run(main, arguments)
    if arguments.json:
        print(json.dumps(outcome))
    else:
        report(outcome)
