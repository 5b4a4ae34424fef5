"""A short run of scripts/net_soak.py: mixed load between two TCP nodes leaves memory and node tables flat.

The long run: ``python scripts/net_soak.py --seconds 600``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from structlog.testing import capture_logs

pytestmark = pytest.mark.anyio

SCRIPT = Path(__file__).parents[2] / "scripts" / "net_soak.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("net_soak", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_mixed_load_between_two_tcp_nodes_leaves_memory_flat() -> None:
    """Calls, unanswered calls, casts, monitors, links, crashes and restarts: tables empty each round, no growth."""
    lines: list[str] = []
    with capture_logs():
        figures = await load_script().run(2.5, max_growth_mib=1.0, workers=6, casts=500, report=lines.append)
    assert figures["ok"], lines
    assert figures["rounds"] >= 3
    assert figures["heard"]["downs"] == figures["rounds"] * 6
    assert figures["peer_records"] == 1
