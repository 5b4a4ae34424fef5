"""benchmarks/bench_cluster.py: its statistics, its report, and its genstatem part end to end at a tiny size.

The full run (three systems, 1 to 256 clients) is ``python benchmarks/bench_cluster.py``;
here only what keeps the harness from rotting, without etcd or PySyncObj.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import anyio
import pytest
import structlog

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "bench_cluster.py"


@pytest.fixture(autouse=True)
def restore_structlog() -> Iterator[None]:
    """Put back the structlog configuration that joining the cluster (``open_cluster``) changes for the process."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The benchmark script, imported from ``benchmarks/`` (it is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_cluster", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_cluster"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def sample(bench: ModuleType, clients: int, latencies_ms: list[float], seconds: float) -> object:
    """A load cell with these latencies."""
    return bench.Sample(clients, [int(ms * 1e6) for ms in latencies_ms], seconds)


def test_percentiles_are_nearest_rank_and_nan_when_nothing_was_answered(bench: ModuleType) -> None:
    """p50 and p99 of 1..100 are 50 and 99; of one value, that value; of none, nan."""
    values = list(range(100, 0, -1))
    assert bench.percentile(values, 0.5) == 50
    assert bench.percentile(values, 0.99) == 99
    assert bench.percentile([7], 0.99) == 7
    assert math.isnan(bench.percentile([], 0.5))


def test_the_table_has_a_row_per_system_and_client_count_and_no_reads_where_there_are_none(
    bench: ModuleType,
) -> None:
    """Rows carry puts/s and p50/p99 in ms; a system without linearizable reads shows n/a for them."""
    ours = bench.Result(
        "genstatem", puts={1: sample(bench, 1, [2.0] * 10, 0.02)}, reads={1: sample(bench, 1, [1.0], 1)}
    )
    peer = bench.Result("pysyncobj", puts={1: sample(bench, 1, [100.0] * 5, 0.5)})
    rows = bench.table([ours, peer]).splitlines()
    assert rows[2].startswith("| genstatem | 1 | 500 | 2 | 2 | 1 | 1 | 1 | 0 |")
    assert rows[3].startswith("| pysyncobj | 1 | 10 | 100 | 100 | n/a | n/a | n/a | 0 |")


def test_each_target_is_reported_met_or_short_with_its_ratio(bench: ModuleType) -> None:
    """Throughput at 64 clients, sequential put p50, read p50, failover and PySyncObj's best each get a verdict."""
    ours = bench.Result(
        "genstatem",
        puts={1: sample(bench, 1, [4.0], 1), 64: sample(bench, 64, [1.0] * 100, 1)},
        reads={1: sample(bench, 1, [1.4], 1)},
        failovers=[1.0, 5.0],
        election_timeout_max=2.0,
    )
    etcd = bench.Result(
        "etcd",
        puts={1: sample(bench, 1, [2.0], 1), 64: sample(bench, 64, [1.0] * 50, 1)},
        reads={1: sample(bench, 1, [1.0], 1)},
    )
    peer = bench.Result("pysyncobj", puts={1: sample(bench, 1, [1.0], 1), 64: sample(bench, 64, [1.0] * 200, 1)})
    lines = bench.ratio_lines([ours, etcd, peer])
    assert lines == [
        "genstatem/etcd puts/s at 64 clients: 2.00x (target >= 1.0: met)",
        "genstatem/etcd put p50 at 1 client(s): 2.00x (target <= 1.0: SHORT)",
        "genstatem/etcd read p50 at 1 client(s): 1.40x (target <= 1.5: met)",
        "genstatem failover, worst of 2: 5.00 s (target <= 4 s: SHORT)",
        "genstatem best puts/s (100 at 64 clients) / pysyncobj best (200 at 64 clients): 0.50x (target >= 1.0: SHORT)",
    ]


def test_a_missing_peer_is_named_and_left_out(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an etcd binary, etcd is not measured and the report says why."""
    monkeypatch.setitem(sys.modules, "httpx", types.ModuleType("httpx"))  # the client is there, the server is not
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    plan = bench.Plan(systems=["etcd"], clients=[1], count=1, seconds=1.0, failovers=0)
    results, skipped = anyio.run(bench.run, plan)
    assert results == []
    assert "no etcd binary on PATH" in skipped["etcd"]
    assert "etcd: not measured: no etcd binary on PATH" in bench.report(results, skipped, plan)


def test_a_missing_client_package_is_named_and_left_out(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the ``bench`` extra's httpx, etcd is not measured and the report names the package to install."""
    monkeypatch.setitem(sys.modules, "httpx", None)
    plan = bench.Plan(systems=["etcd"], clients=[1], count=1, seconds=1.0, failovers=0)
    results, skipped = anyio.run(bench.run, plan)
    assert results == []
    assert skipped["etcd"] == "Python package httpx missing (pip install -e '.[bench]')"


def test_the_script_explains_itself_without_the_bench_extra() -> None:
    """``--help`` runs with httpx, matplotlib and pysyncobj unimportable, and names its options."""
    hide = "import runpy, sys; sys.modules.update(httpx=None, matplotlib=None, pysyncobj=None); "
    run = f"sys.argv = [{str(SCRIPT)!r}, '--help']; runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", hide + run], capture_output=True, text=True, timeout=60, check=True)
    assert "--quick" in done.stdout
    assert "--systems" in done.stdout


@pytest.mark.timeout(180)
def test_the_genstatem_part_measures_puts_reads_and_a_failover(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three genstatem processes at a tiny size: every put and read answered, one leader SIGKILLed and replaced."""
    figures = tmp_path / "figures.json"
    arguments = ["--systems", "genstatem", "--clients", "1", "4", "--count", "20", "--seconds", "5"]
    assert bench.main([*arguments, "--failovers", "1", "--no-plot", "--json", str(figures)]) == 0
    measured = json.loads(figures.read_text())["genstatem"]
    for kind in ("puts", "reads"):
        assert [cell["n"] for cell in measured[kind].values()] == [20, 20]
        assert all(cell["errors"] == 0 and cell["p50_ms"] > 0 for cell in measured[kind].values())
    assert len(measured["failovers_s"]) == 1
    assert 0 < measured["failovers_s"][0] < bench.SETTLE
    assert "| genstatem | 4 |" in capsys.readouterr().out
