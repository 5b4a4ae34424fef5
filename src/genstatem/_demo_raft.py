"""``python -m genstatem``: a replicated key-value store on three Raft nodes, told as a story.

Everything runs in this one process: three ``ActorSystem`` nodes and a
client node on a ``MemoryNetwork``, each node's ``RaftNode`` persisting to a
``MemoryStorage`` that outlives it. The story: the nodes boot as followers,
one wins an election, a client writes and reads, the leader crashes (its
whole node stops, with a write in flight), another node wins, writes go on,
the crashed node comes back from its storage and catches up, and every
acknowledged write is read back.

Role changes are printed as they happen, by a tracer on each node. Every
wait is bounded, so the demo ends within seconds whatever happens; it exits
with status 1 if a wait times out or an acknowledged write is missing.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from . import ActorSystem, TraceEvent
from .net import MemoryNetwork
from .raft import GetStatus, KVMachine, MemoryStorage, RaftClient, RaftConfig, RaftNode, RaftSpec, RaftStatus

MEMBERS = ("a", "b", "c")
CONFIG = RaftConfig(election_timeout=(0.3, 0.6), heartbeat_interval=0.05)
WAIT = 5.0
"""Seconds any one step of the story may take before the demo gives up."""
DEADLINE = 30.0
"""Seconds the whole demo may take."""


class DemoFailed(Exception):
    """The story did not go as it must: a wait timed out or a write was lost."""


class Story:
    """Prints the story: section titles, and lines stamped with the seconds since the start."""

    def __init__(self, write: Callable[[str], None] = print) -> None:
        self.write = write
        self.started = anyio.current_time()

    def section(self, title: str) -> None:
        self.write("")
        self.write(f"== {title}")

    def say(self, text: str) -> None:
        self.write(f"{anyio.current_time() - self.started:6.2f}s  {text}")

    def note(self, text: str) -> None:
        self.write(f"         {text}")


class Cluster:
    """Three Raft nodes, each an ActorSystem in its own task, so one can crash and come back."""

    def __init__(self, network: MemoryNetwork, task_group: TaskGroup, story: Story) -> None:
        self.network = network
        self.task_group = task_group
        self.story = story
        self.storage = {member: MemoryStorage() for member in MEMBERS}
        self.systems: dict[str, ActorSystem] = {}
        self._crash: dict[str, anyio.Event] = {}
        self._gone: dict[str, anyio.Event] = {}
        self._elected = anyio.Event()
        self._stepped = anyio.Event()

    async def start(self, member: str) -> None:
        """Start ``member``'s node and its RaftNode (from whatever its storage holds)."""
        await self.task_group.start(self._run, member)

    async def _run(self, member: str, *, task_status: TaskStatus[None]) -> None:
        self._crash[member] = crash = anyio.Event()
        self._gone[member] = gone = anyio.Event()
        try:
            async with ActorSystem(node=member, network=self.network, tracer=self._watch) as system:
                await system.start(RaftNode, RaftSpec(MEMBERS, KVMachine, self.storage[member], CONFIG), name="raft")
                self.systems[member] = system
                task_status.started()
                await crash.wait()
                del self.systems[member]
        finally:
            gone.set()

    async def crash(self, member: str) -> None:
        """Stop ``member``'s whole node: it leaves the network and keeps only what it had persisted."""
        self._crash[member].set()
        with anyio.fail_after(WAIT):
            await self._gone[member].wait()

    async def status(self, member: str) -> RaftStatus:
        """``member``'s Raft status, asked on its own node."""
        ref = self.systems[member].whereis("raft")
        if ref is None:
            raise DemoFailed(f"node {member} has no RaftNode")
        status: RaftStatus = await ref.call(GetStatus(), timeout=WAIT)
        return status

    async def wait_for_leader(self, *, newer_than: int = 0) -> RaftStatus:
        """Wait until some running node leads a term above ``newer_than``; return its status."""
        with anyio.fail_after(WAIT):
            while True:
                for member in sorted(self.systems):
                    status = await self.status(member)
                    if status.role == "leader" and status.term > newer_than:
                        return status
                self._elected = anyio.Event()
                await self._elected.wait()

    async def wait_caught_up(self, member: str, leader: str) -> RaftStatus:
        """Wait until ``member`` has applied everything ``leader`` had committed when asked."""
        target = (await self.status(leader)).commit_index
        with anyio.fail_after(WAIT):
            while (status := await self.status(member)).last_applied < target:
                self._stepped = anyio.Event()
                await self._stepped.wait()  # a node handled an event: a heartbeat, an append...
        return status

    def _watch(self, step: TraceEvent) -> None:
        """The tracer of every node: tell each change of role as it happens."""
        if step.kind == "transition":
            self._stepped.set()
        elif step.kind == "enter" and step.content != step.state:
            self.story.say(f"{step.actor.node}: {step.content} -> {step.state}{_WHY.get(step.state, '')}")
            if step.state == "leader":
                self._elected.set()


_WHY = {
    "pre_candidate": "  (heard no leader for an election timeout; asks for pre-votes first)",
    "candidate": "  (a majority would vote for it: starts a real election)",
    "leader": "  (won a majority of the votes)",
    "follower": "",
}


async def _put(client: RaftClient, story: Story, acknowledged: dict[str, str], key: str, value: str) -> None:
    started = anyio.current_time()
    result = await client.propose(KVMachine.put(key, value))
    took = (anyio.current_time() - started) * 1000
    acknowledged[key] = value
    story.say(f"put {key}={value} -> {result!r}  ({took:.1f} ms, leader {client.leader})")


async def _story(story: Story) -> None:
    # Whole on purpose: the demo's script, its sections in the order they print.
    network = MemoryNetwork()
    acknowledged: dict[str, str] = {}
    async with anyio.create_task_group() as task_group:
        cluster = Cluster(network, task_group, story)
        async with ActorSystem(node="client", network=network) as client_node:
            client = RaftClient(client_node, MEMBERS, client_id="demo", timeout=WAIT, call_timeout=0.25)

            story.section("1. Three nodes boot")
            for member in MEMBERS:
                await cluster.start(member)
            for member in MEMBERS:
                status = await cluster.status(member)
                story.say(f"{member}: {status.role} of term {status.term}, {status.last_index} log entries")
            story.note(
                f"each waits a random election timeout ({CONFIG.election_timeout[0]}-{CONFIG.election_timeout[1]} s) "
                "for a leader's heartbeat"
            )

            story.section("2. The first election")
            first = await cluster.wait_for_leader()
            votes = ", ".join([f"{m}->{(await cluster.status(m)).voted_for}" for m in MEMBERS])
            story.say(f"{first.id} is elected leader of term {first.term} (votes: {votes})")

            story.section("3. Writes and reads through a RaftClient")
            story.note("a write is acknowledged once a majority has it in its log and the leader has applied it")
            for key, value in (("apple", "red"), ("banana", "yellow"), ("cherry", "dark red")):
                await _put(client, story, acknowledged, key, value)
            swapped = await client.propose(KVMachine.cas("apple", "red", "green"))
            if swapped:
                acknowledged["apple"] = "green"
            story.say(f"cas apple: red -> green -> {swapped!r}")
            story.note("a read is answered by the leader once a majority confirms it still leads (ReadIndex)")
            for key in ("apple", "cherry", "durian"):
                story.say(f"read {key} -> {await client.read(KVMachine.get(key))!r}")

            story.section(f"4. The leader, {first.id}, crashes")
            in_flight, answered = anyio.Event(), anyio.Event()
            late: dict[str, Any] = {}

            async def write_during_the_crash() -> None:
                started = anyio.current_time()
                in_flight.set()
                late["result"] = await client.propose(KVMachine.put("elderberry", "purple"))
                late["took"] = anyio.current_time() - started
                answered.set()

            task_group.start_soon(write_during_the_crash)
            await in_flight.wait()
            story.say("put elderberry=purple is sent, and at once:")
            await cluster.crash(first.id)
            story.say(f"{first.id} is gone: its node stopped, its RaftNode with it; its MemoryStorage stays")
            second = await cluster.wait_for_leader(newer_than=first.term)
            story.say(f"{second.id} is elected leader of term {second.term}")

            story.section("5. Writes go on")
            with anyio.fail_after(WAIT):
                await answered.wait()
            acknowledged["elderberry"] = "purple"
            story.say(
                f"put elderberry=purple -> {late['result']!r}  ({late['took']:.2f} s: the client retried it "
                f"until {client.leader} answered; same session and sequence number, so it is applied once)"
            )
            for key, value in (("fig", "purple"), ("grape", "green")):
                await _put(client, story, acknowledged, key, value)

            story.section(f"6. {first.id} restarts from its storage")
            durable = cluster.storage[first.id].durable()
            story.say(
                f"{first.id} persisted term {durable.term}, voted for {durable.voted_for}, "
                f"{len(durable.entries)} log entries"
            )
            await cluster.start(first.id)
            back = await cluster.wait_caught_up(first.id, second.id)
            story.say(
                f"{first.id} is back: {back.role} of term {back.term}, leader {back.leader}, "
                f"applied {back.last_applied} entries"
            )
            await _put(client, story, acknowledged, "honeydew", "pale green")

            story.section("7. Every acknowledged write is still there")
            lost = []
            for key, value in sorted(acknowledged.items()):
                got = await client.read(KVMachine.get(key))
                if got != value:
                    lost.append(key)
                story.say(f"read {key} -> {got!r}{'' if got == value else f'  LOST: expected {value!r}'}")
            await _check_logs(cluster, story)
            if lost:
                raise DemoFailed(f"acknowledged writes lost: {', '.join(lost)}")
            story.say(f"all {len(acknowledged)} acknowledged writes read back: none lost")
        for member in list(cluster.systems):
            await cluster.crash(member)


async def _check_logs(cluster: Cluster, story: Story) -> None:
    """Every node's persisted log agrees on what is committed everywhere (log matching)."""
    leader = await cluster.wait_for_leader()
    for member in MEMBERS:
        await cluster.wait_caught_up(member, leader.id)
    statuses = [await cluster.status(member) for member in MEMBERS]
    committed = min(status.commit_index for status in statuses)
    logs = [[(e.index, e.term, e.command) for e in cluster.storage[m].durable().entries][:committed] for m in MEMBERS]
    if any(log != logs[0] for log in logs):
        raise DemoFailed("the nodes' logs differ")
    terms = sorted({term for _, term, _ in logs[0]})
    story.say(f"the logs of {', '.join(MEMBERS)} hold the same {committed} committed entries (terms {terms})")


async def run() -> None:
    """Tell the story on the running event loop.

    Raises:
        DemoFailed: a step did not finish in time, or an acknowledged write was lost.
    """
    story = Story()
    print("genstatem: a key-value store replicated by Raft on three nodes, all in this process")
    print(
        f"(election timeout {CONFIG.election_timeout[0]}-{CONFIG.election_timeout[1]} s, "
        f"heartbeat every {CONFIG.heartbeat_interval} s)"
    )
    try:
        with anyio.fail_after(DEADLINE):
            await _story(story)
    except BaseException as error:  # task groups wrap what their tasks raise in groups
        failure = _failure(error)
        if failure is None:
            raise
        raise failure from error


def _failure(error: BaseException) -> DemoFailed | None:
    """The demo's failure that ``error`` is, or holds in an exception group; ``None`` for anything else."""
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _failure(inner)
            if found is not None:
                return found
        return None
    if isinstance(error, DemoFailed):
        return error
    if isinstance(error, TimeoutError):  # NoQuorum included
        return DemoFailed(f"a step of the story did not finish in time ({type(error).__name__}: {error})")
    return None


def main() -> int:
    """Run the demo; return the exit status (0 when the story went as told)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    try:
        anyio.run(run)
    except DemoFailed as failed:
        print(f"\nthe demo failed: {failed}", file=sys.stderr)
        return 1
    return 0
