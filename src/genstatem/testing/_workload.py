"""``KVWorkload``: clients doing random operations on a Raft cluster, recorded for the linearizability checker."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Final

import anyio
import attrs

from .._core import ActorSystem
from ..raft import CommandFailed, KVMachine, NoQuorum, RaftClient, RaftError
from ._history import HistoryRecorder, Operation
from ._raft_cluster import RaftCluster
from ._simulator import Simulation

CALL_TIMEOUT: Final = 0.5
"""Virtual seconds a client waits for one node's answer before it tries another."""


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
        value_bytes: with it, a quarter of the values written are padded to a
            size drawn log-uniformly up to this many bytes, so that large
            entries and large snapshots are in the mix; without it every value
            is a few bytes.
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
        value_bytes: int | None = None,
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
        self.value_bytes = value_bytes
        self._sizes = random.Random(f"{sim.seed}/values")

    async def start(self) -> None:
        """Start the client nodes."""
        for name in self.names:
            system = await self.sim.start_node(name, no_setup)
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
        value = f"{name}:{self._values}"
        if self.value_bytes and self._sizes.random() < 0.25:
            value += ":" + "v" * round(self.value_bytes ** self._sizes.random())
        return value


async def no_setup(system: ActorSystem) -> None:
    """The setup of a node that runs only clients."""
    del system
