"""``python -m genstatem cluster``: three node processes, the leader killed with SIGKILL, nothing lost.

It starts three ``genstatem raft serve`` processes on 127.0.0.1 with
temporary data directories, writes through a client while it SIGKILLs the
leader's process, shows the next election and the writes going on, starts
the killed node again from its directory, shows it catch up, and reads
back every acknowledged write. Processes and directories are removed on
the way out, Ctrl-C included.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from ..raft import KVMachine, NoQuorum, RaftStatus
from ._config import CliError, find_cli_error
from ._connect import Cluster, open_cluster
from ._local import LocalCluster
from ._status import table

WAIT = 30.0
"""Seconds any step may take before the demo gives up (a loaded machine is slow, not wrong)."""


class Writer:
    """Writes ``w0000``, ``w0001``, ... one after another, each key once, and remembers what was acknowledged."""

    def __init__(self, cluster: Cluster) -> None:
        self.client = cluster.client()
        self.acknowledged: dict[str, str] = {}
        self.unknown: set[str] = set()
        self.count = 0

    async def write(self) -> None:
        key, value = f"w{self.count:04d}", f"v{self.count}"
        self.count += 1
        try:
            await self.client.propose(KVMachine.put(key, value))
        except NoQuorum:
            self.unknown.add(key)  # it may or may not have been applied
            return
        self.acknowledged[key] = value

    async def run(self, stop: anyio.Event) -> None:
        while not stop.is_set():
            await self.write()


async def _leader(cluster: Cluster, *, among: set[str] | None = None, newer_than: int = 0) -> RaftStatus:
    """The first of ``among`` found leading a term after ``newer_than``, asked in turn with short timeouts."""
    with anyio.move_on_after(WAIT):
        while True:
            for node in sorted(among or cluster.members):
                status = await cluster.status(node, timeout=0.25)
                if isinstance(status, RaftStatus) and status.role == "leader" and status.term > newer_than:
                    return status
            await anyio.sleep(0.02)
    raise CliError(f"no leader within {WAIT:g}s")


async def _caught_up(cluster: Cluster, node: str, index: int) -> RaftStatus:
    with anyio.move_on_after(WAIT):
        while True:
            status = await cluster.status(node)
            if isinstance(status, RaftStatus) and status.last_applied >= index:
                return status
            await anyio.sleep(0.05)
    raise CliError(f"{node} did not catch up within {WAIT:g}s")


async def demo(local: LocalCluster, say: Any = print) -> int:
    """The demo's story, on ``local``'s processes; returns the exit status."""
    where = ", ".join(f"{node} on 127.0.0.1:{port}" for node, port in local.ports.items())
    say(f"starting three `genstatem raft serve` processes: {where}")
    say(f"  data directories and logs under {local.root}")
    local.start_all()
    async with open_cluster(local.settings()) as cluster:
        started = time.monotonic()
        leader = await _leader(cluster)
        say(f"{leader.id} elected leader of term {leader.term} ({time.monotonic() - started:.1f} s)")

        writer = Writer(cluster)
        for _ in range(20):
            await writer.write()
        say(f"wrote {len(writer.acknowledged)} keys through the client")

        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(writer.run, stop)
            await anyio.sleep(0.3)
            victim = leader.id
            pid = local.processes[victim].pid
            before = len(writer.acknowledged)
            killed_at = time.monotonic()
            local.kill(victim)
            say(f"kill -9 {pid}: the leader {victim} is gone, with writes in flight")
            survivors = set(local.nodes) - {victim}
            leader = await _leader(cluster, among=survivors, newer_than=leader.term)
            elapsed = time.monotonic() - killed_at
            say(f"{leader.id} elected leader of term {leader.term}, {elapsed:.1f} s after the kill")
            with anyio.fail_after(WAIT):
                while len(writer.acknowledged) < before + 50:  # noqa: ASYNC110 - the writer is a task of ours
                    await anyio.sleep(0.05)
            elapsed = time.monotonic() - killed_at
            say(f"writes go on: {len(writer.acknowledged) - before} acknowledged in the {elapsed:.1f} s since the kill")

            restarted_at = time.monotonic()
            local.start(victim)
            say(f"{victim} restarted from its data directory (pid {local.processes[victim].pid})")
            now = await cluster.status(leader.id)
            caught = await _caught_up(cluster, victim, now.commit_index if isinstance(now, RaftStatus) else 0)
            say(
                f"{victim} caught up: applied up to index {caught.last_applied}, "
                f"{time.monotonic() - restarted_at:.1f} s after its restart"
            )
            stop.set()

        client = cluster.client()
        lost = [key for key, value in writer.acknowledged.items() if await client.read(KVMachine.get(key)) != value]
        say(
            f"checked every acknowledged write: {len(writer.acknowledged)} acknowledged, "
            f"{len(lost)} lost, {len(writer.unknown)} unanswered"
        )
        say("")
        say(table(await cluster.statuses()))
        if lost:
            say(f"LOST: {', '.join(lost)}")
            return 1
    for node in local.nodes:
        local.terminate(node)
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    """Run the demo in a temporary directory; clean up the processes and the directory whatever happens."""
    root = Path(tempfile.mkdtemp(prefix="genstatem-cluster-"))
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a terminated demo cleans up too
    local = LocalCluster(root, election_timeout=(0.5, 1.0), heartbeat_interval=0.1)
    keep = False
    try:
        return anyio.run(demo, local)
    except KeyboardInterrupt:
        print("interrupted: stopping the nodes")
        return 130
    except (CliError, BaseExceptionGroup) as error:
        reason = find_cli_error(error)
        if reason is None:
            raise
        keep = True
        print(f"genstatem cluster: {reason}; the nodes' logs are kept in {root}")
        return 1
    finally:
        local.close()
        signal.signal(signal.SIGTERM, previous)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
