"""A Raft cluster on FileStorage: every acknowledged write is read back after the whole cluster restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

import genstatem as gs
from genstatem.net import MemoryNetwork
from genstatem.raft import FileStorage, KVMachine, RaftClient, RaftConfig, RaftNode, RaftSpec

MEMBERS = ("a", "b", "c")
CONFIG = RaftConfig(election_timeout=(0.15, 0.3), heartbeat_interval=0.03, snapshot_every=7)

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def cluster(network: MemoryNetwork, root: Path, nodes: Sequence[str]) -> AsyncIterator[RaftClient]:
    """A RaftNode on each of ``nodes`` with a FileStorage in ``root/<node>``; yields a client on node "app"."""
    async with AsyncExitStack() as stack:
        for node in nodes:
            storage = stack.enter_context(FileStorage(root / node, node=node, cluster="test"))
            system = await stack.enter_async_context(gs.ActorSystem(node=node, network=network))
            await system.start(RaftNode, RaftSpec(MEMBERS, KVMachine, storage, CONFIG), name="raft")
        app = await stack.enter_async_context(gs.ActorSystem(node="app", network=network))
        yield RaftClient(app, MEMBERS, timeout=5.0)


async def test_every_acknowledged_write_survives_a_restart_of_the_whole_cluster(tmp_path: Path) -> None:
    """Writes acknowledged by a cluster on FileStorage are all read back after every node stopped and reopened."""
    network = MemoryNetwork()
    async with cluster(network, tmp_path, MEMBERS) as client:
        for n in range(20):
            assert await client.propose(KVMachine.put(f"k{n}", str(n))) == "ok"
    assert all((tmp_path / node / "snapshot").exists() for node in MEMBERS)  # snapshot_every=7: compacted

    async with cluster(network, tmp_path, MEMBERS) as client:
        for n in range(20):
            assert await client.read(KVMachine.get(f"k{n}")) == str(n)
        assert await client.propose(KVMachine.put("after", "restart")) == "ok"

    async with cluster(network, tmp_path, ("a", "b")) as client:  # a majority is enough, from disk alone
        assert await client.read(KVMachine.get("after")) == "restart"
        assert await client.read(KVMachine.get("k19")) == "19"
