"""Every script in benchmarks/ imports, and the storage benchmark runs end to end at a tiny size.

The benchmarks are not timed tests: they print figures for a person to read.
What is checked here is only that they do not rot as the code they measure
changes (a private name they import moved, say). ``test_bench_cluster.py``
covers the cluster benchmark further.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@pytest.fixture(autouse=True)
def restore_structlog() -> Iterator[None]:
    """Put back the structlog configuration: most benchmarks quiet the logs as they are imported."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


# A script named _*.py is a peer's program that a benchmark starts in its own process, with the ``bench`` extra.
@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_")))
def test_every_benchmark_imports(script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing the script (as ``python benchmarks/<script>`` would load it) raises nothing."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"_benchmark_{script[:-3]}", BENCHMARKS / script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    assert module.__doc__, f"{script} says what it measures in its docstring"


def test_the_storage_benchmark_runs_and_reports_every_store(tmp_path: Path) -> None:
    """A tiny run of bench_storage.py gives syncs/s and the fraction of the floor for each store and batch size."""
    tiny = ["--n", "12", "--rounds", "2", "--dir", str(tmp_path), "--json"]
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_storage.py"), *tiny],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    results = json.loads(done.stdout)
    assert set(results) == {"batch 1", "batch 64"}
    for row in results.values():
        assert set(row) == {"floor", "file", "sqlite", "floor+cpu"}
        assert row["file"]["cpu_us"] > 0
        assert row["floor"]["of_floor"] == 1.0
        assert all(figures["syncs_per_s"] > 0 and figures["of_floor"] > 0 for figures in row.values())
