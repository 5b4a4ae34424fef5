"""The supervised workers example (examples/supervised_workers.py) tells its story."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ..helpers import load_example

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "supervised_workers.py"

STORY = [
    "the tree:",
    "counter: 3",
    "counter crashed: RuntimeError('the counter overflowed')",
    "(3 of 3 children running)",
    "counter after the restart: 0",
    "job crashed: RuntimeError('job resize failed')",
    "resize: running",
    "upload: running",
    "stopped the upload job for good: ChildCounts(specs=1, active=1, supervisors=0, workers=1)",
    "stopped, in order: job resize, greeter, counter",
]


def assert_story(output: str) -> None:
    lines = output.splitlines()
    found = [next((i for i, line in enumerate(lines) if part in line), -1) for part in STORY]
    assert -1 not in found, output
    assert found == sorted(found), output


@pytest.mark.anyio
async def test_the_example_restarts_what_crashed(capsys: pytest.CaptureFixture[str]) -> None:
    """main() shows the counter and a job crash and come back, and the tree stop leaves first."""
    example = load_example("supervised_workers")
    with capture_logs():
        await example.main()
    assert_story(capsys.readouterr().out)


def test_the_example_runs_as_a_script() -> None:
    """python examples/supervised_workers.py prints the story, nothing on stderr, and exits 0."""
    done = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert_story(done.stdout)
