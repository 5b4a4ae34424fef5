"""``genstatem raft serve``: one Raft node as an OS process, until SIGTERM (or SIGKILL).

The process runs one ``ActorSystem`` on a ``TcpNetwork`` with two actors:
the ``RaftNode`` (registered ``"raft"``), on a ``FileStorage`` in the data
directory, and a ``PeerBook`` (``"genstatem-peers"``) that tells the other
members where this node listens, so that a node added later, or moved to a
new address, is reached without editing every node's file.

On SIGTERM or SIGINT a leader first hands leadership to its most
up-to-date follower, so the cluster does not wait an election timeout for
a new one; then the node stops. SIGKILL loses nothing that was
acknowledged: a node acknowledges only what its storage has synced.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import MutableMapping
from typing import Any

import anyio
import structlog

import genstatem as gs

from ..net import TcpNetwork
from ..raft import FileStorage, GetStatus, RaftConfig, RaftNode, RaftSpec, RaftStatus, StorageError
from ..raft._rpc import Ok, TransferLeadership
from ._config import CliError, Settings
from ._logging import configure_logging

log = structlog.get_logger("genstatem.cli")

PEERS = "genstatem-peers"
"""The name of each node's ``PeerBook``."""

ANNOUNCE_EVERY = 5.0
"""Seconds between a node's announcements of its address to the members it knows."""


class PeerBook(gs.GenStateMachine):
    """Keeps the node's address book (the ``TcpNetwork``'s peers), and tells the others where this node is.

    Casts ``("announce", node, host, port)`` to every known peer at start and
    every ``ANNOUNCE_EVERY`` seconds, and takes in the others'. Answers the
    call ``"addresses"`` with the whole book, for ``raft status``.
    """

    async def init(self, arg: tuple[MutableMapping[str, tuple[str, int]], tuple[str, int]]) -> gs.Init:
        peers, me = arg
        return gs.Init("running", (peers, me), gs.GenericTimeout("announce", 0.0))

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        peers, me = data
        match event_type, content:
            case gs.GenericTimeout("announce"), _:
                for peer in list(peers):
                    self.system.remote(peer, PEERS).cast(("announce", self.system.node, *me))
                return gs.KeepState(actions=gs.GenericTimeout("announce", ANNOUNCE_EVERY))
            case gs.Cast(), ("announce", str(node), str(host), int(port)) if node != self.system.node:
                if peers.get(node) != (host, port):
                    log.info("peer address learned", node=self.system.node, peer=node, address=f"{host}:{port}")
                    peers[node] = (host, port)
                return None
            case gs.Cast(), ("learn", str(node), str(host), int(port)) if node != self.system.node:
                # from `raft add --address`: remember it, and tell the new node where we are
                peers[node] = (host, port)
                self.system.remote(node, PEERS).cast(("announce", self.system.node, *me))
                return None
            case gs.Call(caller), "addresses":
                book = {node: [host, port] for node, (host, port) in peers.items()}
                book[self.system.node] = list(me)
                gs.reply(caller, book)
                return None
        return None


async def hand_over(raft: gs.ActorRef, node: str, config: RaftConfig) -> None:
    """If ``raft`` leads, transfer leadership to its most caught-up follower and wait (bounded) until it is done."""
    status: RaftStatus = await raft.call(GetStatus())
    followers = [(match, peer) for peer, match in status.matches if peer in status.members]
    if status.role != "leader" or not followers:
        return
    _, target = max(followers)
    log.info("handing leadership over", node=node, target=target, term=status.term)
    if await raft.call(TransferLeadership(target)) != Ok():
        log.warning("leadership hand-over refused", node=node, target=target)
        return
    with anyio.move_on_after(2 * config.election_timeout[1]):
        while (await raft.call(GetStatus())).role == "leader":  # noqa: ASYNC110 - polls another actor
            await anyio.sleep(config.heartbeat_interval / 2)
        log.info("leadership handed over", node=node, target=target)
        return
    log.warning("leadership hand-over timed out", node=node, target=target)


def _members(settings: Settings, node: str) -> tuple[str, ...]:
    if settings.join:
        if not settings.peers:
            raise CliError("--join needs the running members in peers")
        return tuple(sorted(settings.peers))
    return tuple(sorted({node, *settings.peers}))


async def serve(settings: Settings) -> int:
    """Run the node until a signal stops it (0) or its RaftNode fails (1)."""
    configure_logging(format=settings.log_format, level=settings.log_level)
    if settings.node is None or settings.listen is None or settings.data is None:
        raise CliError("raft serve needs node, listen and data (in the config file or as flags)")
    node, (host, port) = settings.node, settings.listen
    secret = settings.secret()
    contexts = settings.tls.contexts() if settings.tls is not None else None
    machine = settings.machine_factory()
    config = settings.raft_config()
    members = _members(settings, node)
    peers = dict(settings.peers)
    advertise = settings.advertise or (host if host not in ("0.0.0.0", "::", "") else _hostname(), port)
    try:
        storage = FileStorage(settings.data, node=node, cluster=settings.cluster)
    except (StorageError, OSError) as error:
        raise CliError(str(error)) from error
    tls: dict[str, Any] = {}
    if contexts is not None:
        tls = {"server_ssl_context": contexts[0], "client_ssl_context": contexts[1]}
    try:
        network = TcpNetwork(host, port, secret=secret, peers=peers, **tls)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with gs.ActorSystem(node=node, network=network) as system:
                await system.start(PeerBook, (peers, advertise), name=PEERS)
                raft = await system.start(RaftNode, RaftSpec(members, machine, storage, config), name="raft")
                assert raft is not None
                log.info(
                    "node started",
                    node=node,
                    listen=f"{host}:{network.transport.port}",
                    data=str(settings.data),
                    members=",".join(members),
                    pid=os.getpid(),
                )
                stopped_by = await _until_signal_or_exit(signals, raft)
                if stopped_by is None:
                    log.error("raft node stopped; exiting", node=node)
                    return 1
                log.info("stopping", node=node, signal=signal.Signals(stopped_by).name)
                with anyio.move_on_after(3 * config.election_timeout[1]):
                    await hand_over(raft, node, config)
        log.info("node stopped", node=node)
        return 0
    except OSError as error:
        raise CliError(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
    finally:
        storage.close()


async def _until_signal_or_exit(signals: Any, raft: gs.ActorRef) -> int | None:
    """The signal that arrived first, or ``None`` if the RaftNode exited first."""
    outcome: list[int | None] = []
    async with anyio.create_task_group() as group:

        async def on_signal() -> None:
            async for signum in signals:
                outcome.append(signum)
                break
            group.cancel_scope.cancel()

        async def on_exit() -> None:
            reason = await raft.wait_exit()
            log.error("raft node exited", reason=repr(reason))
            outcome.append(None)
            group.cancel_scope.cancel()

        group.start_soon(on_signal)
        group.start_soon(on_exit)
    return outcome[0] if outcome else None


def _hostname() -> str:
    return socket.getfqdn()
