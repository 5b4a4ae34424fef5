"""A short run of scripts/raft_leader_crashes.py: the leader of a loaded cluster crashes, nothing is lost."""

from __future__ import annotations

import pytest

from ..helpers import load_script

pytestmark = pytest.mark.anyio


async def test_followers_live_through_leader_crashes_under_load_and_no_write_is_lost() -> None:
    """Four leader crashes with eight clients writing: followers survive, a new leader comes, every write reads back."""
    lines: list[str] = []
    figures = await load_script("raft_leader_crashes").run(4, writers=8, report=lines.append)
    assert figures["crashes"] == 4
    assert figures["checked"] == figures["acknowledged"] >= 4 * 8
    assert len(lines) == 5
