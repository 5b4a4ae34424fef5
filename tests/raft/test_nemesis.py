"""Raft under a nemesis: hundreds of seeds of partitions, lost/duplicated/late messages, crashes and
membership changes, with clients writing and reading. Each seed must keep every invariant on every step,
recover within ``LIVENESS_BOUND`` virtual seconds of the heal, and leave a linearizable history.

Part of the seeds run with the disk in the loop (``storage="disk"``): every crash goes through
``FileStorage``'s files and recovery, and crashes in the middle of a write tear it.

A failing seed replays exactly: ``python scripts/raft_nemesis.py --replay SEED --nodes N --fault-time 5:15
--storage memory|disk``.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from genstatem.raft import RaftNode
from genstatem.testing import DiskStatistics, NemesisReport, run_nemesis
from genstatem.testing._nemesis_run import LIVENESS_BOUND

CI_FAULT_TIME = (5.0, 15.0)  # virtual seconds of faults per seed (the script runs longer ones)
THREE_NODE_BATCHES = [range(start, start + 20) for start in range(0, 140, 20)]
FIVE_NODE_BATCHES = [range(start, start + 15) for start in range(1000, 1045, 15)]
THREE_NODE_DISK_BATCHES = [range(start, start + 20) for start in range(140, 220, 20)]
FIVE_NODE_DISK_BATCHES = [range(start, start + 15) for start in range(1045, 1075, 15)]
LARGE_VALUE_BYTES = 200_000  # snapshots of a few keys pass the 1 MiB frame limit: streamed in chunks


def _failure(report: NemesisReport) -> str:
    return (
        f"seed {report.seed} ({report.nodes} nodes) failed: {report.error}\n"
        f"replay it with: {report.replay_hint()}\n"
        "nemesis: " + "; ".join(report.steps)
    )


def _run_batch(seeds: range, nodes: int, **options: Any) -> list[NemesisReport]:
    reports = [run_nemesis(seed, nodes=nodes, fault_time=CI_FAULT_TIME, **options) for seed in seeds]
    for report in reports:
        assert report.ok, _failure(report)
        assert report.leader_time is not None, _failure(report)
        assert report.settle_time is not None, _failure(report)
        assert max(report.leader_time, report.settle_time) <= LIVENESS_BOUND, _failure(report)
    unknown = [report.seed for report in reports if report.unknown]
    assert len(unknown) <= 1, f"the linearizability checker ran out of time on seeds {unknown}"
    return reports


@pytest.mark.parametrize("seeds", THREE_NODE_BATCHES, ids=lambda seeds: f"{seeds.start}-{seeds.stop - 1}")
def test_three_nodes_stay_safe_and_recover_under_the_nemesis(seeds: range) -> None:
    """3 nodes: invariants hold on every step, a leader and every operation within the bound, history linearizable."""
    reports = _run_batch(seeds, nodes=3)
    assert sum(len(report.history) for report in reports) > 10 * len(reports), "the clients barely did anything"


@pytest.mark.parametrize("seeds", FIVE_NODE_BATCHES, ids=lambda seeds: f"{seeds.start}-{seeds.stop - 1}")
def test_five_nodes_stay_safe_and_recover_under_the_nemesis(seeds: range) -> None:
    """5 nodes: invariants hold on every step, a leader and every operation within the bound, history linearizable."""
    _run_batch(seeds, nodes=5)


def _disks(reports: list[NemesisReport]) -> DiskStatistics:
    """The disks' statistics, summed over the reports."""
    rows = [attrs.astuple(report.disk) for report in reports if report.disk is not None]
    assert len(rows) == len(reports), "a seed ran without its disks"
    return DiskStatistics(*(sum(column) for column in zip(*rows, strict=True)))


@pytest.mark.parametrize("seeds", THREE_NODE_DISK_BATCHES, ids=lambda seeds: f"{seeds.start}-{seeds.stop - 1}")
def test_three_nodes_on_disk_recover_from_crashes_that_tear_their_writes(seeds: range) -> None:
    """3 nodes on SimulatedDisks: crashes tear writes in flight, recovery copes, and every seed still passes."""
    disks = _disks(_run_batch(seeds, nodes=3, storage="disk"))
    assert disks.crashes > len(seeds), disks
    assert disks.appends_torn > 0, disks


@pytest.mark.parametrize("seeds", FIVE_NODE_DISK_BATCHES, ids=lambda seeds: f"{seeds.start}-{seeds.stop - 1}")
def test_five_nodes_on_disk_recover_from_crashes_that_tear_their_writes(seeds: range) -> None:
    """5 nodes on SimulatedDisks: crashes tear writes in flight, recovery copes, and every seed still passes."""
    disks = _disks(_run_batch(seeds, nodes=5, storage="disk"))
    assert disks.crashes > len(seeds), disks
    assert disks.in_flight > 0, disks


def test_large_values_and_frequent_snapshots_on_disk_stay_safe() -> None:
    """Values up to 20 KB, a snapshot every few entries, on disk: every seed passes, and large values were written."""
    reports = _run_batch(range(300, 310), nodes=3, storage="disk", value_bytes=LARGE_VALUE_BYTES)
    sizes = [len(str(operation.input)) for report in reports for operation in report.history]
    assert max(sizes) > LARGE_VALUE_BYTES // 2
    assert max(sizes) < LARGE_VALUE_BYTES + 100
    assert "--value-bytes 20000" in reports[0].replay_hint()


def test_a_seed_replays_exactly() -> None:
    """The same seed gives the same trace, history and faults: a failing seed is a reproducible bug report."""
    first = run_nemesis(17, fault_time=CI_FAULT_TIME, keep_trace=True)
    again = run_nemesis(17, fault_time=CI_FAULT_TIME, keep_trace=True)
    assert first.trace == again.trace
    assert first.history == again.history
    assert first.steps == again.steps
    assert len(first.trace) > 1000


def test_a_seed_on_disk_replays_exactly() -> None:
    """On disk too, the same seed gives the same trace, history, faults and tears (seed 25 tears an append)."""
    first = run_nemesis(25, fault_time=CI_FAULT_TIME, keep_trace=True, storage="disk")
    again = run_nemesis(25, fault_time=CI_FAULT_TIME, keep_trace=True, storage="disk")
    assert first.trace == again.trace
    assert first.history == again.history
    assert first.steps == again.steps
    assert first.disk == again.disk
    assert first.disk is not None
    assert first.disk.appends_torn > 0
    assert any("writes in flight" in step for step in first.steps)
    assert "--storage disk" in first.replay_hint()


def test_the_nemesis_mixes_every_kind_of_fault() -> None:
    """Over a batch of seeds, the nemesis uses every kind of fault it has."""
    steps = " ".join(step for seed in range(21) for step in run_nemesis(seed, fault_time=CI_FAULT_TIME).steps)
    kinds = ("partition", "bridged", "one-way", "network", "silence", "crash", "restart", "bounce", "power cut")
    for kind in (*kinds, "transfer", "remove", "add"):
        assert kind in steps, kind


def test_a_failure_names_the_seed_and_how_to_replay_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted bug (votes not persisted) fails a seed, and the report says which and how to replay it."""

    async def forgetful(self: Any, term: int, voted_for: str | None) -> None:
        if term != self.term:
            self.leader_id = None
        self.term, self.voted_for = term, voted_for
        self.term_store.save(term, None)  # the vote counts, but is never persisted
        await self.term_store.sync()

    monkeypatch.setattr(RaftNode, "_set_term", forgetful)
    reports = [run_nemesis(seed, fault_time=CI_FAULT_TIME) for seed in range(10)]
    failed = [report for report in reports if not report.ok]
    assert failed, "the nemesis missed votes that are not persisted"
    message = _failure(failed[0])
    assert f"seed {failed[0].seed} " in message
    assert f"--replay {failed[0].seed} --nodes 3 --fault-time 5:15" in message
    assert "one vote per term violated" in message or "election safety violated" in message


def test_commits_without_a_quorum_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted bug (a leader commits what only it holds) is caught as a safety violation within a few seeds."""

    async def hasty(self: Any) -> None:
        if self.log_store.last_index() > self.commit_index:
            await self._advance_commit(self.log_store.last_index())

    monkeypatch.setattr(RaftNode, "_advance_leader_commit", hasty)
    errors = [run_nemesis(seed, fault_time=CI_FAULT_TIME).error for seed in range(10)]
    caught = [error for error in errors if error is not None]
    assert caught, "the nemesis missed commits without a quorum"
    assert any("violated" in error or "not linearizable" in error for error in caught)
