"""Kill -9 proof: three `genstatem raft serve` processes, clients over TCP, a nemesis that kills and pauses them.

    python scripts/raft_kill.py                     # 100 runs
    python scripts/raft_kill.py --runs 20 --seed 7  # 20 runs, from seed 7
    python scripts/raft_kill.py --runs 1 --seconds 3

Each run starts three node processes on 127.0.0.1 with fresh data
directories, and for ``--seconds`` seconds runs three clients (puts, reads
and compare-and-sets on three keys, each through its own ``RaftClient``)
against a nemesis that, one fault at a time, SIGKILLs the leader (most
often) or a random node and starts it again from its directory after a
moment, or pauses a node with SIGSTOP and resumes it with SIGCONT. Then it
heals everything, waits until every node has the same log and applied all
of it, makes each node leader in turn and reads every key there (so every
node's state machine is read), and checks the whole history with the
linearizability checker: an acknowledged write that was lost, or a stale
read, is a violation. Every run prints one line; a failing run's logs,
configs and data directories are kept (``--keep``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import structlog

from genstatem._cli._connect import Cluster, open_cluster
from genstatem._cli._local import LocalCluster
from genstatem.raft import KVMachine, NoQuorum, RaftStatus, RequestRejected
from genstatem.testing import HistoryRecorder, KVModel, check

KEYS = ("k0", "k1", "k2")
CLIENTS = 3
SETTLE = 30.0
"""Seconds the healed cluster has to agree and answer (a loaded machine is slow, not wrong)."""


class RunFailed(AssertionError):
    """The run found a violation, or the cluster did not recover in time."""


async def client_loop(cluster: Cluster, name: str, history: HistoryRecorder, rng: random.Random, until: float) -> int:
    """Random operations on ``KEYS`` until ``until``, each recorded in ``history``; returns how many."""
    client = cluster.client()
    client.timeout, client.call_timeout = 2.0, 0.5
    count = 0
    seen: dict[str, str | None] = dict.fromkeys(KEYS)
    while time.monotonic() < until:
        key = rng.choice(KEYS)
        roll, count = rng.random(), count + 1
        value = f"{name}-{count}"
        if roll < 0.4:
            call = history.invoke(name, key, ("put", value))
            try:
                await client.propose(KVMachine.put(key, value))
            except NoQuorum:
                history.info(call)  # it may have happened
            else:
                history.ok(call, "ok")
        elif roll < 0.7:
            call = history.invoke(name, key, ("get",))
            try:
                seen[key] = await client.read(KVMachine.get(key))
            except NoQuorum:
                history.fail(call)  # a read without an answer tells nothing
            else:
                history.ok(call, seen[key])
        else:
            call = history.invoke(name, key, ("cas", seen[key], value))
            try:
                swapped = await client.propose(KVMachine.cas(key, seen[key], value))
            except NoQuorum:
                history.info(call)
            else:
                history.ok(call, swapped)
    return count


async def leader_of(cluster: Cluster, nodes: list[str]) -> str | None:
    """The node among ``nodes`` that says it leads (asked with short timeouts), if any."""
    for node in nodes:
        status = await cluster.status(node, timeout=0.25)
        if isinstance(status, RaftStatus) and status.role == "leader":
            return node
    return None


async def nemesis(
    local: LocalCluster, cluster: Cluster, rng: random.Random, until: float, tally: dict[str, int]
) -> None:
    """One fault at a time until ``until``: kill the leader or a node and restart it, or pause a node and resume it."""
    while time.monotonic() < until:
        await anyio.sleep(rng.uniform(0.2, 1.0))
        roll = rng.random()
        leader = await leader_of(cluster, list(local.nodes))
        victim = leader if roll < 0.5 and leader is not None else rng.choice(local.nodes)
        if roll < 0.75:
            local.kill(victim)
            tally["kills"] += 1
            tally["leader_kills"] += victim == leader
            await anyio.sleep(rng.uniform(0.1, 1.5))
            local.start(victim)
        else:
            local.signal(victim, signal.SIGSTOP)
            tally["pauses"] += 1
            await anyio.sleep(rng.uniform(0.2, 1.5))
            local.signal(victim, signal.SIGCONT)


async def converge(local: LocalCluster, cluster: Cluster) -> list[RaftStatus]:
    """Wait until every node answers with the same term, leader, and a log fully committed and applied."""
    with anyio.move_on_after(SETTLE):
        while True:
            statuses = [await cluster.status(node, timeout=1.0) for node in local.nodes]
            ready = [status for status in statuses if isinstance(status, RaftStatus)]
            if len(ready) == len(local.nodes):
                views = {(s.term, s.leader, s.commit_index, s.last_applied, s.last_index) for s in ready}
                (_, leader, commit, applied, last), *others = views
                if not others and leader is not None and commit == applied == last:
                    return ready
            await anyio.sleep(0.1)
    raise RunFailed(f"the nodes did not converge within {SETTLE:g}s: {statuses}")


async def read_everywhere(local: LocalCluster, cluster: Cluster, history: HistoryRecorder) -> None:
    """Make each node leader in turn and read every key there: each node's state machine is read."""
    client = cluster.client()
    client.timeout = 10.0
    for node in local.nodes:
        with anyio.move_on_after(SETTLE) as scope:
            while (await leader_of(cluster, list(local.nodes))) != node:
                with contextlib.suppress(RequestRejected, NoQuorum):  # an election under way: ask again
                    await client.transfer_leadership(node)
                await anyio.sleep(0.1)
        if scope.cancelled_caught:
            raise RunFailed(f"{node} did not take the leadership within {SETTLE:g}s")
        for key in KEYS:
            client.leader = node
            call = history.invoke(f"final@{node}", key, ("get",))
            history.ok(call, await client.read(KVMachine.get(key)))


async def one_run(seed: int, root: Path, seconds: float) -> dict[str, Any]:
    """One run on ``root``; raises ``RunFailed`` on a violation, returns its figures otherwise."""
    rng = random.Random(seed)
    started = time.monotonic()
    history = HistoryRecorder()
    tally = {"kills": 0, "leader_kills": 0, "pauses": 0}
    with LocalCluster(root, election_timeout=(0.5, 1.0), heartbeat_interval=0.1) as local:
        local.start_all()
        async with open_cluster(local.settings()) as cluster:
            with anyio.move_on_after(SETTLE):
                while await leader_of(cluster, list(local.nodes)) is None:  # noqa: ASYNC110 - polls the nodes
                    await anyio.sleep(0.1)
            until = time.monotonic() + seconds
            operations: list[int] = []
            async with anyio.create_task_group() as group:
                group.start_soon(nemesis, local, cluster, random.Random(rng.random()), until, tally)
                for n in range(CLIENTS):

                    async def run_client(name: str = f"c{n}", seed: float = rng.random()) -> None:
                        operations.append(await client_loop(cluster, name, history, random.Random(seed), until))

                    group.start_soon(run_client)
            for node in local.nodes:  # heal: resume the paused, restart the dead
                if node in local.stopped:
                    local.signal(node, signal.SIGCONT)
                if not local.running(node):
                    local.start(node)
            healed = time.monotonic()
            statuses = await converge(local, cluster)
            converged = time.monotonic() - healed
            await read_everywhere(local, cluster, history)
    operations_done = history.history()
    result = check(operations_done, KVModel(), timeout=60.0)
    acknowledged = sum(1 for op in operations_done if op.input[0] != "get" and not op.pending)
    figures = {
        "seed": seed,
        "verdict": result.verdict,
        "operations": len(operations_done),
        "acknowledged_writes": acknowledged,
        "unknown_writes": sum(1 for op in operations_done if op.pending),
        "term": statuses[0].term,
        "index": statuses[0].commit_index,
        "converged": converged,
        "seconds": time.monotonic() - started,
        **tally,
    }
    if result.verdict != "ok":
        raise RunFailed(f"linearizability: {result.verdict} {result!r}")
    return figures


def run(seed: int, root: Path, seconds: float) -> dict[str, Any]:
    """``one_run`` on asyncio (for the test suite too)."""
    return anyio.run(one_run, seed, root, seconds)


def describe(figures: dict[str, Any]) -> str:
    """One line for a run."""
    return (
        f"seed {figures['seed']}: {figures['verdict']}  {figures['operations']} ops, "
        f"{figures['acknowledged_writes']} writes acknowledged, {figures['unknown_writes']} unknown; "
        f"{figures['kills']} kills ({figures['leader_kills']} of the leader), {figures['pauses']} pauses; "
        f"term {figures['term']}, index {figures['index']}; converged in {figures['converged']:.1f}s; "
        f"{figures['seconds']:.1f}s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="how many runs (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="the first run's seed; run n uses seed + n")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of faults and load per run (default 8)")
    parser.add_argument("--keep", type=Path, default=Path("raft-kill-failures"), help="where failing runs are kept")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    failures = 0
    totals = {"kills": 0, "leader_kills": 0, "pauses": 0, "acknowledged_writes": 0, "operations": 0}
    for number in range(args.runs):
        seed = args.seed + number
        root = Path(tempfile.mkdtemp(prefix=f"raft-kill-{seed}-"))
        try:
            figures = run(seed, root, args.seconds)
        except (RunFailed, Exception) as error:  # keep the evidence of anything that went wrong
            failures += 1
            kept = args.keep / f"seed-{seed}"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(root, kept, ignore=shutil.ignore_patterns("LOCK"))
            print(f"run {number + 1}/{args.runs} seed {seed}: FAILED: {error!r}; logs kept in {kept}", flush=True)
        else:
            for name in totals:
                totals[name] += figures[name]
            print(f"run {number + 1}/{args.runs} {describe(figures)}", flush=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"{args.runs - failures}/{args.runs} runs ok: {totals['operations']} operations, "
        f"{totals['acknowledged_writes']} writes acknowledged and none lost; {totals['kills']} kills "
        f"({totals['leader_kills']} of the leader), {totals['pauses']} pauses"
        if not failures
        else f"{failures}/{args.runs} runs FAILED",
        flush=True,
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
