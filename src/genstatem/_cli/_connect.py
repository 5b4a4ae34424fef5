"""Reaching a running cluster from a command: a throwaway node on the cluster's TCP network.

A command joins the network as a node of its own (``cli-`` and a random
suffix), proves it knows the secret as every node does, and talks to the
members' ``RaftNode``s through a ``RaftClient``. When nothing answers, the
transport's counters tell why: no member listening, a handshake refused
(a wrong secret, wrong node names, TLS that does not match, or clocks
more than 5 minutes apart), or members that answer but have no quorum.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import attrs

import genstatem as gs
from genstatem.net import TcpNetwork
from genstatem.raft import CommandFailed, GetStatus, NoQuorum, RaftClient, RaftError, RaftStatus, RequestRejected

from ._config import CliError, Settings
from ._logging import configure_logging
from ._serve import PEERS

T = TypeVar("T")

_UNREACHABLE = (gs.CallTimeout, gs.NoProcess, gs.ActorExited, anyio.BrokenResourceError, OSError)


@attrs.define
class Cluster:
    """A command's view of the cluster: its node, the members' addresses, a client."""

    system: gs.ActorSystem
    network: TcpNetwork
    peers: dict[str, tuple[str, int]]
    timeout: float

    @property
    def members(self) -> list[str]:
        """The members whose address is known, sorted."""
        return sorted(self.peers)

    def client(self) -> RaftClient:
        """A ``RaftClient`` over the known members, bounded by the command's timeout."""
        return RaftClient(self.system, self.members, timeout=self.timeout, call_timeout=min(1.0, self.timeout))

    async def status(self, member: str, *, timeout: float = 1.0) -> RaftStatus | str:
        """``member``'s status, or why it did not answer."""
        try:
            status: RaftStatus = await self.system.remote(member, "raft").call(GetStatus(), timeout=timeout)
        except gs.CallTimeout:
            return "no answer"
        except _UNREACHABLE as error:
            return self._why_unreachable(error)
        return status

    async def statuses(self) -> dict[str, RaftStatus | str]:
        """Every known member's status (or why not), asked at once; members learnt from the answers are asked too."""
        found: dict[str, RaftStatus | str] = {}
        while missing := [member for member in self.members if member not in found]:
            async with anyio.create_task_group() as group:
                for member in missing:

                    async def ask(member: str = member) -> None:
                        found[member] = await self.status(member, timeout=min(1.0, self.timeout))

                    group.start_soon(ask)
            for status in list(found.values()):
                if isinstance(status, RaftStatus):
                    for member in status.members + status.learners:
                        if member not in self.peers:
                            found[member] = "address unknown"
        return dict(sorted(found.items()))

    async def leader_status(self) -> RaftStatus:
        """The status of the member that leads now, waiting (bounded) through an election."""
        with anyio.move_on_after(self.timeout):
            while True:
                for status in (await self.statuses()).values():
                    if isinstance(status, RaftStatus) and status.role == "leader":
                        return status
                await anyio.sleep(0.1)
        raise self.no_quorum()

    async def learn_addresses(self) -> None:
        """Merge a member's address book into ours: nodes added since the config file was written."""
        for member in self.members:
            try:
                book = await self.system.remote(member, PEERS).call("addresses", timeout=min(1.0, self.timeout))
            except _UNREACHABLE:
                continue
            for node, (host, port) in book.items():
                self.peers.setdefault(str(node), (str(host), int(port)))
            return

    def _why_unreachable(self, error: BaseException) -> str:
        if isinstance(error, gs.NoProcess):
            return "no raft node there"
        return "unreachable"

    def no_quorum(self, error: NoQuorum | None = None) -> CliError:
        """The one-line reason nothing answered: no member listening, a refused handshake, or no quorum."""
        statistics = self.network.transport.statistics()
        if statistics.connections_established == 0:
            if statistics.handshake_failures:
                return CliError(
                    "the members refused the handshake: a wrong secret, wrong node names, TLS that does not match,"
                    " or clocks more than 5 minutes apart"
                )
            where = ", ".join(f"{node}={host}:{port}" for node, (host, port) in sorted(self.peers.items()))
            return CliError(f"no member reachable ({where})")
        return CliError(f"no quorum: no leader of {','.join(self.members)} answered within {self.timeout:g}s")

    async def run(self, request: Awaitable[T]) -> T:
        """Await ``request`` (a client call), turning the client's errors into one-line ``CliError``s."""
        try:
            return await request
        except NoQuorum as error:
            raise self.no_quorum(error) from error
        except CommandFailed as error:
            raise CliError(f"the state machine refused: {error.error}") from error
        except RequestRejected as error:
            raise CliError(f"refused: {error}") from error
        except RaftError as error:
            raise CliError(str(error)) from error


@asynccontextmanager
async def open_cluster(settings: Settings) -> AsyncIterator[Cluster]:
    """Join the cluster's network as a throwaway node, for one command."""
    configure_logging(format=settings.log_format, level="error")  # a command's own news is its output
    peers = settings.members()
    if not peers:
        raise CliError("no members: give -c NODE.toml or --peer NODE=HOST:PORT")
    secret = settings.secret()
    tls: dict[str, Any] = {}
    if settings.tls is not None:
        server, client = settings.tls.contexts()
        tls = {"server_ssl_context": server, "client_ssl_context": client}
    network = TcpNetwork("127.0.0.1", 0, secret=secret, peers=peers, reconnect_max_delay=0.5, **tls)
    async with gs.ActorSystem(node=f"cli-{secrets.token_hex(4)}", network=network) as system:
        cluster = Cluster(system, network, peers, settings.timeout)
        await cluster.learn_addresses()  # members added since the file was written, a leader among them
        yield cluster
