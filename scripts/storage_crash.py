"""Kill a process that writes to a FileStorage with SIGKILL at random points, reopen, check what is there.

    python scripts/storage_crash.py --rounds 200            # the long run
    python scripts/storage_crash.py --rounds 3 --seed 7     # about what the test suite runs
    python scripts/storage_crash.py --child DIR SEED        # the writer (the rounds start it)

Each round starts a writer process on a fresh directory. The writer runs a
random workload chosen by the seed (appends of 1 to 64 entries of 8 B to
4 KiB, truncations, compactions, term and snapshot saves), one store and one
``sync()`` per step, and prints the step's number once its sync returned.
After a random number of steps the round kills it with SIGKILL, reads what
it printed, reopens the directory and checks that the log, term and
snapshot are exactly what the same workload on a ``MemoryStorage`` had made
durable after the last step printed, or after the one in flight: everything
synced is there, and nothing that was not synced is.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import structlog

from genstatem.raft import Entry, FileStorage, MemoryStorage, Snapshot

SIZES = (8, 100, 4000)


async def workload(stores: tuple[Any, Any, Any], seed: int, steps: int, done: Callable[[int], None]) -> None:
    """Run ``steps`` steps of the workload of ``seed`` on ``stores``, calling ``done(step)`` after each sync."""
    log, terms, snapshots = stores
    rng = random.Random(seed)
    for step in range(1, steps + 1):
        roll = rng.random()
        if roll < 0.8:
            if rng.random() < 0.1 and log.last_index() >= log.first_index():
                log.truncate_from(max(log.first_index(), log.last_index() - rng.randint(0, 5)))
            first, term = log.last_index() + 1, log.last_term() + (rng.random() < 0.05)
            size = rng.choice(SIZES)
            log.append([Entry(first + i, term, rng.randbytes(size)) for i in range(rng.randint(1, 64))])
            await log.sync()
        elif roll < 0.9:
            index = rng.randint(log.first_index() - 1, log.last_index())
            log.compact(index, log.term_at(index))
            await log.sync()
        elif roll < 0.95:
            term, _ = terms.load()
            terms.save(term + 1, rng.choice([None, "a", "b"]))
            await terms.sync()
        else:
            held = snapshots.load()
            index = (held.index if held else 0) + rng.randint(0, 100)
            snapshots.save(Snapshot(index, 1, ("a", "b"), rng.randbytes(rng.choice(SIZES))))
            await snapshots.sync()
        done(step)


def state(stores: tuple[Any, Any, Any]) -> tuple[Any, ...]:
    """What a node would start from: compaction point, entries, term and vote, snapshot."""
    log, terms, snapshots = stores
    offset = log.first_index() - 1
    return offset, log.term_at(offset), log.entries(offset + 1, log.last_index() + 1), terms.load(), snapshots.load()


def expected(seed: int, steps: int) -> list[tuple[Any, ...]]:
    """The durable state after each of the first ``steps`` steps (index 0: before any), on MemoryStorage."""
    memory = MemoryStorage()
    durable: list[tuple[Any, ...]] = []

    def snap(step: int) -> None:
        now = memory.durable()
        durable.append(
            (now.compacted_index, now.compacted_term, list(now.entries), (now.term, now.voted_for), now.snapshot)
        )

    snap(0)
    anyio.run(workload, memory.open(), seed, steps, snap)
    return durable


def child(directory: str, seed: int) -> None:
    """The writer: the workload on a FileStorage, printing each step once synced, until killed."""
    storage = FileStorage(directory, node="a", cluster="crash")

    def done(step: int) -> None:
        sys.stdout.write(f"{step}\n")
        sys.stdout.flush()

    anyio.run(workload, storage.open(), seed, 10**9, done)


def crash_round(seed: int, directory: Path, *, most_steps: int = 400) -> dict[str, Any]:
    """One round: write, SIGKILL after a random number of steps, reopen, check; returns what happened.

    Raises:
        AssertionError: the reopened state is neither the last synced one nor the one being synced.
    """
    rng = random.Random(f"kill-{seed}")
    target = rng.randint(1, most_steps)
    with subprocess.Popen(
        [sys.executable, __file__, "--child", str(directory), str(seed)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    ) as writer:
        assert writer.stdout is not None
        lines = 0
        while lines < target and writer.stdout.readline():
            lines += 1
        time.sleep(rng.random() * 0.004)  # land anywhere in the next step: most often inside its fdatasync
        writer.send_signal(signal.SIGKILL)
        rest = writer.stdout.read()
    assert writer.returncode == -signal.SIGKILL, f"seed {seed}: the writer ended by itself ({writer.returncode})"
    last = lines + len(rest.splitlines())
    states = expected(seed, last + 1)
    with structlog.testing.capture_logs() as logs, FileStorage(directory, node="a", cluster="crash") as storage:
        found = state(storage.open())
    assert found in (states[last], states[last + 1]), (
        f"seed {seed}: after step {last} was synced, the directory holds neither its state nor the next one"
    )
    return {
        "seed": seed,
        "synced_steps": last,
        "in_flight_landed": found == states[last + 1] and found != states[last],
        "torn_writes_dropped": sum("torn write" in entry["event"] for entry in logs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="the first round's seed")
    parser.add_argument("--most-steps", type=int, default=400, help="kill after at most this many steps")
    parser.add_argument("--child", nargs=2, metavar=("DIR", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    started, landed, torn = time.perf_counter(), 0, 0
    for seed in range(args.seed, args.seed + args.rounds):
        with tempfile.TemporaryDirectory() as directory:
            result = crash_round(seed, Path(directory), most_steps=args.most_steps)
        landed += result["in_flight_landed"]
        torn += result["torn_writes_dropped"]
        print(result, flush=True)
    print(
        f"{args.rounds} rounds in {time.perf_counter() - started:.1f} s: all consistent; the sync in flight "
        f"had landed in {landed}, a torn write was dropped in {torn}"
    )


if __name__ == "__main__":
    main()
