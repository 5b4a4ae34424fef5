"""Helpers for the Raft scenario tests: one node fed message by message, or a cluster on virtual time.

``OneNode`` runs a ``RaftNode``'s handlers on a ``StateMachineDriver``: the
test plays every peer, casts hand-made RPCs to the node, fires its timers
and reads what it sent (each send recorded with what the node's storage
held durably at that instant, so "persisted before the reply" is checkable).

The builders ``follower_with_log`` and ``leader_of`` give a ``OneNode`` in a
known state. ``Cluster`` is the shipped ``genstatem.testing.RaftCluster``
(so the kit users get is the kit these tests use): it runs RaftNodes in a
``Simulation``, crashes and restarts them, and checks ``RaftInvariants`` on
every step; the scenarios add statuses, waits on virtual time and clients.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import attrs

import genstatem as gs
from genstatem.raft import (
    Entry,
    GetStatus,
    KVMachine,
    ListMachine,
    MemoryStorage,
    RaftClient,
    RaftConfig,
    RaftNode,
    RaftSpec,
    RaftStatus,
    Snapshot,
)
from genstatem.raft._rpc import VoteReply
from genstatem.raft._storage import DurableState
from genstatem.testing import RaftCluster, Simulation, StateMachineDriver, Step

CONFIG = RaftConfig(election_timeout=(1.0, 2.0), heartbeat_interval=0.2)
"""The timing every scenario uses unless it says otherwise: one election timeout is 1 to 2 virtual seconds."""

ELECTION = CONFIG.election_timeout[1]
"""The longest election timeout: waits are counted in these."""

NO_PRE_VOTE = RaftConfig(election_timeout=(1.0, 2.0), heartbeat_interval=0.2, pre_vote=False)
"""``CONFIG`` without pre-vote: an election timeout makes a candidate at once."""


def entries(first: int, terms: Iterable[int], *, prefix: str = "c") -> list[Entry]:
    """Entries from index ``first`` with the given terms, each command naming its index and term."""
    return [Entry(first + i, term, f"{prefix}{first + i}t{term}".encode()) for i, term in enumerate(terms)]


async def prepared_storage(
    *, term: int = 0, voted_for: str | None = None, log: Sequence[Entry] = (), snapshot: Snapshot | None = None
) -> MemoryStorage:
    """A storage that already holds ``term``, ``voted_for``, ``log`` (and ``snapshot``) durably."""
    storage = MemoryStorage()
    log_store, term_store, snapshot_store = storage.open()
    if snapshot is not None:
        snapshot_store.save(snapshot)
        await snapshot_store.sync()
        log_store.compact(snapshot.index, snapshot.term)
    log_store.append(list(log))
    await log_store.sync()
    term_store.save(term, voted_for)
    await term_store.sync()
    return storage


# -- one node, driven by hand ------------------------------------------------------------


@attrs.frozen
class Sent:
    """One message the driven node sent, and what its storage held durably when it did."""

    to: str
    message: Any
    durable: DurableState


class _Clock:
    def __init__(self) -> None:
        self.time = 0.0

    def now(self) -> float:
        return self.time


class _Peer:
    def __init__(self, system: _FakeSystem, node: str) -> None:
        self.system, self.node = system, node

    def cast(self, message: Any) -> None:
        self.system.outbox.append(Sent(self.node, message, self.system.storage.durable()))


class _FakeSystem:
    """What a RaftNode uses of its ActorSystem: its node name, remote casts, the clock."""

    def __init__(self, node: str, storage: MemoryStorage) -> None:
        self.node = node
        self.storage = storage
        self.backend = _Clock()
        self.outbox: list[Sent] = []

    def remote(self, node: str, name: str) -> _Peer:
        return _Peer(self, node)

    def now(self) -> float:
        return self.backend.now()


class _DrivenRaftNode(RaftNode):
    """A RaftNode whose ActorSystem is a stand-in, so a driver can run it with no actor."""

    fake_system: _FakeSystem

    @property
    def system(self) -> Any:
        return self.fake_system

    async def init(self, arg: Any) -> gs.Init:
        self.fake_system, spec = arg
        return await super().init(spec)


class OneNode:
    """A RaftNode fed by the test: every peer is the test, every timer fires when the test says."""

    def __init__(self, driver: StateMachineDriver[_DrivenRaftNode], storage: MemoryStorage) -> None:
        self.driver = driver
        self.storage = storage
        self.raft: RaftNode = driver.machine
        self.system = driver.machine.fake_system
        self.step: Step = driver.init_step  # what the last event led to

    @classmethod
    async def start(
        cls,
        node: str = "a",
        members: tuple[str, ...] = ("a", "b", "c"),
        *,
        storage: MemoryStorage | None = None,
        config: RaftConfig = CONFIG,
        machine: Callable[[], Any] = ListMachine,
    ) -> OneNode:
        """Start ``node`` (a follower) on a driver, with ``storage`` as persisted so far."""
        storage = storage if storage is not None else MemoryStorage()
        spec = RaftSpec(members, machine, storage, config, seed=f"test-{node}")
        driver = await StateMachineDriver.start(_DrivenRaftNode, (_FakeSystem(node, storage), spec))
        return cls(driver, storage)

    async def restart(self) -> OneNode:
        """The same node started again from what its storage made durable."""
        raft = self.raft
        return await OneNode.start(
            raft.id, raft.spec.members, storage=self.storage, config=raft.config, machine=raft.spec.machine
        )

    # -- what it is --------------------------------------------------------------------

    @property
    def status(self) -> RaftStatus:
        """The node's ``status()``."""
        return self.raft.status()

    @property
    def role(self) -> str:
        """``"follower"``, ``"pre_candidate"``, ``"candidate"`` or ``"leader"``."""
        return self.raft.state_name()

    def log_terms(self) -> list[int]:
        """The terms of the entries the log holds, from its first index on."""
        store = self.raft.log_store
        return [entry.term for entry in store.entries(store.first_index(), store.last_index() + 1)]

    def advance(self, seconds: float) -> None:
        """Move the node's clock on (it only reads it, for its leader lease)."""
        self.system.backend.time += seconds

    # -- what it is told ---------------------------------------------------------------

    async def cast(self, message: Any) -> Step:
        """Deliver a peer's message."""
        self.step = await self.driver.feed(gs.Cast(), message)
        return self.step

    async def call(self, request: Any) -> gs.Caller:
        """Deliver a client's request; read the answer with ``answers(caller)`` (it may come later)."""
        caller = self.driver.caller()
        self.step = await self.driver.feed(gs.Call(caller), request)
        return caller

    async def call_queued(self, *requests: Any) -> list[gs.Caller]:
        """Deliver clients' requests that all sat in the node's mailbox at once (it may batch them)."""
        callers = [self.driver.caller() for _ in requests]
        steps = await self.driver.feed_queued([(gs.Call(c), r) for c, r in zip(callers, requests, strict=True)])
        self.step = steps[-1]
        return callers

    async def feed_queued(self, *events: tuple[Any, Any]) -> list[Step]:
        """Deliver ``(event_type, content)`` pairs that all sat in the node's mailbox at once."""
        steps = await self.driver.feed_queued(list(events))
        self.step = steps[-1]
        return steps

    def answers(self, caller: gs.Caller) -> list[Any]:
        """Every answer ``caller`` got so far."""
        return self.driver.replies_to(caller)

    async def ask(self, request: Any) -> Any:
        """A request that must be answered at once: its answer."""
        caller = await self.call(request)
        answers = self.answers(caller)
        assert len(answers) == 1, f"{request!r} got {answers!r}"
        return answers[0]

    async def fire(self, timer: str) -> Step:
        """Fire one of the node's timers: ``election``, ``check_quorum``, ``heartbeat``, ``transfer``, ``tally``."""
        if timer in ("election", "check_quorum"):
            self.step = await self.driver.fire(gs.StateTimeout(1.0, timer))
        else:
            self.step = await self.driver.fire(gs.GenericTimeout(timer, 1.0))
        return self.step

    async def elect(self, *voters: str) -> None:
        """Make the node leader of the next term with the votes of ``voters`` (through a pre-vote if on)."""
        await self.fire("election")
        if self.role == "pre_candidate":
            for voter in voters:
                await self.cast(VoteReply(self.raft.term + 1, voter, True, pre_vote=True))
        assert self.role == "candidate", self.role
        for voter in voters:
            await self.cast(VoteReply(self.raft.term, voter, True))
        assert self.role == "leader", self.role

    # -- what it sent ------------------------------------------------------------------

    def take(self, kind: type | None = None, *, to: str | None = None) -> list[Sent]:
        """The messages sent since the last ``take`` (only ``kind``, only ``to``), then forget them all."""
        outbox, self.system.outbox = self.system.outbox, []
        return [s for s in outbox if (kind is None or type(s.message) is kind) and (to is None or s.to == to)]


async def follower_with_log(*terms: int, term: int | None = None) -> OneNode:
    """Follower ``a`` of members a, b, c holding entries 1.. of ``terms``, at ``term`` (the last entry's)."""
    storage = await prepared_storage(term=term or terms[-1], log=entries(1, terms))
    return await OneNode.start(storage=storage)


async def leader_of(
    members: tuple[str, ...] = ("a", "b", "c"), *, machine: Any = ListMachine, **config: Any
) -> OneNode:
    """Node ``a``, elected leader of term 1 by a bare majority, its no-op (index 1) not yet acknowledged."""
    options = {"election_timeout": (1.0, 2.0), "heartbeat_interval": 0.2, "pre_vote": False, **config}
    node = await OneNode.start("a", members, config=RaftConfig(**options), machine=machine)
    await node.elect(*members[1 : len(members) // 2 + 1])
    node.take()
    return node


# -- a cluster in a simulation --------------------------------------------------------------


class Cluster(RaftCluster):
    """The shipped ``RaftCluster``, checked by its ``RaftInvariants``, with what the scenarios add.

    The scenarios' defaults (members a, b, c; ``CONFIG``), prepared storages,
    statuses asked between two events, waits on virtual time and clients.
    """

    def __init__(
        self,
        sim: Simulation,
        members: tuple[str, ...] = ("a", "b", "c"),
        *,
        config: RaftConfig = CONFIG,
        machine: Callable[[], Any] = KVMachine,
        check: bool = True,
    ) -> None:
        super().__init__(sim, members, config=config, machine=machine, check=check)

    # -- nodes -------------------------------------------------------------------------------

    async def start(self, *nodes: str, storages: dict[str, MemoryStorage] | None = None) -> None:
        """Start a RaftNode on each of ``nodes`` (all members by default), from ``storages`` where given."""
        self.storages.update(storages or {})
        await super().start(*nodes)

    def running_nodes(self) -> dict[str, RaftNode]:
        """The RaftNode instance of each running node."""
        return {node: raft for node in self.nodes if (raft := self.node(node)) is not None}

    def raft(self, node: str) -> RaftNode:
        """The RaftNode instance running on ``node``."""
        return self.running_nodes()[node]

    async def status(self, node: str) -> RaftStatus:
        """``node``'s status, asked between two of its events."""
        ref = self.sim.system(node).whereis(self.name)
        assert ref is not None
        status: RaftStatus = await ref.call(GetStatus())
        return status

    async def statuses(self) -> dict[str, RaftStatus]:
        """The status of every running node."""
        return {node: await self.status(node) for node in self.running_nodes()}

    # -- waiting on virtual time -------------------------------------------------------

    async def wait_until(
        self, condition: Callable[[], Awaitable[bool]], *, within: float, step: float = 0.01, what: str = ""
    ) -> float:
        """Wait until ``condition()`` holds, checking every ``step``; return how long it took.

        Raises:
            AssertionError: not within ``within`` virtual seconds (with every node's status).
        """
        start = self.sim.now()
        while not await condition():
            if self.sim.now() - start > within:
                raise AssertionError(f"not within {within}s: {what or condition}; {await self.statuses()}")
            await self.sim.sleep(step)
        return self.sim.now() - start

    async def stable_leader(self, among: Iterable[str] | None = None) -> str | None:  # type: ignore[override]
        """A leader that a majority of its members follow in its term, if there is one (asked by status calls)."""
        statuses = await self.statuses()
        pool = set(among) if among is not None else set(statuses)
        for node, status in statuses.items():
            if node in pool and status.role == "leader":
                followers = [
                    s
                    for s in statuses.values()
                    if s.term == status.term and s.leader == node and s.id in status.members
                ]
                if len(followers) > len(status.members) // 2:
                    return node
        return None

    async def wait_for_leader(self, *, among: Iterable[str] | None = None, within: float = 10 * ELECTION) -> str:
        """Wait for a stable leader (one of ``among``); return its name."""
        pool = list(among) if among is not None else None

        async def elected() -> bool:
            return await self.stable_leader(pool) is not None

        await self.wait_until(elected, within=within, what=f"a stable leader among {pool}")
        leader = await self.stable_leader(pool)
        assert leader is not None
        return leader

    async def wait_applied(self, nodes: Iterable[str], index: int, *, within: float = 5 * ELECTION) -> None:
        """Wait until each of ``nodes`` has applied ``index``."""
        names = list(nodes)

        async def applied() -> bool:
            return all([(await self.status(node)).last_applied >= index for node in names])

        await self.wait_until(applied, within=within, what=f"{names} applied {index}")

    # -- clients -------------------------------------------------------------------------

    async def client(self, client_id: str = "client", *, node: str = "client", **options: Any) -> RaftClient:
        """A RaftClient session ``client_id`` on node ``node`` (started if need be), for all the members."""
        try:
            system = self.sim.system(node)
        except (LookupError, KeyError):
            system = await self.sim.start_node(node, _nothing)
        return RaftClient(system, self.members, client_id=client_id, **options)

    async def call(self, node: str, request: Any, *, via: str | None = None, timeout: float = 5.0) -> Any:
        """Send a client request straight to ``node``'s RaftNode (from ``via``, itself by default)."""
        return await self.sim.system(via or node).remote(node, self.name).call(request, timeout=timeout)


async def _nothing(system: gs.ActorSystem) -> None:
    del system


async def follows(cluster: Cluster, node: str, leader: str) -> bool:
    """Whether ``node`` is a follower of ``leader``."""
    status = await cluster.status(node)
    return status.role == "follower" and status.leader == leader


async def role_is(cluster: Cluster, node: str, role: str) -> bool:
    """Whether ``node`` is in ``role``."""
    return (await cluster.status(node)).role == role
