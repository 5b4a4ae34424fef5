"""The nemesis, and ``run_nemesis``: one seeded run of a Raft cluster, its clients, and faults.

``run_nemesis(seed)`` is the whole test of one seed: a cluster of
``RaftNode``s with storage kept outside the nodes, checked by
``RaftInvariants`` after every step; clients doing random puts, reads and
compare-and-sets on a few keys, recorded for the linearizability checker;
a nemesis drawing partitions, lost, duplicated, reordered and delayed
messages, and crashes from the simulation's random generator. Then the
faults heal, and the cluster must elect a leader and finish every client
operation within a bounded virtual time. The same seed replays the same run.
"""

from __future__ import annotations

import math
import random
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import anyio
import attrs
import structlog

from ..raft import RaftClient, RaftConfig, RaftError
from ._history import Operation
from ._linearizability import CheckResult, KVModel, check
from ._raft_checks import InvariantViolation
from ._raft_cluster import NEMESIS_CONFIG, RaftCluster
from ._simulator import Faults, SimRecord, Simulation
from ._virtual_time import VirtualTimeEventLoop
from ._workload import CALL_TIMEOUT, KVWorkload, WorkloadStatistics, no_setup

LONGEST_DELAY: Final = 1.5
"""The longest a message may take under the nemesis (longer than an election timeout)."""

_Action = Callable[[list[str], str], Awaitable[None]]


class Nemesis:
    """Draws faults from the simulation's random generator and applies them to a cluster.

    Each step is one of: a symmetric partition (random halves, the leader
    alone, a minority and a majority, or a bridge node that sees both
    sides), a one-way partition (from or to the leader, or random), a change
    of the network's loss, duplication, reordering and delay (up to longer
    than an election timeout), a node silenced both ways without a word (as
    if paused), a crash of a random node or of the leader, a crash and an
    immediate restart, a power cut of every node, a restart, a heal, a
    leadership transfer, or a membership change (a member removed, added
    back as a learner, or that learner promoted to voter). Client nodes
    join a side of a partition now and then.

    Args:
        sim: the simulation.
        cluster: the cluster to hurt.
        clients: the client node names.
        admin: a client for transfers and membership changes (``start`` makes one).
    """

    ACTIONS: Final = (
        ("partition", 3),
        ("isolate-leader", 2),
        ("split", 2),
        ("bridge", 1),
        ("one-way", 2),
        ("network", 3),
        ("calm", 1),
        ("silence", 1),
        ("power-cut", 1),
        ("bounce", 1),
        ("crash", 2),
        ("crash-leader", 1),
        ("restart", 2),
        ("heal", 2),
        ("transfer", 1),
        ("reconfigure", 1),
    )

    def __init__(
        self, sim: Simulation, cluster: RaftCluster, clients: Sequence[str] = (), admin: RaftClient | None = None
    ) -> None:
        self.sim = sim
        self.cluster = cluster
        self.clients = list(clients)
        self.admin = admin
        self.random = sim.random
        self.removed: set[str] = set()
        self.learners: set[str] = set()  # members added back as learners, not yet promoted
        """Members whose removal was asked for (it may or may not have happened) and not yet undone."""
        self.steps: list[str] = []
        """What was done, with the virtual time, in order."""
        self._actions: dict[str, _Action] = {
            "partition": self._partition,
            "isolate-leader": self._isolate_leader,
            "split": self._split,
            "bridge": self._bridge,
            "one-way": self._one_way,
            "network": self._network,
            "calm": self._calm,
            "silence": self._silence,
            "power-cut": self._power_cut,
            "bounce": self._bounce,
            "crash": self._crash,
            "crash-leader": self._crash_leader,
            "restart": self._restart,
            "heal": self._heal,
            "transfer": self._transfer,
            "reconfigure": self._reconfigure,
        }

    async def start(self, node: str = "nemesis") -> None:
        """Start a node for the nemesis's own client (transfers, membership changes)."""
        system = await self.sim.start_node(node, no_setup)
        members, name = self.cluster.members, self.cluster.name
        self.admin = RaftClient(system, members, name=name, timeout=2.0, call_timeout=CALL_TIMEOUT)

    async def run(self, duration: float, *, step: tuple[float, float] = (0.2, 3.0)) -> None:
        """Apply random faults for ``duration`` virtual seconds, waiting ``step`` seconds between two."""
        end = self.sim.now() + duration
        names = [name for name, _ in self.ACTIONS]
        weights = [weight for _, weight in self.ACTIONS]
        while self.sim.now() < end:
            await self.act(self.random.choices(names, weights)[0])
            await self.sim.sleep(self.random.uniform(*step))

    async def act(self, action: str) -> None:
        """Apply one fault by name (one of ``ACTIONS``; another name does nothing)."""
        members = list(self.cluster.members)
        leader = self.cluster.leader() or self.random.choice(members)
        apply = self._actions.get(action)
        if apply is not None:
            await apply(members, leader)

    async def heal(self) -> None:
        """End every fault: heal partitions, calm the network, restart every crashed node."""
        self.sim.heal()
        self.sim.faults = Faults()
        for member in sorted(self.cluster.down):
            await self.cluster.restart(member)
        self._note("healed the network, restarted every node")

    async def restore_members(self, deadline: float) -> None:
        """Add back every member whose removal was asked for, as a learner then promoted, until ``deadline``."""
        while (self.removed or self.learners) and self.admin is not None and self.sim.now() < deadline:
            if not await self._readd():
                await self.sim.sleep(CALL_TIMEOUT)  # a learner not caught up yet is refused at once

    # -- the actions, each given the members (in order) and the leader (or a member) -------

    async def _partition(self, members: list[str], leader: str) -> None:
        """Random halves."""
        self.random.shuffle(members)
        cut = self.random.randint(1, len(members) - 1)
        self._cut(members[:cut], members[cut:])

    async def _isolate_leader(self, members: list[str], leader: str) -> None:
        self._cut([leader], [m for m in members if m != leader])

    async def _split(self, members: list[str], leader: str) -> None:
        """A minority and a majority."""
        self.random.shuffle(members)
        minority = len(members) // 2
        self._cut(members[:minority], members[minority:])

    async def _bridge(self, members: list[str], leader: str) -> None:
        """Two sides, and one node that sees both."""
        if len(members) < 3:
            return
        self.random.shuffle(members)
        bridge, rest = members[0], members[1:]
        cut = self.random.randint(1, len(rest) - 1)
        self._cut(rest[:cut], rest[cut:], note=f"bridged by {bridge}")

    async def _one_way(self, members: list[str], leader: str) -> None:
        others = [m for m in members if m != leader]
        sides = self.random.choice((([leader], others), (others, [leader]), (others[:1], [leader])))
        self.sim.partition(sides[0], sides[1], one_way=True)
        self._note(f"one-way {sides[0]} -> {sides[1]}")

    async def _network(self, members: list[str], leader: str) -> None:
        """Loss, duplication, reordering and delay, drawn at random."""
        rnd = self.random
        high = rnd.choice((0.005, 0.05, 0.3, LONGEST_DELAY))
        self.sim.faults = Faults(
            drop=rnd.choice((0.0, 0.05, 0.2, 0.4)),
            duplicate=rnd.choice((0.0, 0.05, 0.2)),
            reorder=rnd.choice((0.0, 0.1, 0.5)),
            delay=(0.001, high),
        )
        self._note(f"network {self.sim.faults}")

    async def _calm(self, members: list[str], leader: str) -> None:
        self.sim.faults = Faults()
        self._note("calm network")

    async def _silence(self, members: list[str], leader: str) -> None:
        """Cut a node off both ways without a word, like a paused process."""
        victim = self.random.choice(members)
        others = [m for m in members if m != victim] + self.clients
        self.sim.partition([victim], others, one_way=True)
        self.sim.partition(others, [victim], one_way=True)
        self._note(f"silence {victim}")

    async def _power_cut(self, members: list[str], leader: str) -> None:
        self._note("power cut: crash every node, then restart them")
        for member in members:
            if member not in self.cluster.down:
                await self.cluster.crash(member)
        await self.sim.sleep(self.random.uniform(0.0, 1.0))
        for member in members:
            await self.cluster.restart(member)

    async def _bounce(self, members: list[str], leader: str) -> None:
        victim = self.random.choice([m for m in members if m not in self.cluster.down] or members)
        self._note(f"bounce {victim}: crash and restart at once")
        if victim not in self.cluster.down:
            await self.cluster.crash(victim)
        await self.cluster.restart(victim)

    async def _crash(self, members: list[str], leader: str, *, of_leader: bool = False) -> None:
        up = [m for m in members if m not in self.cluster.down]
        if up:
            victim = leader if of_leader and leader in up else self.random.choice(up)
            self._note(f"crash {victim}")
            await self.cluster.crash(victim)

    async def _crash_leader(self, members: list[str], leader: str) -> None:
        await self._crash(members, leader, of_leader=True)

    async def _restart(self, members: list[str], leader: str) -> None:
        if self.cluster.down:
            victim = self.random.choice(sorted(self.cluster.down))
            self._note(f"restart {victim}")
            await self.cluster.restart(victim)

    async def _heal(self, members: list[str], leader: str) -> None:
        """Heal the partitions (the network's faults stay)."""
        self.sim.heal()
        self._note("heal")

    async def _transfer(self, members: list[str], leader: str) -> None:
        if self.admin is not None:
            target = self.random.choice(members)
            self._note(f"transfer leadership to {target}: {await self._admin(self.admin.transfer_leadership(target))}")

    async def _reconfigure(self, members: list[str], leader: str) -> None:
        """Remove a member, or add back the one removed as a learner, or promote that learner."""
        if self.admin is None:
            return
        if self.removed or self.learners:
            await self._readd()
        else:
            member = self.random.choice(members)
            self.removed.add(member)
            self._note(f"remove {member}: {await self._admin(self.admin.remove_member(member))}")

    async def _readd(self) -> bool:
        """Promote a learner added back, else add back a removed member as a learner; whether it was done."""
        assert self.admin is not None
        if self.learners:
            member = min(self.learners)
            outcome = await self._admin(self.admin.promote(member))
            self._note(f"promote {member}: {outcome}")
            if outcome == "ok":
                self.learners.discard(member)
        else:
            member = min(self.removed)
            leading = self.cluster.leader()
            leader = self.cluster.node(leading) if leading is not None else None
            if leader is not None and member in leader.voters:  # its removal never took effect
                self.removed.discard(member)
                return True
            outcome = await self._admin(self.admin.add_learner(member))
            self._note(f"add {member} back as a learner: {outcome}")
            if outcome == "ok":
                self.removed.discard(member)
                self.learners.add(member)
        return outcome == "ok"

    # -- helpers ---------------------------------------------------------------------------

    async def _admin(self, request: Awaitable[None]) -> str:
        try:
            await request
        except RaftError as error:
            return f"{type(error).__name__}"
        return "ok"

    def _cut(self, left: list[str], right: list[str], *, note: str = "") -> None:
        """Partition ``left`` from ``right``; now and then the clients join one side or the other."""
        if self.clients and self.random.random() < 0.3:
            for client in self.clients:
                (left if self.random.random() < 0.5 else right).append(client)
        self.sim.partition(left, right)
        self._note(f"partition {left} | {right} {note}".rstrip())

    def _note(self, what: str) -> None:
        self.steps.append(f"{self.sim.now():.3f} {what}")


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

    Returns:
        The report; ``report.ok`` says whether it passed.
    """
    run = _NemesisRun([f"n{number}" for number in range(1, nodes + 1)], clients=clients, fault_time=fault_time)
    error: str | None = None
    try:
        with _captured_logs(quiet):
            anyio.run(_main, run.scenario, seed, backend_options={"loop_factory": VirtualTimeEventLoop})
    except Exception as failure:  # a crash of the harness or of a node is a failure of the seed too
        error = _describe(failure)
    return run.report(seed, error, check_timeout=check_timeout, keep_trace=keep_trace)


class _NemesisRun:
    """One seed's run: the parts it made and the times it measured, kept even when it fails half-way."""

    def __init__(self, members: list[str], *, clients: int, fault_time: tuple[float, float]) -> None:
        self.members = members
        self.clients = clients
        self.fault_time = fault_time
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
        self.cluster = cluster = RaftCluster(sim, self.members, config=_random_config(sim.random))
        self.workload = workload = KVWorkload(sim, cluster, clients=self.clients)
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
        )


def _random_config(rnd: random.Random) -> RaftConfig:
    """``NEMESIS_CONFIG`` with its safety options and batching drawn at random (mostly on)."""
    return attrs.evolve(
        NEMESIS_CONFIG,
        pre_vote=rnd.random() < 0.8,
        check_quorum=rnd.random() < 0.8,
        snapshot_every=rnd.choice((None, 8, 32)),
        max_inflight=rnd.choice((1, 8)),
    )


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
