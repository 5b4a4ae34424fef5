"""A short run of scripts/raft_leader_crashes.py: the leader of a loaded cluster crashes, nothing is lost."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.anyio

SCRIPT = Path(__file__).parents[2] / "scripts" / "raft_leader_crashes.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("raft_leader_crashes", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_followers_live_through_leader_crashes_under_load_and_no_write_is_lost() -> None:
    """Four leader crashes with eight clients writing: followers survive, a new leader comes, every write reads back."""
    lines: list[str] = []
    figures = await load_script().run(4, writers=8, report=lines.append)
    assert figures["crashes"] == 4
    assert figures["checked"] == figures["acknowledged"] >= 4 * 8
    assert len(lines) == 5
