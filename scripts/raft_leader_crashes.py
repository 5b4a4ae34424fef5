"""Crash the leader of a loaded three-node Raft cluster again and again, in real time; lose nothing.

Three nodes run in one process on a ``MemoryNetwork``, each ``ActorSystem``
in a task of its own; a crash cancels that task, as a dying process would
end it (the node keeps only what its ``MemoryStorage`` synced). Clients
write all the while. Each round finds the leader, crashes it, checks that
the followers' ``RaftNode`` actors lived through it and elect a new leader,
and starts the crashed node again. At the end every acknowledged write is
read back, every node has applied the same log, and no client saw an error
that is not a ``RaftError``.

    python scripts/raft_leader_crashes.py --crashes 50 --backend asyncio

The test suite runs a few crashes of it on asyncio and trio.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

import genstatem as gs
from genstatem.net import MemoryNetwork
from genstatem.raft import (
    GetStatus,
    KVMachine,
    MemoryStorage,
    RaftClient,
    RaftConfig,
    RaftError,
    RaftNode,
    RaftSpec,
    RaftStatus,
)

MEMBERS = ("a", "b", "c")
CONFIG = RaftConfig(election_timeout=(0.15, 0.3), heartbeat_interval=0.03)
WAIT = 10.0
"""Seconds any one wait may take before the run fails."""


class ClusterFailed(AssertionError):
    """The cluster did not behave: a follower crashed, no leader came, or a write was lost."""


class CrashableCluster:
    """Three RaftNodes, each on an ActorSystem in its own task, so that one can be crashed by cancelling it."""

    def __init__(self, network: MemoryNetwork, group: TaskGroup) -> None:
        self.network = network
        self.group = group
        self.storage = {member: MemoryStorage() for member in MEMBERS}
        self.refs: dict[str, gs.ActorRef] = {}
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._gone: dict[str, anyio.Event] = {}

    async def start(self, member: str) -> None:
        """Start ``member`` from what its storage holds."""
        await self.group.start(self._run, member)

    async def _run(self, member: str, *, task_status: TaskStatus[None]) -> None:
        self._gone[member] = gone = anyio.Event()
        try:
            with anyio.CancelScope() as self._scopes[member]:
                async with gs.ActorSystem(node=member, network=self.network) as system:
                    spec = RaftSpec(MEMBERS, KVMachine, self.storage[member], CONFIG)
                    ref = await system.start(RaftNode, spec, name="raft")
                    assert ref is not None
                    self.refs[member] = ref
                    task_status.started()
                    await anyio.sleep_forever()
        finally:
            self.refs.pop(member, None)
            gone.set()

    async def crash(self, member: str) -> None:
        """Cancel ``member``'s task mid-flight: a process crash."""
        self._scopes[member].cancel()
        with anyio.fail_after(WAIT):
            await self._gone[member].wait()


async def status(system: gs.ActorSystem, member: str) -> RaftStatus | None:
    """``member``'s status asked across the network, or ``None`` if it does not answer."""
    try:
        answer: RaftStatus = await system.remote(member, "raft").call(GetStatus(), timeout=0.5)
    except (gs.CallTimeout, gs.NoProcess, gs.ActorExited):
        return None
    return answer


async def wait_for_leader(system: gs.ActorSystem, among: tuple[str, ...], newer_than: int) -> RaftStatus:
    """The status of a leader among ``among`` of a term above ``newer_than``."""
    with anyio.fail_after(WAIT):
        while True:
            for member in among:
                answer = await status(system, member)
                if answer is not None and answer.role == "leader" and answer.term > newer_than:
                    return answer
            await anyio.sleep(0.02)


class Writers:
    """Clients writing unique keys, each remembering what was acknowledged."""

    def __init__(self, system: gs.ActorSystem, count: int) -> None:
        self.clients = [RaftClient(system, MEMBERS, timeout=5.0, call_timeout=0.3) for _ in range(count)]
        self.acknowledged: dict[str, str] = {}
        self.uncertain = 0  # writes that ended in a RaftError: applied or not, nobody was told
        self.running = True
        self._written = anyio.Event()

    async def wait_for(self, count: int) -> None:
        """Wait until ``count`` writes in all have been acknowledged."""
        with anyio.fail_after(WAIT):
            while len(self.acknowledged) < count:
                self._written = anyio.Event()
                await self._written.wait()

    async def write(self, number: int) -> None:
        client = self.clients[number]
        sequence = 0
        while self.running:
            sequence += 1
            key, value = f"w{number}-{sequence}", str(sequence)
            try:
                await client.propose(KVMachine.put(key, value))
            except RaftError:
                self.uncertain += 1
                continue
            self.acknowledged[key] = value
            self._written.set()


async def run(crashes: int, *, writers: int = 8, report: Callable[[str], None] = print) -> dict[str, Any]:
    """Crash the leader ``crashes`` times under load; raise ``ClusterFailed`` on any misbehaviour."""
    network = MemoryNetwork()
    async with anyio.create_task_group() as group:
        cluster = CrashableCluster(network, group)
        for member in MEMBERS:
            await cluster.start(member)
        async with gs.ActorSystem(node="client", network=network) as system:
            load = Writers(system, writers)
            async with anyio.create_task_group() as writing:
                for number in range(writers):
                    writing.start_soon(load.write, number)
                term = 0
                started = anyio.current_time()
                for round_number in range(1, crashes + 1):
                    leader = await wait_for_leader(system, MEMBERS, max(term - 1, 0))  # the last successor, or later
                    term = leader.term
                    before = len(load.acknowledged)
                    await load.wait_for(before + writers)  # the leader takes writes
                    survivors = {member: ref for member, ref in cluster.refs.items() if member != leader.id}
                    await cluster.crash(leader.id)
                    try:
                        successor = await wait_for_leader(system, tuple(survivors), term)
                    except TimeoutError:
                        successor = None
                    dead = [member for member, ref in survivors.items() if not ref.alive]
                    if dead or len(survivors) != len(MEMBERS) - 1:
                        raise ClusterFailed(f"round {round_number}: followers {dead} crashed with leader {leader.id}")
                    if successor is None:
                        raise ClusterFailed(f"round {round_number}: no leader among {sorted(survivors)} in {WAIT}s")
                    term = successor.term
                    await cluster.start(leader.id)
                    report(
                        f"round {round_number:3}: crashed leader {leader.id} (term {leader.term}), "
                        f"{successor.id} leads term {successor.term}; {len(load.acknowledged)} writes acknowledged"
                    )
                load.running = False
            checked = await check(system, load)
            for member in MEMBERS:
                await cluster.crash(member)
        group.cancel_scope.cancel()
    figures = {
        "crashes": crashes,
        "acknowledged": len(load.acknowledged),
        "uncertain": load.uncertain,
        "checked": checked,
        "seconds": round(anyio.current_time() - started, 1),
    }
    report(f"ok: {figures}")
    return figures


async def check(system: gs.ActorSystem, load: Writers) -> int:
    """Every acknowledged write reads back, and every node applies the same log."""
    reader = RaftClient(system, MEMBERS, timeout=WAIT)
    for key, value in load.acknowledged.items():
        got = await reader.read(KVMachine.get(key))
        if got != value:
            raise ClusterFailed(f"acknowledged write {key}={value} reads back as {got!r}")
    with anyio.fail_after(WAIT):
        while True:
            statuses = [await status(system, member) for member in MEMBERS]
            applied = {s.last_applied if s is not None else None for s in statuses}
            leader = max((s for s in statuses if s is not None), key=lambda s: s.commit_index)
            if applied == {leader.commit_index}:
                return len(load.acknowledged)
            await anyio.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=50, help="leader crashes (default 50)")
    parser.add_argument("--writers", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    options = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))  # crash reports only
    try:
        anyio.run(lambda: run(options.crashes, writers=options.writers), backend=options.backend)
    except ClusterFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
