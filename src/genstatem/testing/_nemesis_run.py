"""``run_nemesis``: one seeded run of a Raft cluster, its clients and the nemesis, and its report.

``run_nemesis(seed)`` is the whole test of one seed: a cluster of
``RaftNode``s with storage kept outside the nodes, checked by
``RaftInvariants`` after every step; clients doing random puts, reads and
compare-and-sets on a few keys, recorded for the linearizability checker;
the ``Nemesis`` (``_nemesis.py``) drawing faults from the simulation's random
generator. Then the faults heal, and the cluster must elect a leader and
finish every client operation within a bounded virtual time. The same seed
replays the same run.

With ``storage="disk"`` the nodes keep their state in ``SimulatedDisk`` s,
real files torn at every crash, so that every crash of the nemesis runs
``FileStorage``'s recovery; with ``value_bytes`` some values are large, and
snapshots frequent.
"""

from __future__ import annotations

import math
import random
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio
import attrs
import structlog

from ..raft import RaftConfig
from ._disk import DiskStatistics
from ._history import Operation
from ._linearizability import CheckResult, KVModel, check
from ._nemesis import LONGEST_DELAY, Nemesis
from ._raft_checks import InvariantViolation
from ._raft_cluster import NEMESIS_CONFIG, RaftCluster, StorageKind
from ._simulator import SimRecord, Simulation
from ._virtual_time import VirtualTimeEventLoop
from ._workload import CALL_TIMEOUT, KVWorkload, WorkloadStatistics

LIVENESS_BOUND: Final = 10.0
"""Virtual seconds after the faults heal within which a leader is elected and every client operation completes.

That is 10 maximal election timeouts of ``NEMESIS_CONFIG``, and 2 client
timeouts: an operation under way at the heal may retry for its whole
timeout (5 s) before the client's fresh write and read start.
"""


DEFAULT_FAULT_TIME: Final = (10.0, 30.0)
"""``run_nemesis``'s default ``(min, max)`` virtual seconds of faults."""

STRAGGLER_GRACE: Final = LONGEST_DELAY + CALL_TIMEOUT + 0.5
"""How long after a stable leader is elected an operation may still time out (2.5 s), and no later.

A message sent just before the heal may still take ``LONGEST_DELAY`` to
arrive, and later messages on its link wait behind it, so a client's call
may time out behind it; its retry then succeeds.
"""


@attrs.frozen
class NemesisReport:
    """What one seed of ``run_nemesis`` did and found.

    Attributes:
        seed: the seed.
        nodes: how many Raft nodes.
        fault_time: the ``fault_time`` the run was given.
        error: why the run failed (an invariant, liveness, linearizability,
            a client error), or ``None`` if it passed.
        linearizability: the checker's result.
        history: the client operations.
        statistics: what the clients did.
        steps: the nemesis's faults, with their virtual times.
        heal_time: when the faults healed (virtual seconds).
        leader_time: virtual seconds from the heal until a stable leader, or ``None``.
        settle_time: virtual seconds from the heal until every client operation completed, or ``None``.
        invariants: what the invariant checker counted.
        trace: the simulation's trace if asked for (``keep_trace=True``), else empty.
        trace_length: how many records the trace had.
        storage: what the nodes stored their state in, ``"memory"`` or ``"disk"``.
        value_bytes: the ``value_bytes`` the run was given.
        disk: what the crashes did to the disks' writes in flight, summed over
            the nodes (``None`` with ``storage="memory"``).
    """

    seed: int
    nodes: int
    fault_time: tuple[float, float]
    error: str | None
    linearizability: CheckResult | None
    history: tuple[Operation, ...]
    statistics: WorkloadStatistics
    steps: tuple[str, ...]
    heal_time: float
    leader_time: float | None
    settle_time: float | None
    invariants: dict[str, int]
    trace: tuple[SimRecord, ...]
    trace_length: int
    storage: StorageKind = "memory"
    value_bytes: int | None = None
    disk: DiskStatistics | None = None

    @property
    def ok(self) -> bool:
        """Whether the seed passed."""
        return self.error is None

    @property
    def unknown(self) -> bool:
        """Whether the linearizability checker ran out of time (not a failure)."""
        return self.linearizability is not None and self.linearizability.verdict == "unknown"

    def replay_hint(self) -> str:
        """The command that replays this seed."""
        command = f"python scripts/raft_nemesis.py --replay {self.seed} --nodes {self.nodes}"
        if self.fault_time != DEFAULT_FAULT_TIME:
            command += f" --fault-time {self.fault_time[0]:g}:{self.fault_time[1]:g}"
        command += f" --storage {self.storage}"
        if self.value_bytes is not None:
            command += f" --value-bytes {self.value_bytes}"
        return command


class _LivenessError(AssertionError):
    """The cluster did not recover in time after the faults healed."""


def run_nemesis(
    seed: int,
    *,
    nodes: int = 3,
    clients: int = 3,
    fault_time: tuple[float, float] = DEFAULT_FAULT_TIME,
    check_timeout: float = 5.0,
    keep_trace: bool = False,
    quiet: bool = True,
    storage: StorageKind = "memory",
    value_bytes: int | None = None,
) -> NemesisReport:
    """Run one seed: a cluster under a random nemesis, with clients; then heal and check.

    Passes when the invariants held on every step, the cluster elected a
    leader and finished every client operation within ``LIVENESS_BOUND``
    virtual seconds of the heal, every node caught up, and the history is
    linearizable (an ``"unknown"`` verdict passes). The whole run is a
    function of the seed.

    Args:
        seed: seeds everything.
        nodes: Raft nodes (3 or 5, say).
        clients: client nodes.
        fault_time: ``(min, max)`` virtual seconds of faults, drawn from the seed.
        check_timeout: wall-clock seconds for the linearizability check.
        keep_trace: keep the simulation's trace in the report.
        quiet: capture the nodes' log output instead of printing it.
        storage: ``"memory"`` (``MemoryStorage``), or ``"disk"``
            (``SimulatedDisk``: real files in a scratch directory, torn at
            every crash, so that the crashes exercise recovery).
        value_bytes: with it, a quarter of the values written are padded up to
            this many bytes, and snapshots are taken every few entries, so that
            large entries and large snapshots are in the mix.

    Returns:
        The report; ``report.ok`` says whether it passed.
    """
    members = [f"n{number}" for number in range(1, nodes + 1)]
    run = _NemesisRun(members, clients=clients, fault_time=fault_time, storage=storage, value_bytes=value_bytes)
    error: str | None = None
    try:
        with _captured_logs(quiet):
            anyio.run(_main, run.scenario, seed, backend_options={"loop_factory": VirtualTimeEventLoop})
    except Exception as failure:  # a crash of the harness or of a node is a failure of the seed too
        error = _describe(failure)
    finally:
        if run.cluster is not None:
            run.cluster.close()
    return run.report(seed, error, check_timeout=check_timeout, keep_trace=keep_trace)


class _NemesisRun:
    """One seed's run: the parts it made and the times it measured, kept even when it fails half-way."""

    def __init__(
        self,
        members: list[str],
        *,
        clients: int,
        fault_time: tuple[float, float],
        storage: StorageKind,
        value_bytes: int | None,
    ) -> None:
        self.members = members
        self.clients = clients
        self.fault_time = fault_time
        self.storage: StorageKind = storage
        self.value_bytes = value_bytes
        self.sim: Simulation | None = None
        self.cluster: RaftCluster | None = None
        self.workload: KVWorkload | None = None
        self.nemesis: Nemesis | None = None
        self.heal_time = math.nan
        self.leader_time: float | None = None
        self.settle_time: float | None = None

    async def scenario(self, sim: Simulation) -> None:
        """Faults with clients running, then the heal; then liveness, catching up and the invariants."""
        self.sim = sim
        config = _random_config(sim.random, frequent_snapshots=self.value_bytes is not None)
        self.cluster = cluster = RaftCluster(sim, self.members, config=config, storage=self.storage)
        self.workload = workload = KVWorkload(sim, cluster, clients=self.clients, value_bytes=self.value_bytes)
        self.nemesis = nemesis = Nemesis(sim, cluster, workload.names)
        await cluster.start()
        await workload.start()
        await nemesis.start()
        stop = anyio.Event()
        async with anyio.create_task_group() as tasks:
            for name in workload.names:
                tasks.start_soon(workload.run, name, stop)
            await nemesis.run(sim.random.uniform(*self.fault_time))
            await nemesis.heal()
            self.heal_time = heal = sim.now()
            stop.set()  # no new operations; the ones under way must finish
            leader = await _elect(sim, cluster, nemesis, deadline=heal + LIVENESS_BOUND)
            self.leader_time = leader - heal
            await _wait_for(sim, lambda: workload.busy == 0, heal + LIVENESS_BOUND, what="the operations under way")
        await _final_operations(sim, workload, deadline=heal + LIVENESS_BOUND)
        self.settle_time = sim.now() - heal
        late = [t for t in workload.timeouts if t > leader + STRAGGLER_GRACE]
        if late:
            raise _LivenessError(
                f"liveness: an operation timed out at t={late[0]:.3f}, though a stable leader was elected at"
                f" t={leader:.3f}, after the faults healed at t={heal:.3f}"
            )
        await _wait_for(sim, lambda: _caught_up(cluster), sim.now() + 5.0, what="every node to catch up")
        if cluster.invariants is not None:
            cluster.invariants.check_all()

    def report(self, seed: int, error: str | None, *, check_timeout: float, keep_trace: bool) -> NemesisReport:
        """The report of the run, failed with ``error`` or not; the history is checked if nothing failed before."""
        sim, cluster, workload = self.sim, self.cluster, self.workload
        history = workload.recorder.history() if workload is not None else ()
        if error is None and workload is not None and workload.errors:
            error = "client errors: " + "; ".join(workload.errors[:5])
        result: CheckResult | None = None
        if error is None:
            result = check(history, KVModel(), timeout=check_timeout)
            if result.verdict == "illegal":
                error = "not linearizable: " + result.explain()
        return NemesisReport(
            seed=seed,
            nodes=len(self.members),
            fault_time=self.fault_time,
            error=error,
            linearizability=result,
            history=history,
            statistics=workload.statistics if workload is not None else WorkloadStatistics(),
            steps=tuple(self.nemesis.steps) if self.nemesis is not None else (),
            heal_time=self.heal_time,
            leader_time=self.leader_time,
            settle_time=self.settle_time,
            invariants=cluster.invariants.summary() if cluster is not None and cluster.invariants is not None else {},
            trace=tuple(sim.trace) if sim is not None and keep_trace else (),
            trace_length=len(sim.trace) if sim is not None else 0,
            storage=self.storage,
            value_bytes=self.value_bytes,
            disk=_disk_statistics(cluster) if cluster is not None and self.storage == "disk" else None,
        )


def _random_config(rnd: random.Random, *, frequent_snapshots: bool = False) -> RaftConfig:
    """``NEMESIS_CONFIG`` with its safety options and batching drawn at random (mostly on)."""
    return attrs.evolve(
        NEMESIS_CONFIG,
        pre_vote=rnd.random() < 0.8,
        check_quorum=rnd.random() < 0.8,
        snapshot_every=rnd.choice((2, 4, 8) if frequent_snapshots else (None, 8, 32)),
        max_inflight=rnd.choice((1, 8)),
    )


def _disk_statistics(cluster: RaftCluster) -> DiskStatistics:
    """The disks' statistics, summed over the members."""
    totals = [attrs.astuple(disk.statistics()) for disk in cluster.disks().values()]
    return DiskStatistics(*(sum(column) for column in zip(*totals, strict=True)))


async def _elect(sim: Simulation, cluster: RaftCluster, nemesis: Nemesis, *, deadline: float) -> float:
    """After the heal: every removed member added back, then a stable leader; returns when it was elected."""
    await nemesis.restore_members(deadline)
    if nemesis.removed:
        raise _LivenessError(f"liveness: could not add {sorted(nemesis.removed)} back by t={sim.now():.3f}")
    return await _wait_for(sim, cluster.stable_leader, deadline, what="a stable leader")


async def _final_operations(sim: Simulation, workload: KVWorkload, *, deadline: float) -> None:
    """Then every client must get a write and a read through, still by ``deadline``."""
    async with anyio.create_task_group() as tasks:
        for name in workload.names:
            tasks.start_soon(_write_and_read, workload, name)
        await _wait_for(sim, lambda: workload.busy == 0, deadline, what="the operations after the heal")


async def _write_and_read(workload: KVWorkload, name: str) -> None:
    """After the heal: one write and one read that must both succeed."""
    key = workload.keys[0]
    workload.busy += 1
    try:
        written = await workload.put(name, key, f"{name}:final")
        read = await workload.read(name, key)
    finally:
        workload.busy -= 1
    if written is None or written.pending or read is None:
        raise _LivenessError(f"liveness: {name}'s operations after the heal did not complete")


def _describe(failure: BaseException) -> str:
    """The first failure inside exception groups: an invariant, liveness, or a crash with its traceback."""
    while isinstance(failure, BaseExceptionGroup):
        failure = failure.exceptions[0]
    if isinstance(failure, InvariantViolation | _LivenessError):
        return str(failure)
    lines = traceback.format_exception(failure)
    return f"{type(failure).__name__}: {failure}\n" + "".join(lines[-12:])


async def _main(scenario: Callable[[Simulation], Awaitable[None]], seed: int) -> None:
    async with Simulation(seed) as sim:
        await scenario(sim)


async def _wait_for(sim: Simulation, condition: Callable[[], Any], deadline: float, *, what: str = "") -> float:
    """Poll ``condition`` every 10 virtual ms until it holds (returning the time) or ``deadline`` passes."""
    while True:
        if condition():
            return sim.now()
        if sim.now() >= deadline:
            raise _LivenessError(f"liveness: waited until t={deadline:.3f} for {what or condition.__name__}")
        await sim.sleep(0.01)


def _caught_up(cluster: RaftCluster) -> bool:
    leader = cluster.stable_leader()
    if leader is None:
        return False
    node = cluster.node(leader)
    assert node is not None
    return all(
        (other := cluster.node(member)) is not None and other.last_applied == node.commit_index
        for member in cluster.members
        if node.members and member in node.members
    )


class _captured_logs:
    """Keep the nodes' log lines out of the output (they are in the trace anyway)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._saved: Any = None

    def __enter__(self) -> None:
        if self.quiet:
            self._saved = structlog.get_config()
            structlog.configure(processors=[_drop], cache_logger_on_first_use=False)

    def __exit__(self, *exc_info: Any) -> None:
        if self.quiet:
            structlog.configure(**self._saved)


def _drop(logger: Any, method: str, event: Any) -> Any:
    raise structlog.DropEvent
