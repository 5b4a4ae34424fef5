"""Raft as OS processes, side by side with etcd and PySyncObj: puts/s, p50/p99, reads, failover; a table and a plot.

    python benchmarks/bench_cluster.py            # every system, 1/16/64/256 clients, 3 failovers
    python benchmarks/bench_cluster.py --quick    # a short run (about a minute)
    python benchmarks/bench_cluster.py --systems genstatem --clients 1 64

Needs the ``bench`` extra (``pip install -e '.[bench]'``: httpx, matplotlib,
pysyncobj) and, for etcd, an ``etcd`` binary on PATH (Debian:
``apt-get install etcd-server``). A peer that is missing is named and left
out; the rest is measured.

Each system is three OS processes on 127.0.0.1, started and stopped here,
each from a fresh temporary directory:

- genstatem: ``genstatem raft serve`` with ``FileStorage`` (fsync on
  every acknowledged write) and its default Raft timings, over TCP. The
  driver joins the cluster's network as a node of its own; N clients are N
  ``RaftClient`` sessions. A put is ``KVMachine.put``, a read a linearizable
  ``KVMachine.get`` (ReadIndex on the leader).
- etcd: ``etcd`` with its defaults (fsync on, election timeout 1 s,
  heartbeat 100 ms), driven through its v3 JSON gateway with ``httpx``
  (async, one pooled connection per concurrent client), at the leader's
  endpoint. A read is a default (linearizable) range request.
- PySyncObj: ``_pysyncobj_node.py``, a ``SyncObj`` with a ``ReplDict`` and
  PySyncObj's own defaults (in memory: no journal, no fsync), behind a
  newline-JSON TCP front end; each client has its own connection to the
  leader's front end. PySyncObj has no linearizable read, so none is
  measured.

Every client runs one request at a time; each load loop is bounded by a
request count and by seconds, whichever ends first. Keys cycle over 1,024,
values are 64 bytes. Every figure comes from one driver process (this one,
on asyncio), the same for all three systems: the ``drv%`` column is its CPU
over the cell's wall time (100 % = one core busy: the client side limits
the figure), ``srv%`` that of the three servers together.

Failover: SIGKILL the leader, then a probe client puts until one put is
acknowledged, each attempt bounded by 0.25 s; the time is from the kill to
that acknowledgement. The killed member is then started again and the
cluster left to catch up before the next round.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
import structlog
from anyio.streams.buffered import BufferedByteReceiveStream

from genstatem._cli._connect import open_cluster
from genstatem._cli._local import LocalCluster, free_ports
from genstatem.raft import KVMachine, RaftClient, RaftConfig, RaftStatus

HERE = Path(__file__).parent
SYSTEMS = ("genstatem", "etcd", "pysyncobj")
CLIENTS = (1, 16, 64, 256)
KEYS = 1024
VALUE = "v" * 64
ATTEMPT = 0.25
"""Seconds one failover probe attempt may take."""
SETTLE = 30.0
"""Seconds a cluster has to elect a leader, or to catch up after a restart."""
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    """One load cell: the latencies of the requests that were answered, and what it cost."""

    clients: int
    latencies_ns: list[int]
    seconds: float
    errors: int = 0
    driver_cpu: float = 0.0
    server_cpu: float = 0.0

    @property
    def per_s(self) -> float:
        """Answered requests per second of wall time."""
        return len(self.latencies_ns) / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, fraction: float) -> float:
        """The latency (ms) under which ``fraction`` of the answered requests fall (nearest rank)."""
        return percentile(self.latencies_ns, fraction) / 1e6


def percentile(values: Sequence[int], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (``nan`` when there are none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-int(fraction * 1000) * len(ordered) // 1000))  # ceil(fraction * n), exact in integers
    return float(ordered[min(len(ordered), rank) - 1])


@dataclass
class Result:
    """Everything measured of one system."""

    system: str
    puts: dict[int, Sample] = field(default_factory=dict)
    reads: dict[int, Sample] = field(default_factory=dict)
    failovers: list[float] = field(default_factory=list)
    election_timeout_max: float = 0.0
    note: str = ""


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (those still alive)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


class System(Protocol):
    """A three-process cluster under test, started by ``open``."""

    name: str
    reads: bool
    election_timeout_max: float

    def pids(self) -> list[int]: ...

    async def put(self, client: int, key: str, value: str) -> None: ...

    async def get(self, client: int, key: str) -> None: ...

    async def failover(self) -> float: ...


async def load(
    system: System, op: Callable[[int, int], Awaitable[None]], clients: int, count: int, seconds: float
) -> Sample:
    """``clients`` concurrent loops of ``op(client, i)``: ``count`` requests in all, or ``seconds``, if sooner."""
    latencies: list[int] = []
    issued = errors = 0
    deadline = time.monotonic() + seconds

    async def client(number: int) -> None:
        nonlocal issued, errors
        while issued < count and time.monotonic() < deadline:
            issued += 1
            started = time.perf_counter_ns()
            try:
                await op(number, issued)
            except Exception:  # a timeout or a refusal: counted, not timed
                errors += 1
                continue
            latencies.append(time.perf_counter_ns() - started)

    pids = system.pids()
    servers, driver, started = cpu_seconds(pids), time.process_time(), time.perf_counter()
    async with anyio.create_task_group() as group:
        for number in range(clients):
            group.start_soon(client, number)
    elapsed = time.perf_counter() - started
    return Sample(
        clients,
        latencies,
        elapsed,
        errors,
        driver_cpu=(time.process_time() - driver) / elapsed,
        server_cpu=(cpu_seconds(pids) - servers) / elapsed,
    )


async def until_true(check: Callable[[], Awaitable[bool]], what: str, seconds: float = SETTLE) -> None:
    """Poll ``check`` every 50 ms until it holds; ``RuntimeError`` naming ``what`` after ``seconds``."""
    with anyio.move_on_after(seconds):
        while not await check():  # noqa: ASYNC110 - polls other processes
            await anyio.sleep(0.05)
        return
    raise RuntimeError(f"{what}: not within {seconds:g}s")


def spawn(command: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in a process group of its own (a kill reaches it and nothing else)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=cwd, start_new_session=True
        )


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process``'s group and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


# --- genstatem ---------------------------------------------------------------------------------------------------


class Genstatem:
    """Three ``genstatem raft serve`` processes, with FileStorage and the default Raft timings."""

    name = "genstatem"
    reads = True

    def __init__(self, local: LocalCluster, cluster: Any) -> None:
        self.local = local
        self.cluster = cluster
        self.clients: dict[int, RaftClient] = {}
        self.election_timeout_max = RaftConfig().election_timeout[1]

    def pids(self) -> list[int]:
        return [process.pid for process in self.local.processes.values() if process.poll() is None]

    def client(self, number: int) -> RaftClient:
        if number not in self.clients:
            self.clients[number] = self.cluster.client()
            self.clients[number].timeout = 10.0
        return self.clients[number]

    async def put(self, client: int, key: str, value: str) -> None:
        await self.client(client).propose(KVMachine.put(key, value))

    async def get(self, client: int, key: str) -> None:
        await self.client(client).read(KVMachine.get(key))

    async def statuses(self) -> list[RaftStatus]:
        answers = [await self.cluster.status(node, timeout=0.5) for node in self.local.nodes]
        return [status for status in answers if isinstance(status, RaftStatus)]

    async def leader(self) -> str:
        found: list[str] = []

        async def check() -> bool:
            found[:] = [status.id for status in await self.statuses() if status.role == "leader"]
            return bool(found)

        await until_true(check, "genstatem: a leader")
        return found[0]

    async def caught_up(self) -> bool:
        statuses = await self.statuses()
        leaders = [status for status in statuses if status.role == "leader"]
        return (
            len(statuses) == len(self.local.nodes)
            and len(leaders) == 1
            and all(status.last_applied >= leaders[0].commit_index for status in statuses)
        )

    async def failover(self) -> float:
        leader = await self.leader()
        probe = self.cluster.client()
        probe.leader, probe.call_timeout, probe.timeout = leader, ATTEMPT, SETTLE
        started = time.monotonic()
        self.local.kill(leader)
        await probe.propose(KVMachine.put("failover", "x"))
        elapsed = time.monotonic() - started
        self.local.start(leader)
        await until_true(self.caught_up, "genstatem: the restarted member caught up")
        return elapsed


@asynccontextmanager
async def open_genstatem(root: Path) -> AsyncIterator[Genstatem]:
    """Start the three nodes; stop them on the way out."""
    config = RaftConfig()
    with LocalCluster(
        root, election_timeout=config.election_timeout, heartbeat_interval=config.heartbeat_interval, log_level="error"
    ) as local:
        local.start_all()
        async with open_cluster(local.settings()) as cluster:  # it dials again until the nodes listen
            system = Genstatem(local, cluster)
            await system.leader()
            yield system


# --- etcd --------------------------------------------------------------------------------------------------------


def b64(text: str) -> str:
    """``text`` as etcd's JSON gateway wants bytes: base64."""
    return base64.b64encode(text.encode()).decode()


class Etcd:
    """Three ``etcd`` members on loopback, with etcd's defaults; requests through the v3 JSON gateway."""

    name = "etcd"
    reads = True
    election_timeout_max = 2.0
    """etcd draws each election timeout from [1, 2) times ``--election-timeout`` (1 s by default)."""

    def __init__(self, root: Path, http: Any) -> None:
        ports = free_ports(6)
        self.root = root
        self.http = http
        self.names = ("e0", "e1", "e2")
        self.clients = [f"http://127.0.0.1:{port}" for port in ports[:3]]
        self.peers = [f"http://127.0.0.1:{port}" for port in ports[3:]]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.leader_url = self.clients[0]

    def command(self, index: int) -> list[str]:
        cluster = ",".join(f"{name}={peer}" for name, peer in zip(self.names, self.peers, strict=True))
        return [
            "etcd",
            f"--name={self.names[index]}",
            f"--data-dir={self.root / self.names[index]}",
            f"--listen-client-urls={self.clients[index]}",
            f"--advertise-client-urls={self.clients[index]}",
            f"--listen-peer-urls={self.peers[index]}",
            f"--initial-advertise-peer-urls={self.peers[index]}",
            f"--initial-cluster={cluster}",
            "--initial-cluster-state=new",
            "--initial-cluster-token=bench",
            "--logger=zap",
            "--log-level=error",
        ]

    def start(self, index: int) -> None:
        self.processes[index] = spawn(self.command(index), self.root / f"{self.names[index]}.log", self.root)

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes.values() if process.poll() is None]

    async def status(self, index: int) -> tuple[str, str] | None:
        """``(member id, leader id)`` from member ``index``, or ``None``."""
        try:
            answer = await self.http.post(f"{self.clients[index]}/v3/maintenance/status", json={}, timeout=ATTEMPT)
            body = answer.json()
            return str(body["header"]["member_id"]), str(body.get("leader", "0"))
        except Exception:
            return None

    async def find_leader(self) -> int:
        found: list[int] = []

        async def check() -> bool:
            statuses = {
                index: await self.status(index) for index in self.processes if self.processes[index].poll() is None
            }
            found[:] = [index for index, status in statuses.items() if status is not None and status[0] == status[1]]
            return bool(found)

        await until_true(check, "etcd: a leader")
        self.leader_url = self.clients[found[0]]
        return found[0]

    async def put(self, client: int, key: str, value: str, url: str | None = None, timeout: float = 10.0) -> None:
        answer = await self.http.post(
            f"{url or self.leader_url}/v3/kv/put", json={"key": b64(key), "value": b64(value)}, timeout=timeout
        )
        answer.raise_for_status()

    async def get(self, client: int, key: str) -> None:
        answer = await self.http.post(f"{self.leader_url}/v3/kv/range", json={"key": b64(key)})
        answer.raise_for_status()

    async def failover(self) -> float:
        leader = await self.find_leader()
        survivors = [self.clients[index] for index in self.processes if index != leader]
        started = time.monotonic()
        kill(self.processes[leader])
        attempt = 0
        while time.monotonic() - started < SETTLE:
            attempt += 1
            try:
                await self.put(0, "failover", "x", url=survivors[attempt % len(survivors)], timeout=ATTEMPT)
                break
            except Exception:
                await anyio.sleep(0.01)
        else:
            raise RuntimeError(f"etcd: no write acknowledged within {SETTLE:g}s of the leader's kill")
        elapsed = time.monotonic() - started
        self.start(leader)

        async def all_answer() -> bool:
            statuses = [await self.status(index) for index in self.processes]
            return all(status is not None and status[1] != "0" for status in statuses)

        await until_true(all_answer, "etcd: the restarted member back")
        await self.find_leader()
        await anyio.sleep(1.0)  # let it catch up (etcd's status does not tell a member's applied index)
        return elapsed


@asynccontextmanager
async def open_etcd(root: Path) -> AsyncIterator[Etcd]:
    import httpx

    limits = httpx.Limits(max_connections=1024, max_keepalive_connections=1024)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as http:
        system = Etcd(root, http)
        try:
            for index in range(3):
                system.start(index)
            await system.find_leader()
            yield system
        finally:
            for process in system.processes.values():
                kill(process)


# --- PySyncObj ---------------------------------------------------------------------------------------------------


class LineClient:
    """One connection to a PySyncObj node's front end: one JSON request, one JSON answer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stream: Any = None

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.stream is None:
            self.stream = BufferedByteReceiveStream(await anyio.connect_tcp("127.0.0.1", self.port))
        try:
            await self.stream.receive_stream.send(json.dumps(message).encode() + b"\n")
            answer: dict[str, Any] = json.loads(await self.stream.receive_until(b"\n", 1 << 20))
        except BaseException:
            await self.close()
            raise
        return answer

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
            self.stream = None


class PySyncObj:
    """Three ``_pysyncobj_node.py`` processes: a SyncObj with a ReplDict, its defaults, no fsync."""

    name = "pysyncobj"
    reads = False
    election_timeout_max = 1.4
    """PySyncObj's default ``raftMaxTimeout``."""

    def __init__(self, root: Path) -> None:
        ports = free_ports(6)
        self.root = root
        self.raft = [f"127.0.0.1:{port}" for port in ports[:3]]
        self.fronts = ports[3:]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.leader = 0
        self.clients: dict[int, LineClient] = {}

    def start(self, index: int) -> None:
        partners = [arg for other in self.raft if other != self.raft[index] for arg in ("--partner", other)]
        command = [sys.executable, str(HERE / "_pysyncobj_node.py"), "--raft", self.raft[index], *partners]
        self.processes[index] = spawn(
            [*command, "--front", str(self.fronts[index])], self.root / f"n{index}.log", self.root
        )

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes.values() if process.poll() is None]

    async def status(self, index: int) -> dict[str, Any] | None:
        client = LineClient(self.fronts[index])
        try:
            with anyio.fail_after(ATTEMPT):
                return await client.request({"op": "status"})
        except Exception:
            return None
        finally:
            await client.close()

    async def find_leader(self) -> int:
        found: list[int] = []

        async def check() -> bool:
            statuses = [await self.status(index) for index in self.processes]
            found[:] = [
                i for i, status in enumerate(statuses) if status is not None and status["leader"] == self.raft[i]
            ]
            return bool(found)

        await until_true(check, "pysyncobj: a leader")
        if found[0] != self.leader:
            for client in self.clients.values():
                await client.close()
            self.clients.clear()
        self.leader = found[0]
        return self.leader

    async def put(self, client: int, key: str, value: str) -> None:
        if client not in self.clients:
            self.clients[client] = LineClient(self.fronts[self.leader])
        answer = await self.clients[client].request({"op": "put", "k": key, "v": value})
        if not answer["ok"]:
            raise RuntimeError(f"pysyncobj refused the put: FAIL_REASON {answer['error']}")

    async def get(self, client: int, key: str) -> None:
        raise NotImplementedError("PySyncObj has no linearizable read")

    async def failover(self) -> float:
        leader = await self.find_leader()
        survivors = [self.fronts[index] for index in self.processes if index != leader]
        started = time.monotonic()
        kill(self.processes[leader])
        attempt = 0
        while time.monotonic() - started < SETTLE:
            attempt += 1
            probe = LineClient(survivors[attempt % len(survivors)])
            try:
                with anyio.fail_after(ATTEMPT):
                    if (await probe.request({"op": "put", "k": "failover", "v": "x"}))["ok"]:
                        break
            except Exception:
                pass
            finally:
                await probe.close()
            await anyio.sleep(0.01)
        else:
            raise RuntimeError(f"pysyncobj: no write acknowledged within {SETTLE:g}s of the leader's kill")
        elapsed = time.monotonic() - started
        self.start(leader)

        async def caught_up() -> bool:
            statuses = [await self.status(index) for index in self.processes]
            applied = {status["applied"] for status in statuses if status is not None and status["leader"]}
            return len(applied) == 1 and all(statuses)

        await until_true(caught_up, "pysyncobj: the restarted member caught up")
        await self.find_leader()
        return elapsed


@asynccontextmanager
async def open_pysyncobj(root: Path) -> AsyncIterator[PySyncObj]:
    system = PySyncObj(root)
    try:
        for index in range(3):
            system.start(index)
        await system.find_leader()
        yield system
    finally:
        for client in system.clients.values():
            await client.close()
        for process in system.processes.values():
            kill(process)


OPENERS = {"genstatem": open_genstatem, "etcd": open_etcd, "pysyncobj": open_pysyncobj}


def missing(name: str) -> str | None:
    """Why ``name`` cannot be measured here, or ``None``."""
    needs = {"etcd": ("httpx",), "pysyncobj": ("pysyncobj",)}.get(name, ())
    for module in needs:
        try:
            __import__(module)
        except ImportError:
            return f"Python package {module} missing (pip install -e '.[bench]')"
    if name == "etcd" and shutil.which("etcd") is None:
        return "no etcd binary on PATH (Debian: apt-get install etcd-server)"
    return None


# --- the run -----------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What to measure: systems, client counts, the bounds of each load cell, the failover rounds."""

    systems: list[str]
    clients: list[int]
    count: int
    seconds: float
    failovers: int


async def measure(name: str, plan: Plan, root: Path) -> Result:
    """Start ``name``'s cluster under ``root``, measure it as ``plan`` says, stop it."""
    result = Result(name)
    async with OPENERS[name](root) as system:
        result.election_timeout_max = system.election_timeout_max
        warm = min(plan.count, 100)
        await load(system, lambda c, i: system.put(c, f"k{i % KEYS}", VALUE), 4, warm, plan.seconds)
        for clients in plan.clients:
            count = max(plan.count, 4 * clients)
            result.puts[clients] = await load(
                system, lambda c, i: system.put(c, f"k{i % KEYS}", VALUE), clients, count, plan.seconds
            )
            if system.reads:
                result.reads[clients] = await load(
                    system, lambda c, i: system.get(c, f"k{i % KEYS}"), clients, count, plan.seconds
                )
            print(f"  {name}: {clients} clients done", file=sys.stderr, flush=True)
        for _ in range(plan.failovers):
            result.failovers.append(await system.failover())
    return result


async def run(plan: Plan, keep: Path | None = None) -> tuple[list[Result], dict[str, str]]:
    """Measure every system of ``plan`` in turn (one at a time); the results, and why any peer was left out."""
    results: list[Result] = []
    skipped: dict[str, str] = {}
    for name in plan.systems:
        if (why := missing(name)) is not None:
            skipped[name] = why
            print(f"  {name}: not measured: {why}", file=sys.stderr, flush=True)
            continue
        root = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        try:
            results.append(await measure(name, plan, root))
        finally:
            if keep is not None:
                shutil.copytree(root, keep / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("LOCK"))
            shutil.rmtree(root, ignore_errors=True)
    return results, skipped


# --- the report ----------------------------------------------------------------------------------------------------


def ms(value: float) -> str:
    """A latency in milliseconds, three significant figures or so."""
    return "-" if value != value else f"{value:.3g}"


def rate(value: float) -> str:
    """Requests per second, readably."""
    return f"{value / 1000:.2f}k" if value >= 1000 else f"{value:.0f}"


def median(values: Sequence[float]) -> float:
    """The middle value (the lower one of an even count); ``nan`` when empty."""
    return sorted(values)[(len(values) - 1) // 2] if values else float("nan")


def table(results: Sequence[Result]) -> str:
    """The table: one row per system and client count."""
    columns = ["system", "clients", "puts/s", "put p50 ms", "put p99 ms", "reads/s", "read p50 ms", "read p99 ms"]
    columns += ["errors", "drv%", "srv%"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for result in results:
        for clients, put in result.puts.items():
            read = result.reads.get(clients)
            cells = [
                result.system,
                str(clients),
                rate(put.per_s),
                ms(put.percentile_ms(0.5)),
                ms(put.percentile_ms(0.99)),
            ]
            if read is None:
                cells += ["n/a"] * 3
            else:
                cells += [rate(read.per_s), ms(read.percentile_ms(0.5)), ms(read.percentile_ms(0.99))]
            errors = put.errors + (read.errors if read else 0)
            cells += [str(errors), f"{100 * put.driver_cpu:.0f}", f"{100 * put.server_cpu:.0f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def failover_lines(results: Sequence[Result]) -> list[str]:
    """One line per system: SIGKILL of the leader to the first acknowledged write."""
    lines = []
    for result in results:
        if result.failovers:
            times = ", ".join(f"{t:.2f}" for t in result.failovers)
            lines.append(
                f"failover {result.system}: median {median(result.failovers):.2f} s, max {max(result.failovers):.2f} s "
                f"({times}); election timeout upper bound {result.election_timeout_max:g} s"
            )
    return lines


def verdict(ok: bool) -> str:
    return "met" if ok else "SHORT"


def ratio_lines(results: Sequence[Result], many: int = 64) -> list[str]:
    """The targets of the issue: genstatem against each peer, each with met / SHORT."""
    by = {result.system: result for result in results}
    ours = by.get("genstatem")
    if ours is None or not ours.puts:
        return []
    lines = []
    first = min(ours.puts)
    if (etcd := by.get("etcd")) is not None:
        at = many if many in ours.puts and many in etcd.puts else max(set(ours.puts) & set(etcd.puts))
        ratio = ours.puts[at].per_s / etcd.puts[at].per_s
        lines.append(f"genstatem/etcd puts/s at {at} clients: {ratio:.2f}x (target >= 1.0: {verdict(ratio >= 1.0)})")
        ratio = ours.puts[first].percentile_ms(0.5) / etcd.puts[first].percentile_ms(0.5)
        lines.append(
            f"genstatem/etcd put p50 at {first} client(s): {ratio:.2f}x (target <= 1.0: {verdict(ratio <= 1.0)})"
        )
        if first in ours.reads and first in etcd.reads:
            ratio = ours.reads[first].percentile_ms(0.5) / etcd.reads[first].percentile_ms(0.5)
            lines.append(
                f"genstatem/etcd read p50 at {first} client(s): {ratio:.2f}x (target <= 1.5: {verdict(ratio <= 1.5)})"
            )
    if ours.failovers:
        bound = 2 * ours.election_timeout_max
        worst = max(ours.failovers)
        lines.append(
            f"genstatem failover, worst of {len(ours.failovers)}: {worst:.2f} s (target <= {bound:g} s: "
            f"{verdict(worst <= bound)})"
        )
    if (peer := by.get("pysyncobj")) is not None and peer.puts:
        best_peer = max(peer.puts.values(), key=lambda sample: sample.per_s)
        best_ours = max(ours.puts.values(), key=lambda sample: sample.per_s)
        ratio = best_ours.per_s / best_peer.per_s
        lines.append(
            f"genstatem best puts/s ({rate(best_ours.per_s)} at {best_ours.clients} clients) / pysyncobj best "
            f"({rate(best_peer.per_s)} at {best_peer.clients} clients): {ratio:.2f}x (target >= 1.0: "
            f"{verdict(ratio >= 1.0)})"
        )
    return lines


def machine() -> str:
    """Where and when: the machine, Python, the peers' versions, the date."""
    versions = [f"Python {platform.python_version()}", f"{platform.system()} {platform.machine()}"]
    versions.append(f"{os.cpu_count()} CPUs ({platform.processor() or 'unknown CPU'})")
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        versions.append(f"pysyncobj {version('pysyncobj')}")
    if shutil.which("etcd"):
        with contextlib.suppress(Exception):
            out = subprocess.run(["etcd", "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
            versions.append(out.splitlines()[0].replace("Version: ", ""))
    return ", ".join(versions) + f"; {datetime.date.today().isoformat()}"


def plot(results: Sequence[Result], path: Path, many: int = 64) -> str:
    """Throughput against clients, and the put latency distribution at 1 and ``many`` clients; a line saying where."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib missing (pip install -e '.[bench]')"
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for result in results:
        clients = sorted(result.puts)
        line = left.plot(clients, [result.puts[c].per_s for c in clients], marker="o", label=f"{result.system} puts")
        if result.reads:
            left.plot(
                clients,
                [result.reads[c].per_s for c in clients],
                marker="x",
                linestyle=":",
                color=line[0].get_color(),
                label=f"{result.system} linearizable reads",
            )
        for clients_at, style in ((min(clients), "-"), (many, "--")):
            if clients_at in result.puts:
                values = sorted(result.puts[clients_at].latencies_ns)
                right.plot(
                    [v / 1e6 for v in values],
                    [(i + 1) / len(values) for i in range(len(values))],
                    linestyle=style,
                    color=line[0].get_color(),
                    label=f"{result.system}, {clients_at} clients",
                )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="concurrent clients",
        ylabel="requests/s",
        title="throughput (three processes, loopback)",
    )
    left.set_xticks(
        sorted({c for r in results for c in r.puts}),
        labels=[str(c) for c in sorted({c for r in results for c in r.puts})],
    )
    right.set(xscale="log", xlabel="put latency (ms)", ylabel="fraction of puts", title="put latency distribution")
    for axes in (left, right):
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"plot written to {path}"


def report(results: Sequence[Result], skipped: dict[str, str], plan: Plan) -> str:
    """The whole printed report."""
    lines = [
        machine(),
        f"each cell: up to {plan.count} requests or {plan.seconds:g} s; clients one request at a time",
        "",
    ]
    lines += [table(results), ""]
    lines += failover_lines(results)
    lines += [f"{name}: not measured: {why}" for name, why in skipped.items()]
    lines += ["", *ratio_lines(results)]
    return "\n".join(lines)


def as_json(results: Sequence[Result]) -> dict[str, Any]:
    """The figures (not the raw latencies) as one JSON object."""

    def cell(sample: Sample) -> dict[str, Any]:
        return {
            "n": len(sample.latencies_ns),
            "per_s": sample.per_s,
            "p50_ms": sample.percentile_ms(0.5),
            "p99_ms": sample.percentile_ms(0.99),
            "errors": sample.errors,
            "driver_cpu": sample.driver_cpu,
            "server_cpu": sample.server_cpu,
        }

    return {
        result.system: {
            "puts": {str(c): cell(s) for c, s in result.puts.items()},
            "reads": {str(c): cell(s) for c, s in result.reads.items()},
            "failovers_s": result.failovers,
            "election_timeout_max_s": result.election_timeout_max,
        }
        for result in results
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short cells (300 requests or 3 s) and one failover")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS), help="what to measure")
    parser.add_argument("--clients", nargs="+", type=int, default=list(CLIENTS), help="concurrent clients per cell")
    parser.add_argument("--count", type=int, help="requests per cell at most (default 5000; --quick 300)")
    parser.add_argument("--seconds", type=float, help="seconds per cell at most (default 10; --quick 3)")
    parser.add_argument("--failovers", type=int, help="SIGKILLs of the leader per system (default 3; --quick 1)")
    parser.add_argument(
        "--plot", type=Path, default=HERE / "cluster.png", help="the PNG (default benchmarks/cluster.png)"
    )
    parser.add_argument("--no-plot", action="store_true", help="write no plot")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--keep", type=Path, help="copy the nodes' logs and data here before removing them")
    args = parser.parse_args(argv)
    plan = Plan(
        systems=args.systems,
        clients=args.clients,
        count=args.count or (300 if args.quick else 5000),
        seconds=args.seconds or (3.0 if args.quick else 10.0),
        failovers=args.failovers if args.failovers is not None else (1 if args.quick else 3),
    )
    results, skipped = anyio.run(run, plan, args.keep)
    print(report(results, skipped, plan), flush=True)
    if not args.no_plot:
        print(plot(results, args.plot), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(results), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    structlog.configure(  # here, not at import: the test suite imports this module and captures logs
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    sys.exit(main())
