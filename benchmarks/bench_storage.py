"""Raft storage: sync latency and appended entries/s, FileStorage against SQLite and the physical floor.

Three ways of making log entries durable, measured in the same run, in the
same directory (on the disk you point ``--dir`` at), each with one entry per
sync and with batches of 64 entries per sync (100-byte commands):

- ``floor``: a bare loop of ``os.write`` + ``os.fdatasync`` on an append-only
  file, writing the same number of bytes per sync as FileStorage's frame;
  no encoding, no thread. Nothing that appends to a file and flushes it can
  sync more often than this.
- ``file``: ``FileStorage`` as a RaftNode uses it: ``log.append(batch)`` then
  ``await log.sync()`` (encoding, one checksummed frame, ``write`` +
  ``fdatasync``, in the loop while flushes are seen to be shorter than a
  thread hand-off, in a worker thread otherwise). The entries are built
  before the clock starts, as a node has them before it appends.
- ``sqlite``: the candidate we measured against it, defined below: the same
  appends kept in memory and written at ``sync()`` in one transaction by a
  worker thread, on stdlib ``sqlite3`` with ``journal_mode=WAL`` and
  ``synchronous=FULL`` (entries as msgpack rows keyed by index).

And a fourth, to see what is left when the CPU is counted:

- ``floor+cpu``: the floor, with the CPU kept busy before each write for as
  long as FileStorage's own work takes per sync (measured first, in the same
  run, with its flush made free). On a disk whose flush takes a fraction of
  a millisecond this is what any store doing that work could reach: on a
  virtual machine a flush also gets slower the longer the CPU worked since
  the last one.

For each: syncs/s, p50/p99 sync latency, entries/s, and syncs/s as a
fraction of the floor's. FileStorage should reach at least 0.8 of the floor.

    python benchmarks/bench_storage.py             # 1,000 syncs per figure
    python benchmarks/bench_storage.py --n 200     # quick run
    python benchmarks/bench_storage.py --dir /mnt/ssd/tmp --json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import msgpack

from genstatem.raft import Entry, FileStorage
from genstatem.raft import _file_storage as file_storage
from genstatem.raft._file_format import _encode_entries, _frame

COMMAND = b"x" * 100
TARGET = 0.8
WARM_UP = 10


class SqliteLog:
    """The SQLite candidate's log store, as far as the benchmark needs: append, then sync in one transaction."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, term INTEGER, entry BLOB)")
        self._pending: list[tuple[int, int, bytes]] = []
        self._last = 0

    def last_index(self) -> int:
        return self._last

    def append(self, entries: list[Entry]) -> None:
        self._pending += [
            (e.index, e.term, msgpack.packb(encoded))
            for e, encoded in zip(entries, _encode_entries(entries), strict=True)
        ]
        self._last = entries[-1].index

    def _write(self, rows: list[tuple[int, int, bytes]]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO entries VALUES (?, ?, ?)", rows)
        self._db.execute("COMMIT")

    async def sync(self) -> None:
        rows, self._pending = self._pending, []
        await anyio.to_thread.run_sync(self._write, rows)

    def close(self) -> None:
        self._db.close()


def entry_batches(first: int, count: int, batch: int) -> list[list[Entry]]:
    """``count`` batches of ``batch`` entries from index ``first`` on, built before the clock starts.

    A Raft node has its entries already (built from the proposals) when it
    hands them to the store: what is measured is the store's work, from
    ``append`` to the end of ``sync``.
    """
    return [[Entry(first + k * batch + i, 1, COMMAND) for i in range(batch)] for k in range(count)]


async def timed(n: int, one_sync: Callable[[], Awaitable[None]]) -> list[float]:
    """Seconds taken by each of ``n`` calls of ``one_sync``, after ``WARM_UP`` unmeasured ones."""
    for _ in range(WARM_UP):
        await one_sync()
    took = []
    for _ in range(n):
        started = time.perf_counter()
        await one_sync()
        took.append(time.perf_counter() - started)
    return took


async def bench_floor(directory: Path, n: int, batch: int) -> list[float]:
    frame = _frame(msgpack.packb([[0, _encode_entries([Entry(1, 1, COMMAND)]) * batch]]))
    fd = os.open(directory / "floor", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:

        async def one_sync() -> None:
            os.write(fd, frame)
            os.fdatasync(fd)

        return await timed(n, one_sync)
    finally:
        os.close(fd)


async def bench_file(directory: Path, n: int, batch: int) -> list[float]:
    with FileStorage(directory / "file", node="a", cluster="bench") as storage:
        log, _, _ = storage.open()
        batches = iter(entry_batches(log.last_index() + 1, n + WARM_UP, batch))

        async def one_sync() -> None:
            log.append(next(batches))
            await log.sync()

        return await timed(n, one_sync)


async def bench_sqlite(directory: Path, n: int, batch: int) -> list[float]:
    log = SqliteLog(directory / "sqlite.db")
    try:
        batches = iter(entry_batches(log.last_index() + 1, n + WARM_UP, batch))

        async def one_sync() -> None:
            log.append(next(batches))
            await log.sync()

        return await timed(n, one_sync)
    finally:
        log.close()


def spin(seconds: float) -> None:
    """Keep the CPU busy for ``seconds``, as a store's own work between its flushes does."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


async def bench_floor_cpu(directory: Path, n: int, batch: int, cpu_seconds: float) -> list[float]:
    """The floor, with the CPU busy for FileStorage's own time before each write: what FileStorage could reach."""
    frame = _frame(msgpack.packb([[0, _encode_entries([Entry(1, 1, COMMAND)]) * batch]]))
    fd = os.open(directory / "floor", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:

        async def one_sync() -> None:
            spin(cpu_seconds)
            os.write(fd, frame)
            os.fdatasync(fd)

        return await timed(n, one_sync)
    finally:
        os.close(fd)


async def file_cpu_per_sync(root: Path, batch: int, n: int = 300) -> float:
    """FileStorage's own CPU seconds per ``append`` + ``sync``, its flush made free (the disk's share taken out)."""
    real = file_storage._fdatasync
    file_storage._fdatasync = lambda fd: None
    try:
        with (
            tempfile.TemporaryDirectory(dir=root) as directory,
            FileStorage(Path(directory) / "file", node="a", cluster="bench") as storage,
        ):
            log, _, _ = storage.open()
            batches = entry_batches(1, n + WARM_UP, batch)
            for entries in batches[:WARM_UP]:
                log.append(entries)
                await log.sync()
            started = time.process_time()
            for entries in batches[WARM_UP:]:
                log.append(entries)
                await log.sync()
            return (time.process_time() - started) / n
    finally:
        file_storage._fdatasync = real


BENCHES = {"floor": bench_floor, "file": bench_file, "sqlite": bench_sqlite}


def figures(took: list[float], batch: int) -> dict[str, float]:
    ordered = sorted(took)
    syncs = len(took) / sum(took)
    return {
        "syncs_per_s": syncs,
        "entries_per_s": syncs * batch,
        "p50_ms": statistics.median(ordered) * 1e3,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1e3,
    }


async def run(n: int, rounds: int, root: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Each figure from ``rounds`` runs of ``n // rounds`` syncs, the stores taking turns (the disk drifts)."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    for batch in (1, 64):
        cpu = await file_cpu_per_sync(root, batch)
        benches = {**BENCHES, "floor+cpu": functools.partial(bench_floor_cpu, cpu_seconds=cpu)}
        took: dict[str, list[float]] = {name: [] for name in benches}
        for turn in range(rounds):
            names = list(benches)[turn % len(benches) :] + list(benches)[: turn % len(benches)]
            for name in names:
                with tempfile.TemporaryDirectory(dir=root) as directory:
                    took[name] += await benches[name](Path(directory), max(n // rounds, 1), batch)
        row = {name: figures(times, batch) for name, times in took.items()}
        for name in benches:
            row[name]["of_floor"] = row[name]["syncs_per_s"] / row["floor"]["syncs_per_s"]
        row["file"]["cpu_us"] = cpu * 1e6
        results[f"batch {batch}"] = row
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="syncs per figure")
    parser.add_argument("--rounds", type=int, default=6, help="turns each store takes, alternating")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where to write (the disk to measure)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results: Any = anyio.run(run, args.n, args.rounds, args.dir)
    if args.json:
        print(json.dumps(results))
        return
    print(f"{args.n} syncs per figure in {args.rounds} alternating turns, 100-byte commands, in {args.dir}")
    print(f"{'':10} {'store':9} {'syncs/s':>9} {'entries/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'of floor':>9}")
    for batch, row in results.items():
        for name, f in row.items():
            print(
                f"{batch:10} {name:9} {f['syncs_per_s']:9.0f} {f['entries_per_s']:10.0f} "
                f"{f['p50_ms']:8.2f} {f['p99_ms']:8.2f} {f['of_floor']:9.2f}"
            )
    for batch, row in results.items():
        print(
            f"{batch}: FileStorage's own CPU {row['file']['cpu_us']:.0f} us per sync; the floor with the CPU busy "
            f"that long makes {row['floor+cpu']['of_floor']:.2f} of the floor's syncs, FileStorage "
            f"{row['file']['of_floor']:.2f}"
        )
    worst = min(row["file"]["of_floor"] for row in results.values())
    verdict = "meets" if worst >= TARGET else "misses"
    print(f"FileStorage {verdict} the target: at worst {worst:.2f} of the floor's syncs/s (target {TARGET})")


if __name__ == "__main__":
    main()
