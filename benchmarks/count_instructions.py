"""Instructions per cast and per call, counted by valgrind's callgrind: a figure the machine's load cannot move.

Wall-clock benchmarks swing by tens of percent on a shared machine; an
instruction count does not. This runs a small cast and call workload twice
(two sizes) under ``valgrind --tool=callgrind`` and prints the difference
per operation, for this tree's ``src`` or another one given with ``--src``,
so two versions can be compared in one run:

    python benchmarks/count_instructions.py --src /tmp/base/src --src src

Needs ``valgrind`` on PATH (Debian: ``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

WORKLOAD = """
import sys
from typing import Any
import anyio
import genstatem as gs

class M(gs.GenStateMachine):
    async def init(self, arg: Any) -> gs.Init:
        return gs.Init("s", 0)
    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Call):
            return gs.KeepState(actions=gs.Reply(event_type.caller, content))
        return None

async def main(n: int, kind: str) -> None:
    async with gs.ActorSystem() as system:
        ref = await system.start(M)
        if kind == "cast":
            for i in range(n):
                ref.cast(i)
                if i % 1000 == 999:
                    await anyio.sleep(0)
            await ref.call("sync")
        else:
            for i in range(n):
                await ref.call(i)

anyio.run(main, int(sys.argv[1]), sys.argv[2])
"""


def instructions(src: Path, n: int, kind: str, script: Path) -> int:
    """Instructions callgrind counts for ``n`` operations of ``kind``, start-up included."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, str(script), str(n)]
    done = subprocess.run([*command, kind], env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", type=Path, help="a source tree to count (repeatable)")
    parser.add_argument("--small", type=int, default=10_000, help="operations in the small run")
    parser.add_argument("--large", type=int, default=30_000, help="operations in the large run")
    options = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not on PATH: nothing counted (apt-get install valgrind)")
        return 1
    trees = options.src or [Path(__file__).resolve().parents[1] / "src"]
    script = Path(os.environ.get("TMPDIR", "/tmp")) / "genstatem_count_instructions.py"
    script.write_text(WORKLOAD)
    per_op: dict[tuple[Path, str], float] = {}
    for src in trees:
        for kind in ("cast", "call"):
            small = instructions(src, options.small, kind, script)
            large = instructions(src, options.large, kind, script)
            per_op[(src, kind)] = (large - small) / (options.large - options.small)
            print(f"{src}: {per_op[(src, kind)]:,.0f} instructions per {kind}")
    if len(trees) > 1:
        base = trees[0]
        for src in trees[1:]:
            for kind in ("cast", "call"):
                print(f"{src} / {base}, {kind}: {per_op[(src, kind)] / per_op[(base, kind)]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
