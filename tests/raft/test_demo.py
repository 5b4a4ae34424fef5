"""The Raft demo that ``python -m genstatem`` runs: its story, told in full, and its exit status."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from structlog.testing import capture_logs

from genstatem import __main__ as entry_point
from genstatem._demo_raft import run

ELECTED = re.compile(r"^ *[\d.]+s  (\w+) is elected leader of term (\d+)", re.MULTILINE)


def check_story(out: str) -> None:
    """The story shows boot, election, writes and reads, the crash, a new leader, the restart, and no loss."""
    for member in "abc":
        assert re.search(rf"^ *[\d.]+s  {member}: follower of term 0, 0 log entries$", out, re.MULTILINE), out
    elections = ELECTED.findall(out)
    assert len(elections) == 2, out
    (first, first_term), (second, second_term) = elections
    assert second != first, out
    assert int(second_term) > int(first_term) >= 1, out
    expected = [
        f"{first} is elected leader of term {first_term}",
        "put apple=red -> 'ok'",
        "cas apple: red -> green -> True",
        "read apple -> 'green'",
        f"== 4. The leader, {first}, crashes",
        f"{first} is gone",
        f"{second} is elected leader of term {second_term}",
        "put elderberry=purple -> 'ok'",
        "put grape=green -> 'ok'",
        f"{first} is back: follower of term {second_term}",
        "read elderberry -> 'purple'",
        "read honeydew -> 'pale green'",
        "the logs of a, b, c hold the same",
        "all 7 acknowledged writes read back: none lost",
    ]
    found = [out.find(part) for part in expected]
    assert -1 not in found, (expected[found.index(-1)], out)
    assert found == sorted(found), out
    assert "LOST" not in out, out


def test_python_m_genstatem_tells_the_raft_story() -> None:
    """``python -m genstatem`` runs the Raft demo: elected, writes acknowledged, crash, new leader, nothing lost."""
    done = subprocess.run(
        [sys.executable, "-m", "genstatem"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    check_story(done.stdout)
    assert done.stderr == ""


@pytest.fixture
def anyio_backend(virtual_anyio_backend: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """In-process runs of the demo are on virtual time: the story cannot depend on the machine's speed."""
    return virtual_anyio_backend


@pytest.mark.anyio
async def test_the_story_is_the_same_on_each_backend(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo's ``run`` tells the whole story on asyncio and on trio alike."""
    with capture_logs():
        await run()
    check_story(capsys.readouterr().out)


def test_the_demo_main_is_importable_and_is_the_default() -> None:
    """``genstatem._demo_raft.main`` is importable, and the command line runs it unless told ``code-lock``."""
    from genstatem._demo_raft import main

    assert callable(main)
    assert entry_point.DEMOS[0] == "raft"
    with pytest.raises(SystemExit) as exited:
        entry_point.main(["no-such-demo"])
    assert exited.value.code == 2
