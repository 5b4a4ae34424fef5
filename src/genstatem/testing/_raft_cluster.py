"""``RaftCluster``: RaftNodes on simulated nodes, with storage that outlives their crashes.

The harness that ``run_nemesis`` builds on (with ``KVWorkload`` and
``Nemesis``), and that a test can use alone: start the members, crash and
restart them, and ask who leads. Their storage is a ``MemoryStorage``
each, or with ``storage="disk"`` a ``SimulatedDisk`` each, in a scratch
directory that ``close()`` removes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final, Literal, cast

from .._core import ActorSystem
from ..raft import KVMachine, MemoryStorage, RaftConfig, RaftNode, RaftSpec, StateMachine, Storage
from ._disk import SimulatedDisk, remove_directory, scratch_directory
from ._raft_checks import LEADER, RaftInvariants, running_raft_node
from ._simulator import Simulation

NEMESIS_CONFIG: Final = RaftConfig(election_timeout=(0.5, 1.0), heartbeat_interval=0.1)
"""The timing ``run_nemesis`` gives its nodes: elections in 0.5 to 1 virtual second."""

StorageKind = Literal["memory", "disk"]
"""What a ``RaftCluster``'s nodes store their state in: ``MemoryStorage`` or ``SimulatedDisk``."""


class RaftCluster:
    """RaftNodes on simulated nodes, each with storage that outlives its crashes.

    With ``storage="memory"`` (the default) each member has a
    ``MemoryStorage``; with ``storage="disk"`` a ``SimulatedDisk`` (real
    files, torn at a crash, seeded by the simulation's seed) in a scratch
    directory, which ``close()`` removes. Every node runs ``RaftNode`` registered as ``name``, with a state machine
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
        storage: ``"memory"`` or ``"disk"``.
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
        storage: StorageKind = "memory",
    ) -> None:
        self.sim = sim
        self.members = tuple(members)
        self.config = config
        self.name = name
        self.directory: Path | None = None
        """The scratch directory of the disks (``None`` with ``storage="memory"``)."""
        self.storages: dict[str, Storage] = {}
        if storage == "disk":
            self.directory = root = scratch_directory()
            for member in self.members:
                seed = f"{sim.seed}/{member}/disk"
                self.storages[member] = SimulatedDisk(root / member, node=member, cluster=name, seed=seed)
        elif storage == "memory":
            self.storages = {member: MemoryStorage() for member in self.members}
        else:
            raise ValueError(f"storage must be 'memory' or 'disk', not {storage!r}")
        self.invariants: RaftInvariants | None = RaftInvariants.attach(sim, self.members, name=name) if check else None
        self._machine = machine
        self._starts = dict.fromkeys(self.members, 0)
        self.down: set[str] = set()
        """The members crashed and not yet restarted."""
        self.nodes: list[str] = list(self.members)
        """Every node the cluster runs: the members, then those started outside the configuration."""

    def setup(self, member: str) -> Callable[[ActorSystem], Awaitable[None]]:
        """The setup function of ``member``'s node: it starts the RaftNode with the member's storage."""
        machine = self._machine if self.invariants is None else self.invariants.machine(member, self._machine)

        async def setup(system: ActorSystem) -> None:
            self._starts[member] += 1
            seed = f"{self.sim.seed}/{member}/{self._starts[member]}"
            spec = RaftSpec(self.members, machine, self.storages[member], self.config, name=self.name, seed=seed)
            await system.start(RaftNode, spec, name=self.name)

        return setup

    async def start(self, *nodes: str) -> None:
        """Start the nodes named, every member's by default.

        A node that is not one of ``members`` starts outside the
        configuration: it knows the members, never campaigns, and catches up
        once a leader adds it (``RaftClient.add_member``). It gets a storage
        of its own and is checked like the members.
        """
        for node in nodes or self.members:
            if node not in self.nodes:
                self.nodes.append(node)
                self.storages.setdefault(node, MemoryStorage())
                self._starts[node] = 0
                if self.invariants is not None:
                    self.invariants.track(node)
            await self.sim.start_node(node, self.setup(node))

    def node(self, member: str) -> RaftNode | None:
        """The running RaftNode of ``member`` (``None`` while it is down)."""
        if member in self.down:
            return None
        return cast(RaftNode | None, running_raft_node(self.sim, member, self.name))

    async def crash(self, member: str) -> None:
        """Crash ``member``: what it did not sync is lost, and on a disk what was being synced may be torn."""
        self.down.add(member)
        await self.sim.crash(member)
        storage = self.storages[member]
        if isinstance(storage, SimulatedDisk):
            storage.crash()

    def disks(self) -> dict[str, SimulatedDisk]:
        """The members' ``SimulatedDisk`` s (none with ``storage="memory"``)."""
        return {member: disk for member, disk in self.storages.items() if isinstance(disk, SimulatedDisk)}

    def close(self) -> None:
        """Release the disks and remove their scratch directory (nothing to do with ``storage="memory"``).

        Call it once the simulation is over: the nodes must not run any more.
        """
        for disk in self.disks().values():
            disk.close()
        if self.directory is not None:
            remove_directory(self.directory)

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
