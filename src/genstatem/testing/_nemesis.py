"""The nemesis: the faults of a seeded Raft run, drawn from the simulation's random generator.

Partitions (symmetric, one-way, bridged, silent), lost, duplicated,
reordered and delayed messages, crashes and restarts, leadership transfers
and membership changes; on a cluster with disks, crashes in the middle of a
write. ``run_nemesis`` (``_nemesis_run.py``) runs one seed with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import anyio

from ..raft import RaftClient, RaftError
from ._raft_cluster import RaftCluster
from ._simulator import Faults, Simulation
from ._workload import CALL_TIMEOUT, no_setup

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
    join a side of a partition now and then. On a cluster with disks
    (``RaftCluster(storage="disk")``) it also crashes nodes in the middle of
    a write (``DISK_ACTIONS``), which the crash tears.

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
    DISK_ACTIONS: Final = (("crash-mid-write", 3),)
    """The actions added on a cluster with disks."""

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
            "crash-mid-write": self._crash_mid_write,
        }

    async def start(self, node: str = "nemesis") -> None:
        """Start a node for the nemesis's own client (transfers, membership changes)."""
        system = await self.sim.start_node(node, no_setup)
        members, name = self.cluster.members, self.cluster.name
        self.admin = RaftClient(system, members, name=name, timeout=2.0, call_timeout=CALL_TIMEOUT)

    async def run(self, duration: float, *, step: tuple[float, float] = (0.2, 3.0)) -> None:
        """Apply random faults for ``duration`` virtual seconds, waiting ``step`` seconds between two."""
        end = self.sim.now() + duration
        actions = self.ACTIONS + (self.DISK_ACTIONS if self.cluster.disks() else ())
        names = [name for name, _ in actions]
        weights = [weight for _, weight in actions]
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

    async def _crash_mid_write(self, members: list[str], leader: str) -> None:
        """Crash a node (the leader, half the time) as soon as it is writing to its disk: the write is torn."""
        disks = self.cluster.disks()
        up = [m for m in members if m not in self.cluster.down and m in disks]
        if up:
            victim = leader if leader in up and self.random.random() < 0.5 else self.random.choice(up)
            with anyio.move_on_after(2.0):
                await disks[victim].wait_for_write()
            self._note(f"crash {victim} with {disks[victim].in_flight()} writes in flight")
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
