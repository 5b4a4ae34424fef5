"""Supervisor restarts: crash-to-answer latency, and a crash storm.

1. **Restart latency.** One ``Supervisor`` (one_for_one) of one worker. Each
   round casts ``"crash"`` to the worker (its handler raises) and times,
   with ``time.perf_counter_ns``, until the replacement the supervisor
   started has answered a call. The worker's ``init`` hands its ref to the
   benchmark, so no polling is involved. Median and p99 over N crashes.
2. **Crash storm.** One ``Supervisor`` (one_for_one) of C workers; all are
   told to crash at once. Timed until every replacement has answered a
   call. Checked: no restart lost (C new actors, all alive, all answering,
   every old one gone), no leaked actor or task (the system holds exactly
   the supervisor and C children; after the system exits, no actor and no
   asyncio task but the benchmark's own remain).

The supervisor's intensity is set above the number of crashes, so it never
gives up. Every crash is logged as an error by design; the script drops
log events below CRITICAL so that the figures measure restarts, not logging.

    python benchmarks/bench_supervision.py                       # 10,000 crashes, storm of 1,000
    python benchmarks/bench_supervision.py --n 1000 --storm 200  # quick run
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

# Below WARNING is dropped as in the other benchmarks; so are the error reports
# of the crashes, which are the point here (see the module docstring).
structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
    cache_logger_on_first_use=True,
)


class Starts:
    """Told of every worker that has started: counts them and wakes whoever waits for a number."""

    def __init__(self) -> None:
        self.count = 0
        self.latest: gs.ActorRef | None = None
        self._want = 0
        self._reached: asyncio.Future[None] | None = None

    def started(self, ref: gs.ActorRef) -> None:
        self.count += 1
        self.latest = ref
        if self._reached is not None and self.count >= self._want and not self._reached.done():
            self._reached.set_result(None)

    async def wait_for(self, count: int) -> None:
        if self.count >= count:
            return
        self._want = count
        self._reached = asyncio.get_running_loop().create_future()
        await self._reached


class Worker(gs.GenStateMachine):
    """Tells ``Starts`` it is up; answers ``"ping"``; a ``"crash"`` cast raises."""

    def init(self, starts: Starts) -> gs.Init:  # type: ignore[override]
        starts.started(self.ref)
        return gs.Init("up", None)

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if event_type.__class__ is gs.Call:
            return gs.KeepState(actions=gs.Reply(event_type.caller, "pong"))
        if content == "crash":
            raise RuntimeError("crash")
        return None


def percentile(sorted_ns: list[int], fraction: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(len(sorted_ns) * fraction))] / 1000


async def restart_latency(n: int) -> dict[str, float]:
    starts = Starts()
    spec = gs.SupervisorSpec([gs.ChildSpec("w", (Worker, starts))], intensity=n + 1000, period=3600.0)
    async with gs.ActorSystem() as system:
        await system.start(gs.Supervisor, spec)
        for _ in range(100):  # warm up
            old = starts.latest
            assert old is not None
            old.cast("crash")
            await starts.wait_for(starts.count + 1)
        latencies = [0] * n
        clock = time.perf_counter_ns
        gc.collect()
        t0 = clock()
        for i in range(n):
            old = starts.latest
            assert old is not None
            want = starts.count + 1
            start = clock()
            old.cast("crash")
            await starts.wait_for(want)
            new = starts.latest
            assert new is not None
            assert await new.call("ping", None) == "pong"
            latencies[i] = clock() - start
        total = (clock() - t0) / 1e9
        assert len(system.actors()) == 2
    latencies.sort()
    return {
        "crashes": n,
        "per_s": n / total,
        "p50_us": percentile(latencies, 0.5),
        "p99_us": percentile(latencies, 0.99),
        "max_us": latencies[-1] / 1000,
    }


async def crash_storm(children: int) -> dict[str, Any]:
    starts = Starts()
    specs = [gs.ChildSpec(i, (Worker, starts)) for i in range(children)]
    spec = gs.SupervisorSpec(specs, intensity=children + 1, period=3600.0)
    tasks_before = len(asyncio.all_tasks())
    async with gs.ActorSystem() as system:
        sup = await system.start(gs.Supervisor, spec)
        assert sup is not None
        old = [info.ref for info in await gs.Supervisor.which_children(sup)]
        gc.collect()
        t0 = time.perf_counter()
        for ref in old:
            assert ref is not None
            ref.cast("crash")
        await starts.wait_for(2 * children)
        infos = await gs.Supervisor.which_children(sup)
        answers = await asyncio.gather(*(info.ref.call("ping", None) for info in infos if info.ref is not None))
        elapsed = time.perf_counter() - t0
        new = [info.ref for info in infos]
        lost = sum(1 for ref in new if ref is None or not ref.alive)
        assert lost == 0, f"{lost} restarts lost"
        assert answers == ["pong"] * children
        assert not set(new) & set(old)
        assert all(ref is not None and not ref.alive for ref in old)
        assert set(system.actors()) == {sup, *new}, "an actor leaked"
        assert starts.count == 2 * children, "a child was started twice"
    assert system.actors() == []
    leaked_tasks = len(asyncio.all_tasks()) - tasks_before
    assert leaked_tasks <= 0, f"{leaked_tasks} tasks leaked"
    return {"children": children, "seconds": elapsed, "restarts_per_s": children / elapsed, "lost": lost}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "bench": "supervision",
        "restart_latency": await restart_latency(args.n),
        "crash_storm": await crash_storm(args.storm),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="crashes timed one by one (default 10,000)")
    parser.add_argument("--storm", type=int, default=1_000, help="children crashing at once (default 1,000)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the report")
    return parser.parse_args()


def report(result: dict[str, Any]) -> None:
    latency, storm = result["restart_latency"], result["crash_storm"]
    print(f"restart latency: crash -> replacement answers a call, {latency['crashes']:,} crashes")
    print(
        f"  p50 {latency['p50_us']:.1f} us   p99 {latency['p99_us']:.1f} us   max {latency['max_us']:.1f} us"
        f"   ({latency['per_s']:,.0f} crash-restart-call rounds/s)"
    )
    print(f"crash storm: {storm['children']:,} children under one_for_one crash at once")
    print(
        f"  all back and answering in {storm['seconds'] * 1000:.1f} ms"
        f"   ({storm['restarts_per_s']:,.0f} restarts/s); lost restarts: {storm['lost']}; leaked actors/tasks: 0"
    )


if __name__ == "__main__":
    arguments = parse_args()
    outcome = anyio.run(main, arguments)
    if arguments.json:
        print(json.dumps(outcome))
    else:
        report(outcome)
