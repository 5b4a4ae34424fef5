"""SimulatedDisk: FileStorage on virtual time, whose crashes tear exactly the writes in flight, by its seed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from genstatem.raft import Entry, Snapshot
from genstatem.testing import DiskStatistics, RaftCluster, SimulatedDisk, Simulation
from genstatem.testing._disk import remove_directory, scratch_directory

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend(virtual_anyio_backend: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """asyncio and trio, on virtual time."""
    return virtual_anyio_backend


def entries(first: int, count: int, term: int = 1, size: int = 40) -> list[Entry]:
    """``count`` entries from index ``first``, each command naming its index."""
    return [Entry(index, term, f"c{index}".encode().ljust(size, b".")) for index in range(first, first + count)]


def disk(directory: Path, seed: int | str = 1) -> SimulatedDisk:
    """A SimulatedDisk for node ``a`` in ``directory``."""
    return SimulatedDisk(directory, node="a", cluster="test", seed=seed)


def segments(directory: Path) -> list[Path]:
    """The log segment files, oldest first."""
    return sorted(directory.glob("log-*.seg"))


async def crash_during(storage: SimulatedDisk, sync: Callable[[], Awaitable[None]]) -> None:
    """Start ``sync``, and crash as soon as its write is in flight, as the simulator kills a node."""
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(sync)
        await storage.wait_for_write()
        assert storage.in_flight() == 1
        tasks.cancel_scope.cancel()
    storage.crash()


async def test_what_was_synced_survives_a_crash_untouched(tmp_path: Path) -> None:
    """A crash after the syncs completed tears nothing: the next incarnation has every synced entry and vote."""
    with disk(tmp_path) as storage:
        log, terms, _ = storage.open()
        log.append(entries(1, 5))
        terms.save(3, "b")
        await log.sync()
        await terms.sync()
        storage.crash()
        log, terms, _ = storage.open()
        assert log.last_index() == 5
        assert terms.load() == (3, "b")
        assert storage.statistics() == DiskStatistics(flushes=2, crashes=1)


async def test_a_flush_takes_virtual_time_drawn_from_its_latency(tmp_path: Path) -> None:
    """A sync returns after the disk's latency has passed on the (virtual) clock, not at once."""
    storage = SimulatedDisk(tmp_path, node="a", cluster="test", seed=1, latency=(0.25, 0.25))
    with storage:
        log, _, _ = storage.open()
        log.append(entries(1, 1))
        started = anyio.current_time()
        await log.sync()
        assert anyio.current_time() - started == pytest.approx(0.25)


async def test_a_crash_cuts_the_append_in_flight_and_recovery_keeps_whole_entries_only(tmp_path: Path) -> None:
    """An append in flight at a crash is kept, lost or torn; the log reopens at the old end or the new."""
    outcomes: dict[str, int] = {}
    for seed in range(24):
        directory = tmp_path / str(seed)
        with disk(directory, seed) as storage:
            log, _, _ = storage.open()
            log.append(entries(1, 3))
            await log.sync()
            log.append(entries(4, 4))
            await crash_during(storage, log.sync)
            log, _, _ = storage.open()
            assert log.last_index() in (3, 7)
            assert [entry.index for entry in log.entries(1, 8)] == list(range(1, log.last_index() + 1))
            log.append(entries(log.last_index() + 1, 1))  # the recovered log takes appends again
            await log.sync()
            for outcome, count in attrs.asdict(storage.statistics()).items():
                outcomes[outcome] = outcomes.get(outcome, 0) + count
    assert outcomes["in_flight"] == 24
    assert outcomes["appends_torn"] > 0
    assert outcomes["appends_kept"] + outcomes["appends_lost"] > 0


async def test_a_crash_during_a_vote_leaves_the_old_vote_or_the_new_and_no_temporary_file(tmp_path: Path) -> None:
    """A term file replacement in flight is undone or kept whole; recovery removes its partial temporary file."""
    seen = set()
    for seed in range(12):
        directory = tmp_path / str(seed)
        with disk(directory, seed) as storage:
            _, terms, _ = storage.open()
            terms.save(2, "a")
            await terms.sync()
            terms.save(3, "b")
            await crash_during(storage, terms.sync)
            _, terms, _ = storage.open()
            seen.add(terms.load())
            assert not list(directory.glob("*.tmp"))
    assert seen == {(2, "a"), (3, "b")}


async def test_a_crash_during_a_compaction_leaves_the_log_before_or_after_it(tmp_path: Path) -> None:
    """A compaction in flight is undone or kept (its deleted segments maybe back): the log reads the same either way."""
    kept = undone = 0
    for seed in range(12):
        directory = tmp_path / str(seed)
        with disk(directory, seed) as storage:
            log, _, snapshots = storage.open()
            log.append(entries(1, 10))
            await log.sync()
            snapshots.save(Snapshot(6, 1, ("a",), b"state"))
            await snapshots.sync()
            log.compact(6, 1)
            await crash_during(storage, log.sync)
            log, _, snapshots = storage.open()
            assert log.first_index() in (1, 7)
            assert log.last_index() == 10
            assert [entry.index for entry in log.entries(log.first_index(), 11)] == list(range(log.first_index(), 11))
            statistics = storage.statistics()
            kept += statistics.replacements_kept
            undone += statistics.replacements_undone
    assert kept > 0
    assert undone > 0


async def test_the_same_seed_tears_the_same_bytes(tmp_path: Path) -> None:
    """Two disks with one seed, given the same writes and crash, leave identical files."""

    async def run(directory: Path) -> dict[str, bytes]:
        with disk(directory, "same") as storage:
            log, _, _ = storage.open()
            log.append(entries(1, 2, size=500))
            await log.sync()
            log.append(entries(3, 2, size=500))
            await crash_during(storage, log.sync)
        return {path.name: path.read_bytes() for path in segments(directory)}

    assert await run(tmp_path / "one") == await run(tmp_path / "two")


async def test_waiting_for_a_write_returns_at_once_when_one_is_in_flight(tmp_path: Path) -> None:
    """``wait_for_write`` does not wait when a write is already in flight."""
    with disk(tmp_path) as storage:
        log, _, _ = storage.open()
        log.append(entries(1, 1))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(log.sync)
            await storage.wait_for_write()
            with anyio.fail_after(0):
                await storage.wait_for_write()
        assert storage.in_flight() == 0


def test_a_raft_cluster_on_disk_keeps_its_files_until_closed() -> None:
    """``RaftCluster(storage="disk")`` gives each member a SimulatedDisk in a scratch directory that close() removes."""

    async def scenario(sim: Simulation) -> RaftCluster:
        cluster = RaftCluster(sim, ["a", "b", "c"], storage="disk")
        await cluster.start()
        await sim.sleep(3.0)
        assert cluster.leader() is not None
        await cluster.crash("a")
        await cluster.restart("a")
        return cluster

    cluster, _ = Simulation.run(scenario, 5)
    try:
        assert set(cluster.disks()) == {"a", "b", "c"}
        assert cluster.directory is not None
        assert sorted(path.name for path in cluster.directory.iterdir()) == ["a", "b", "c"]
        assert cluster.disks()["a"].statistics().crashes == 1
    finally:
        cluster.close()
    assert not cluster.directory.exists()


def test_a_raft_cluster_refuses_an_unknown_storage_kind() -> None:
    """A storage kind other than memory or disk is refused, naming it."""

    async def scenario(sim: Simulation) -> None:
        with pytest.raises(ValueError, match="'tape'"):
            RaftCluster(sim, ["a"], storage="tape")  # type: ignore[arg-type]

    Simulation.run(scenario, 1)


def test_scratch_directories_are_made_and_removed() -> None:
    """``scratch_directory`` makes a fresh empty directory each time; ``remove_directory`` removes it and its files."""
    first, second = scratch_directory(), scratch_directory()
    try:
        assert first != second
        assert not list(first.iterdir())
        (first / "file").write_bytes(b"x")
    finally:
        remove_directory(first)
        remove_directory(second)
    assert not first.exists()
    assert not second.exists()
