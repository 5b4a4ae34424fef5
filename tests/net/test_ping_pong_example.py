"""The ping-pong example: the same actor code in one process and across OS processes over TCP."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "ping_pong.py"


@pytest.mark.parametrize("mode", ["memory", "tcp"])
def test_two_nodes_ping_each_other(mode: str) -> None:
    """Both nodes send pings and get every pong back, in memory and over TCP between two processes."""
    args = [sys.executable, str(EXAMPLE)] + (["memory"] if mode == "memory" else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("node ")]
    assert [line.split(":")[0] for line in lines] == ["node a", "node b"]
    for line in lines:
        stats = ast.literal_eval(line.split(": ", 1)[1])
        assert stats["pings"] >= 3
        assert stats["pongs"] >= stats["pings"] - 2  # the last pings may still be in flight
        assert stats["pinged_by"] >= 3
