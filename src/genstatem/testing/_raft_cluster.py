"""A Raft cluster in the simulator, clients that record a history, a nemesis, and one seeded run of all three.

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
from typing import Any, Final, cast

import anyio
import attrs
import structlog

from .._core import ActorSystem, behaviour_of
from ..raft import (
    CommandFailed,
    KVMachine,
    MemoryStorage,
    NoQuorum,
    RaftClient,
    RaftConfig,
    RaftError,
    RaftNode,
    RaftSpec,
    StateMachine,
)
from ._history import HistoryRecorder, Operation
from ._linearizability import CheckResult, KVModel, check
from ._raft_checks import InvariantViolation, RaftInvariants
from ._simulator import Faults, SimRecord, Simulation
from ._virtual_time import VirtualTimeEventLoop

LEADER = "leader"

NEMESIS_CONFIG: Final = RaftConfig(election_timeout=(0.5, 1.0), heartbeat_interval=0.1)
"""The timing ``run_nemesis`` gives its nodes: elections in 0.5 to 1 virtual second."""

CALL_TIMEOUT: Final = 0.5
"""Virtual seconds a client waits for one node's answer before it tries another."""

LONGEST_DELAY: Final = 1.5
"""The longest a message may take under the nemesis (longer than an election timeout)."""


class RaftCluster:
    """RaftNodes on simulated nodes, each with a ``MemoryStorage`` that outlives its crashes.

    Every node runs ``RaftNode`` registered as ``name``, with a state machine
    from ``machine`` and election timers seeded by the simulation's seed and
    the node's incarnation. With ``check=True`` (the default) a
    ``RaftInvariants`` observes the simulation and records what every node
    applies.

    Args:
        sim: the simulation to run in.
        members: the node names.
        config: every node's ``RaftConfig``.
        machine: the state machine factory.
        name: the name the RaftNodes are registered under.
        check: attach a ``RaftInvariants`` (as ``invariants``).
    """

    def __init__(
        self,
        sim: Simulation,
        members: Sequence[str],
        *,
        config: RaftConfig = NEMESIS_CONFIG,
        machine: Callable[[], StateMachine] = KVMachine,
        name: str = "raft",
        check: bool = True,
    ) -> None:
        self.sim = sim
        self.members = tuple(members)
        self.config = config
        self.name = name
        self.storages = {member: MemoryStorage() for member in self.members}
        self.invariants: RaftInvariants | None = RaftInvariants.attach(sim, self.members, name=name) if check else None
        self._machine = machine
        self._starts = dict.fromkeys(self.members, 0)
        self.down: set[str] = set()
        """The members crashed and not yet restarted."""

    def setup(self, member: str) -> Callable[[ActorSystem], Awaitable[None]]:
        """The setup function of ``member``'s node: it starts the RaftNode with the member's storage."""
        machine = self._machine if self.invariants is None else self.invariants.machine(member, self._machine)

        async def setup(system: ActorSystem) -> None:
            self._starts[member] += 1
            seed = f"{self.sim.seed}/{member}/{self._starts[member]}"
            spec = RaftSpec(self.members, machine, self.storages[member], self.config, name=self.name, seed=seed)
            await system.start(RaftNode, spec, name=self.name)

        return setup

    async def start(self) -> None:
        """Start every member's node."""
        for member in self.members:
            await self.sim.start_node(member, self.setup(member))

    def node(self, member: str) -> RaftNode | None:
        """The running RaftNode of ``member`` (``None`` while it is down)."""
        if member in self.down:
            return None
        try:
            system = self.sim.system(member)
        except LookupError:
            return None
        return cast(RaftNode | None, behaviour_of(system, self.name))

    async def crash(self, member: str) -> None:
        """Crash ``member``: what it did not sync is lost."""
        self.down.add(member)
        await self.sim.crash(member)

    async def restart(self, member: str) -> None:
        """Restart a crashed ``member`` from its storage."""
        await self.sim.restart(member)
        self.down.discard(member)

    def leader(self) -> str | None:
        """The member leading the highest term among the running ones, if any."""
        best: tuple[int, str] | None = None
        for member in self.members:
            node = self.node(member)
            if node is not None and node.state_name() == LEADER and (best is None or node.term > best[0]):
                best = (node.term, member)
        return None if best is None else best[1]

    def stable_leader(self) -> str | None:
        """A leader that a quorum of members (itself included) knows, in its term; else ``None``."""
        leader = self.leader()
        if leader is None:
            return None
        node = self.node(leader)
        assert node is not None
        following = 0
        for member in self.members:
            other = self.node(member)
            if other is not None and other.term == node.term and other.leader_id == leader:
                following += 1
        return leader if following > len(self.members) // 2 else None


@attrs.define
class WorkloadStatistics:
    """What the clients of a ``KVWorkload`` did.

    Attributes:
        ok: operations that completed with an answer.
        unknown: writes that timed out (recorded open-ended: they may or may not have happened).
        dropped: reads that timed out (left out of the history).
        failed: operations refused for good (left out of the history).
    """

    ok: int = 0
    unknown: int = 0
    dropped: int = 0
    failed: int = 0


class KVWorkload:
    """Clients, each a ``RaftClient`` on its own node, doing random operations on a few keys.

    Each operation is a put of a fresh value, a linearizable read, a read
    through the log, or a compare-and-set from the last value the client saw,
    recorded in ``recorder`` in ``KVModel``'s terms on the virtual clock: a
    write that times out is open-ended, a read that times out is dropped.

    Args:
        sim: the simulation.
        cluster: the cluster to talk to.
        clients: how many clients (nodes ``client1``, ``client2``, ...).
        keys: the keys to use.
        timeout: each operation's timeout, in virtual seconds (retries included).
        pause: ``(min, max)`` virtual seconds a client waits between operations.
    """

    def __init__(
        self,
        sim: Simulation,
        cluster: RaftCluster,
        *,
        clients: int = 3,
        keys: Sequence[str] = ("x", "y", "z"),
        timeout: float = 5.0,
        pause: tuple[float, float] = (0.0, 0.3),
    ) -> None:
        self.sim = sim
        self.cluster = cluster
        self.names = [f"client{number}" for number in range(1, clients + 1)]
        self.keys = tuple(keys)
        self.timeout = timeout
        self.pause = pause
        self.recorder = HistoryRecorder(clock=sim.now)
        self.statistics = WorkloadStatistics()
        self.clients: dict[str, RaftClient] = {}
        self.errors: list[str] = []
        """Unexpected client errors (each one fails the run)."""
        self._random = {name: random.Random(f"{sim.seed}/{name}") for name in self.names}
        self.busy = 0
        """Operations under way."""
        self.timeouts: list[float] = []
        """When each operation that timed out gave up (virtual time)."""
        self._seen: dict[tuple[str, str], str | None] = {}
        self._values = 0

    async def start(self) -> None:
        """Start the client nodes."""
        for name in self.names:
            system = await self.sim.start_node(name, _no_setup)
            self.clients[name] = RaftClient(
                system,
                self.cluster.members,
                name=self.cluster.name,
                client_id=name,
                timeout=self.timeout,
                call_timeout=CALL_TIMEOUT,
                retry_delay=0.05,
            )

    async def run(self, name: str, stop: anyio.Event) -> None:
        """Client ``name`` does random operations until ``stop`` is set (finishing the one under way)."""
        rnd = self._random[name]
        while not stop.is_set():
            await self.random_operation(name, rnd)
            await anyio.sleep(rnd.uniform(*self.pause))

    async def random_operation(self, name: str, rnd: random.Random) -> Operation | None:
        """One operation of client ``name``, drawn from ``rnd``; ``None`` if it is left out of the history."""
        self.busy += 1
        try:
            return await self._random_operation(name, rnd)
        finally:
            self.busy -= 1

    async def _random_operation(self, name: str, rnd: random.Random) -> Operation | None:
        key = rnd.choice(self.keys)
        kind = rnd.choices(("put", "read", "cas", "log-read"), weights=(35, 35, 20, 10))[0]
        if kind == "put":
            return await self.put(name, key, self._fresh(name))
        if kind == "read":
            return await self.read(name, key)
        if kind == "cas":
            return await self.cas(name, key, self._seen.get((name, key)), self._fresh(name))
        return await self.read(name, key, through_log=True)

    async def put(self, name: str, key: str, value: str) -> Operation | None:
        """Client ``name`` sets ``key`` to ``value``."""
        return await self._write(name, key, ("put", value), KVMachine.put(key, value), value)

    async def cas(self, name: str, key: str, expected: str | None, new: str) -> Operation | None:
        """Client ``name`` sets ``key`` to ``new`` if it is ``expected``."""
        return await self._write(name, key, ("cas", expected, new), KVMachine.cas(key, expected, new), new)

    async def read(self, name: str, key: str, *, through_log: bool = False) -> Operation | None:
        """Client ``name`` reads ``key``: by ReadIndex, or as a command through the log."""
        client = self.clients[name]
        invocation = self.recorder.invoke(name, key, ("get",))
        try:
            if through_log:
                value = await client.propose(KVMachine.get(key))
            else:
                value = await client.read(KVMachine.get(key))
        except NoQuorum:
            self.statistics.dropped += 1
            self.timeouts.append(self.sim.now())
            self.recorder.fail(invocation)
            return None
        except RaftError as error:
            self._failed(invocation, error)
            return None
        self.statistics.ok += 1
        self._seen[(name, key)] = value
        return self.recorder.ok(invocation, value)

    async def _write(self, name: str, key: str, input: tuple[Any, ...], command: bytes, value: str) -> Operation | None:
        invocation = self.recorder.invoke(name, key, input)
        try:
            output = await self.clients[name].propose(command)
        except NoQuorum:
            self.statistics.unknown += 1
            self.timeouts.append(self.sim.now())
            return self.recorder.info(invocation)
        except RaftError as error:
            self._failed(invocation, error)
            return None
        self.statistics.ok += 1
        if output is True or output == "ok":
            self._seen[(name, key)] = value
        return self.recorder.ok(invocation, output)

    def _failed(self, invocation: Any, error: RaftError) -> None:
        self.recorder.fail(invocation)
        self.statistics.failed += 1
        if isinstance(error, CommandFailed) or type(error) is RaftError:
            self.errors.append(f"{invocation.client} {invocation.input!r} on {invocation.key!r}: {error!r}")

    def _fresh(self, name: str) -> str:
        self._values += 1
        return f"{name}:{self._values}"


async def _no_setup(system: ActorSystem) -> None:
    del system


class Nemesis:
    """Draws faults from the simulation's random generator and applies them to a cluster.

    Each step is one of: a symmetric partition (random halves, the leader
    alone, a minority and a majority, or a bridge node that sees both
    sides), a one-way partition (from or to the leader, or random), a change
    of the network's loss, duplication, reordering and delay (up to longer
    than an election timeout), a node silenced both ways without a word (as
    if paused), a crash of a random node or of the leader, a crash and an
    immediate restart, a power cut of every node, a restart, a heal, a
    leadership transfer, or a membership change (a member removed, or added
    back). Client nodes join a side of a partition now and then.

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
        """Members whose removal was asked for (it may or may not have happened) and not yet undone."""
        self.steps: list[str] = []
        """What was done, with the virtual time, in order."""

    async def start(self, node: str = "nemesis") -> None:
        """Start a node for the nemesis's own client (transfers, membership changes)."""
        system = await self.sim.start_node(node, _no_setup)
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
        """Apply one fault by name (one of ``ACTIONS``)."""
        sim, rnd, members = self.sim, self.random, list(self.cluster.members)
        leader = self.cluster.leader() or rnd.choice(members)
        if action == "partition":
            rnd.shuffle(members)
            cut = rnd.randint(1, len(members) - 1)
            self._partition(members[:cut], members[cut:])
        elif action == "isolate-leader":
            self._partition([leader], [m for m in members if m != leader])
        elif action == "split":
            rnd.shuffle(members)
            minority = len(members) // 2
            self._partition(members[:minority], members[minority:])
        elif action == "bridge" and len(members) >= 3:
            rnd.shuffle(members)
            bridge, rest = members[0], members[1:]
            cut = rnd.randint(1, len(rest) - 1)
            self._partition(rest[:cut], rest[cut:], note=f"bridged by {bridge}")
        elif action == "one-way":
            others = [m for m in members if m != leader]
            sides = rnd.choice((([leader], others), (others, [leader]), (others[:1], [leader])))
            sim.partition(sides[0], sides[1], one_way=True)
            self._note(f"one-way {sides[0]} -> {sides[1]}")
        elif action == "network":
            high = rnd.choice((0.005, 0.05, 0.3, LONGEST_DELAY))
            sim.faults = Faults(
                drop=rnd.choice((0.0, 0.05, 0.2, 0.4)),
                duplicate=rnd.choice((0.0, 0.05, 0.2)),
                reorder=rnd.choice((0.0, 0.1, 0.5)),
                delay=(0.001, high),
            )
            self._note(f"network {sim.faults}")
        elif action == "silence":  # cut off both ways without a word, like a paused process
            victim = rnd.choice(members)
            others = [m for m in members if m != victim] + self.clients
            sim.partition([victim], others, one_way=True)
            sim.partition(others, [victim], one_way=True)
            self._note(f"silence {victim}")
        elif action == "power-cut":
            self._note("power cut: crash every node, then restart them")
            for member in members:
                if member not in self.cluster.down:
                    await self.cluster.crash(member)
            await sim.sleep(rnd.uniform(0.0, 1.0))
            for member in members:
                await self.cluster.restart(member)
        elif action == "bounce":
            victim = rnd.choice([m for m in members if m not in self.cluster.down] or members)
            self._note(f"bounce {victim}: crash and restart at once")
            if victim not in self.cluster.down:
                await self.cluster.crash(victim)
            await self.cluster.restart(victim)
        elif action == "calm":
            sim.faults = Faults()
            self._note("calm network")
        elif action in ("crash", "crash-leader"):
            up = [m for m in members if m not in self.cluster.down]
            if up:
                victim = leader if action == "crash-leader" and leader in up else rnd.choice(up)
                self._note(f"crash {victim}")
                await self.cluster.crash(victim)
        elif action == "restart" and self.cluster.down:
            victim = rnd.choice(sorted(self.cluster.down))
            self._note(f"restart {victim}")
            await self.cluster.restart(victim)
        elif action == "heal":
            sim.heal()
            self._note("heal")
        elif action == "transfer" and self.admin is not None:
            target = rnd.choice(members)
            self._note(f"transfer leadership to {target}: {await self._admin(self.admin.transfer_leadership(target))}")
        elif action == "reconfigure" and self.admin is not None:
            if self.removed:
                member = self.removed.pop()
                self._note(f"add {member}: {await self._admin(self.admin.add_member(member))}")
            else:
                member = rnd.choice(members)
                self.removed.add(member)
                self._note(f"remove {member}: {await self._admin(self.admin.remove_member(member))}")

    async def _admin(self, request: Awaitable[None]) -> str:
        try:
            await request
        except RaftError as error:
            return f"{type(error).__name__}"
        return "ok"

    def _partition(self, left: list[str], right: list[str], *, note: str = "") -> None:
        if self.clients and self.random.random() < 0.3:
            for client in self.clients:
                (left if self.random.random() < 0.5 else right).append(client)
        self.sim.partition(left, right)
        self._note(f"partition {left} | {right} {note}".rstrip())

    async def heal(self) -> None:
        """End every fault: heal partitions, calm the network, restart every crashed node."""
        self.sim.heal()
        self.sim.faults = Faults()
        for member in sorted(self.cluster.down):
            await self.cluster.restart(member)
        self._note("healed the network, restarted every node")

    async def restore_members(self, deadline: float) -> None:
        """Add back every member whose removal was asked for, retrying until ``deadline`` (virtual time)."""
        while self.removed and self.admin is not None and self.sim.now() < deadline:
            member = min(self.removed)
            outcome = await self._admin(self.admin.add_member(member))
            self._note(f"add {member} back: {outcome}")
            if outcome == "ok":
                self.removed.discard(member)

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
    members = [f"n{number}" for number in range(1, nodes + 1)]
    state: dict[str, Any] = {}

    async def scenario(sim: Simulation) -> None:
        state["sim"] = sim
        rnd = sim.random
        config = attrs.evolve(
            NEMESIS_CONFIG,
            pre_vote=rnd.random() < 0.8,
            check_quorum=rnd.random() < 0.8,
            snapshot_every=rnd.choice((None, 8, 32)),
            max_inflight=rnd.choice((1, 8)),
        )
        cluster = RaftCluster(sim, members, config=config)
        workload = KVWorkload(sim, cluster, clients=clients)
        nemesis = Nemesis(sim, cluster, workload.names)
        state.update(cluster=cluster, workload=workload, nemesis=nemesis)
        await cluster.start()
        await workload.start()
        await nemesis.start()
        stop = anyio.Event()
        async with anyio.create_task_group() as tasks:
            for name in workload.names:
                tasks.start_soon(workload.run, name, stop)
            await nemesis.run(rnd.uniform(*fault_time))
            await nemesis.heal()
            state["heal"] = heal = sim.now()
            stop.set()  # no new operations; the ones under way must finish
            await nemesis.restore_members(heal + LIVENESS_BOUND)
            if nemesis.removed:
                raise _LivenessError(f"liveness: could not add {sorted(nemesis.removed)} back by t={sim.now():.3f}")
            leader = await _wait_for(sim, cluster.stable_leader, heal + LIVENESS_BOUND, what="a stable leader")
            state["leader"] = leader - heal
            await _wait_for(sim, lambda: workload.busy == 0, heal + LIVENESS_BOUND, what="the operations under way")
        # Then every client must get a write and a read through, still within the bound.
        async with anyio.create_task_group() as tasks:
            for name in workload.names:
                tasks.start_soon(_final_operations, workload, name)
            await _wait_for(
                sim, lambda: workload.busy == 0, heal + LIVENESS_BOUND, what="the operations after the heal"
            )
        state["settle"] = sim.now() - heal
        late = [t for t in workload.timeouts if t > leader + STRAGGLER_GRACE]
        if late:
            raise _LivenessError(
                f"liveness: an operation timed out at t={late[0]:.3f}, though a stable leader was elected at"
                f" t={leader:.3f}, after the faults healed at t={heal:.3f}"
            )
        await _wait_for(sim, lambda: _caught_up(cluster), sim.now() + 5.0, what="every node to catch up")
        if cluster.invariants is not None:
            cluster.invariants.check_all()

    error: str | None = None
    try:
        with _captured_logs(quiet):
            anyio.run(_main, scenario, seed, backend_options={"loop_factory": VirtualTimeEventLoop})
    except Exception as failure:  # a crash of the harness or of a node is a failure of the seed too
        error = _describe(failure)
    workload: KVWorkload | None = state.get("workload")
    history = workload.recorder.history() if workload is not None else ()
    if error is None and workload is not None and workload.errors:
        error = "client errors: " + "; ".join(workload.errors[:5])
    result: CheckResult | None = None
    if error is None:
        result = check(history, KVModel(), timeout=check_timeout)
        if result.verdict == "illegal":
            error = "not linearizable: " + result.explain()
    sim: Simulation | None = state.get("sim")
    cluster: RaftCluster | None = state.get("cluster")
    nemesis: Nemesis | None = state.get("nemesis")
    return NemesisReport(
        seed=seed,
        nodes=nodes,
        fault_time=fault_time,
        error=error,
        linearizability=result,
        history=history,
        statistics=workload.statistics if workload is not None else WorkloadStatistics(),
        steps=tuple(nemesis.steps) if nemesis is not None else (),
        heal_time=state.get("heal", math.nan),
        leader_time=state.get("leader"),
        settle_time=state.get("settle"),
        invariants=cluster.invariants.summary() if cluster is not None and cluster.invariants is not None else {},
        trace=tuple(sim.trace) if sim is not None and keep_trace else (),
        trace_length=len(sim.trace) if sim is not None else 0,
    )


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


async def _final_operations(workload: KVWorkload, name: str) -> None:
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
