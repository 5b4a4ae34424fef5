"""Run Raft under the nemesis for many seeds, or replay one seed with its trace.

    python scripts/raft_nemesis.py --seeds 0:5000 --nodes 5 --jobs 2
    python scripts/raft_nemesis.py --replay 1234 --nodes 5
    python scripts/raft_nemesis.py --replay 25 --nodes 3 --fault-time 5:15   # a seed of the CI's tests
    python scripts/raft_nemesis.py --storage memory --value-bytes 20000   # in memory, with large values

Each seed is a cluster under random partitions, message loss, duplication,
reordering, delays and crashes, with clients writing and reading; its
invariants are checked on every step, then liveness after the faults heal,
then the linearizability of the clients' history (see
``genstatem.testing.run_nemesis``). A seed is a pure function of its number:
``--replay`` reruns it exactly and prints the tail of its trace, the
nemesis's faults, and the failure with the linearizability explanation.

The nodes store their state on disk by default (``SimulatedDisk``: real
files on a tmpfs, with what was being written at a crash torn), so every
crash runs ``FileStorage``'s recovery; ``--storage memory`` keeps it in
``MemoryStorage`` instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import attrs

from genstatem.testing import DiskStatistics
from genstatem.testing._nemesis_run import DEFAULT_FAULT_TIME, NemesisReport, run_nemesis


def _run(job: tuple[int, dict[str, Any]]) -> dict[str, Any]:
    seed, options = job
    started = time.perf_counter()
    report = run_nemesis(seed, **options)
    return {
        "seed": seed,
        "error": report.error,
        "verdict": report.linearizability.verdict if report.linearizability is not None else None,
        "operations": len(report.history),
        "leader_time": report.leader_time,
        "settle_time": report.settle_time,
        "wall": time.perf_counter() - started,
        "replay": report.replay_hint(),
        "disk": attrs.astuple(report.disk) if report.disk is not None else None,
    }


def _seeds(text: str) -> range:
    start, _, stop = text.partition(":")
    return range(int(start), int(stop)) if stop else range(int(start), int(start) + 1)


def _span(text: str) -> tuple[float, float]:
    low, _, high = text.partition(":")
    return float(low), float(high or low)


def run_many(seeds: range, jobs: int, options: dict[str, Any]) -> int:
    """Run every seed, print each failure as it is found and a summary; return the number of failures."""
    started = time.perf_counter()
    disk = [0] * len(attrs.fields(DiskStatistics))
    failures: list[dict[str, Any]] = []
    verdicts: Counter[str | None] = Counter()
    worst_settle = 0.0
    worst_leader = 0.0
    operations = 0
    work = [(seed, options) for seed in seeds]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for done, result in enumerate(pool.map(_run, work, chunksize=8), 1):
            verdicts[result["verdict"]] += 1
            operations += result["operations"]
            worst_leader = max(worst_leader, result["leader_time"] or 0.0)
            worst_settle = max(worst_settle, result["settle_time"] or 0.0)
            if result["disk"] is not None:
                disk = [total + count for total, count in zip(disk, result["disk"], strict=True)]
            if result["error"] is not None:
                failures.append(result)
                print(f"FAIL seed {result['seed']}: {result['error']}", flush=True)
                print(f"  replay: {result['replay']}", flush=True)
            if done % 250 == 0:
                print(f"... {done}/{len(work)} seeds, {len(failures)} failing", flush=True)
    wall = time.perf_counter() - started
    print(
        f"{len(work)} seeds of {options['nodes']} nodes in {wall:.1f} s ({jobs} processes), storage"
        f" {options['storage']}, values up to {options['value_bytes'] or 'a few'} bytes: {len(failures)} failing;"
        f" linearizability verdicts {dict(verdicts)}; {operations} client operations;"
        f" slowest leader after heal {worst_leader:.2f} s, slowest settle {worst_settle:.2f} s (virtual)"
    )
    if options["storage"] == "disk":
        print(f"disks: {DiskStatistics(*disk)}")
    return len(failures)


def replay(seed: int, tail: int, options: dict[str, Any]) -> int:
    """Rerun one seed, print what happened and why it failed; return 1 if it failed."""
    report = run_nemesis(seed, keep_trace=True, **options)
    again = run_nemesis(seed, keep_trace=True, **options)
    for record in report.trace[-tail:]:
        print(f"{record.time:12.6f} {record.kind:10} {record.node:8} {record.peer:8} {record.detail}")
    print()
    print(f"seed {seed}: {len(report.trace)} trace records (replayed identically: {report.trace == again.trace})")
    print("nemesis:")
    for step in report.steps:
        print(f"  {step}")
    _print_outcome(report)
    return 0 if report.ok else 1


def _print_outcome(report: NemesisReport) -> None:
    print(f"clients: {report.statistics}; {len(report.history)} operations in the history")
    print(f"invariant checks: {report.invariants}")
    if report.disk is not None:
        print(f"disks: {report.disk}")
    print(f"faults healed at t={report.heal_time:.3f}", end="; ")
    print(f"leader after {_seconds(report.leader_time)}, every operation done after {_seconds(report.settle_time)}")
    if report.linearizability is not None and report.linearizability.verdict != "illegal":
        print(report.linearizability.explain())
    print("PASS" if report.ok else f"FAIL seed {report.seed}: {report.error}")


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} virtual s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0:1000", help="a range START:STOP, or one seed (default 0:1000)")
    parser.add_argument("--nodes", type=int, default=3, help="Raft nodes per cluster (default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="processes to run seeds in (default 2)")
    parser.add_argument("--replay", type=int, metavar="SEED", help="rerun one seed and print its trace")
    parser.add_argument("--tail", type=int, default=80, help="trace records to print with --replay (default 80)")
    parser.add_argument(
        "--fault-time", type=_span, default=DEFAULT_FAULT_TIME, help="MIN:MAX virtual seconds of faults (default 10:30)"
    )
    parser.add_argument("--check-timeout", type=float, default=5.0, help="seconds for each linearizability check")
    parser.add_argument(
        "--storage",
        choices=("disk", "memory"),
        default="disk",
        help="disk: SimulatedDisk, real files torn at crashes (the default); memory: MemoryStorage",
    )
    parser.add_argument(
        "--value-bytes",
        type=int,
        metavar="N",
        help="pad a quarter of the values up to N bytes, and snapshot every few entries (large entries and snapshots)",
    )
    args = parser.parse_args(argv)
    options: dict[str, Any] = {
        "nodes": args.nodes,
        "fault_time": args.fault_time,
        "check_timeout": args.check_timeout,
        "storage": args.storage,
        "value_bytes": args.value_bytes,
    }
    if args.replay is not None:
        return replay(args.replay, args.tail, options)
    failures = run_many(_seeds(args.seeds), args.jobs, options)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
