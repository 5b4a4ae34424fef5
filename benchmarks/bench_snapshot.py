"""Raft snapshots: how long taking and installing a snapshot of a large machine holds up a node's event loop.

Taking a snapshot is synchronous: ``StateMachine.snapshot()`` and the
encoding of the sessions run in the node's actor, on the event loop, and
nothing else on that loop runs meanwhile (the write to disk then goes to a
worker thread). Installing one on a follower is as synchronous:
``StateMachine.restore()`` and the decoding. Both are proportional to the
machine's size. This measures them for a ``KVMachine`` of ``--mb`` MB
(1 KB values), through the node's own ``Applier``, and the CRC-32 a leader
computes once per snapshot it streams.

    python benchmarks/bench_snapshot.py              # a 10 MB machine, best of 5
    python benchmarks/bench_snapshot.py --mb 100 --json
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from typing import Any

import anyio

from genstatem.raft import Entry, KVMachine, MemoryStorage
from genstatem.raft._apply import Applier
from genstatem.raft._membership import Membership


async def measure(mb: int, runs: int) -> dict[str, Any]:
    keys = mb * 1000
    log_store, _, snapshot_store = MemoryStorage().open()
    applier = Applier(KVMachine(), log_store, snapshot_store)
    members = Membership(("a", "b", "c"))
    entries = [
        Entry(n + 1, 1, KVMachine.put(f"key{n:08d}", "v" * 1000), client=f"c{n % 100}", seq=n + 1) for n in range(keys)
    ]
    log_store.append(entries)
    for entry in entries:
        applier.apply(entry)
    take, install, crc = [], [], []
    for run in range(runs):
        if run:  # one more entry, so that there is something new to snapshot
            log_store.append([Entry(log_store.last_index() + 1, 1, b"", kind="noop")])
        index = log_store.last_index()
        start = time.perf_counter()
        await applier.maybe_snapshot(index, members, every=1, max_bytes=None)
        take.append(time.perf_counter() - start)
        snapshot = snapshot_store.load()
        assert snapshot is not None
        assert snapshot.index == index
        start = time.perf_counter()
        zlib.crc32(snapshot.data)
        crc.append(time.perf_counter() - start)
        replica = Applier(KVMachine(), *MemoryStorage().open()[::2])
        start = time.perf_counter()
        replica.restore(snapshot)
        install.append(time.perf_counter() - start)
    return {
        "machine_mb": round(len(snapshot.data) / 1e6, 1),
        "keys": keys,
        "take_ms": round(min(take) * 1000, 1),
        "install_ms": round(min(install) * 1000, 1),
        "crc_ms": round(min(crc) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=10, help="the machine's size, in MB of 1 KB values")
    parser.add_argument("--runs", type=int, default=5, help="best of this many")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    result = anyio.run(measure, args.mb, args.runs)
    if args.json:
        print(json.dumps(result))
        return
    print(f"KVMachine of {result['keys']:,} keys, snapshot {result['machine_mb']} MB (best of {args.runs}):")
    print(f"  take a snapshot (snapshot() + encode, on the loop): {result['take_ms']} ms")
    print(f"  install it on a follower (decode + restore()):      {result['install_ms']} ms")
    print(f"  CRC-32 the leader computes once per streamed one:   {result['crc_ms']} ms")


if __name__ == "__main__":
    main()
