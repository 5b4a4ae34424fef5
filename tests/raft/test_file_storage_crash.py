"""A real process writing to a FileStorage, killed with SIGKILL: what it synced is there, nothing else.

The longer run: ``python scripts/storage_crash.py --rounds 200``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..helpers import load_script


@pytest.mark.parametrize("seed", [101, 102, 103])
def test_a_writer_killed_with_sigkill_reopens_at_its_last_sync_or_the_one_in_flight(seed: int, tmp_path: Path) -> None:
    """After SIGKILL mid-workload, the directory holds the state of the last sync returned or of the one running."""
    result = load_script("storage_crash").crash_round(seed, tmp_path, most_steps=150)
    assert result["synced_steps"] >= 1
