"""Run every core benchmark, one after the other, and print a summary table.

Each benchmark runs in its own interpreter (``--json``), so that the memory
and garbage left by one does not weigh on the next.

    python benchmarks/run_all.py           # full sizes (about two minutes)
    python benchmarks/run_all.py --quick   # a tenth of the sizes
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# script, full size, extra arguments
BENCHMARKS: list[tuple[str, int, list[str]]] = [
    ("bench_cast.py", 1_000_000, []),
    ("bench_call.py", 200_000, []),
    ("bench_start.py", 100_000, []),
]


def run(script: str, n: int, extra: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(HERE / script), "--n", str(n), "--json", *extra]
    print(f"$ {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{script} failed:\n{done.stderr}")
    print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(measure, genstatem, baseline, ratio, target, verdict) lines of one result."""
    ok = "OK" if result["ok"] else "MISSED"
    n = f"{result['n']:,}"
    if result["bench"] == "cast":
        return [
            (
                f"cast throughput ({n})",
                f"{result['ours_per_s']:,.0f}/s",
                f"{result['baseline_per_s']:,.0f}/s",
                f"{result['ratio']:.2f}",
                f">= {result['target']}",
                ok,
            )
        ]
    if result["bench"] == "call":
        o, b = result["ours"], result["baseline"]
        return [
            (
                f"call round trips ({n})",
                f"{o['per_s']:,.0f}/s",
                f"{b['per_s']:,.0f}/s",
                f"{result['ratio']:.2f}",
                f">= {result['target']}",
                ok,
            ),
            (
                "  call p50 / p99",
                f"{o['p50_us']:.1f} / {o['p99_us']:.1f} us",
                f"{b['p50_us']:.1f} / {b['p99_us']:.1f} us",
                "",
                "",
                "",
            ),
        ]
    o, b = result["ours"], result["baseline"]
    time_ok = "OK" if o["start_s"] < result["target_s"] else "MISSED"
    mem_ok = "OK" if o["bytes"] < result["target_bytes"] else "MISSED"
    return [
        (
            f"start idle actors ({n})",
            f"{o['start_s']:.2f} s ({o['per_actor_us']:.1f} us each)",
            f"{b['start_s']:.2f} s",
            f"{result['ratio']:.2f}",
            f"< {result['target_s']:.2f} s",
            time_ok,
        ),
        ("  of which cyclic GC", f"{o['gc_s']:.2f} s", f"{b['gc_s']:.2f} s", "", "", ""),
        (
            "  memory per actor",
            f"{o['bytes']:,.0f} B",
            f"{b['bytes']:,.0f} B",
            "",
            f"< {result['target_bytes']:,} B",
            mem_ok,
        ),
        ("  system exit (stop all)", f"{o['exit_s']:.2f} s", f"{b['exit_s']:.2f} s", "", "", ""),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of the full sizes")
    args = parser.parse_args()
    table: list[tuple[str, str, str, str, str, str]] = []
    for script, n, extra in BENCHMARKS:
        table.extend(rows(run(script, n // 10 if args.quick else n, extra)))
    header = ("measure", "genstatem", "asyncio baseline", "ratio", "target", "")
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    print()
    for row in [header, *table]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if args.quick:
        print("\n(--quick: a tenth of the sizes; the start target is scaled to match)")


if __name__ == "__main__":
    main()
