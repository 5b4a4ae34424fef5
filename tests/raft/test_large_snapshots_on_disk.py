"""A follower on ``FileStorage`` catches up through a snapshot larger than a wire frame, streamed to its disk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import pytest

import genstatem as gs
from genstatem.net import MemoryNetwork
from genstatem.raft import FileStorage, GetStatus, KVMachine, RaftClient, RaftConfig, RaftNode, RaftSpec

MEMBERS = ("a", "b", "c")
CONFIG = RaftConfig(election_timeout=(0.15, 0.3), heartbeat_interval=0.03, snapshot_every=20)
VALUE = "v" * 20_000  # 120 of them: 2.4 MB, over twice the wire's 1 MiB frame limit

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def raft_node(network: MemoryNetwork, root: Path, node: str) -> AsyncIterator[gs.ActorSystem]:
    """A RaftNode on ``node`` with a FileStorage in ``root/<node>``."""
    async with AsyncExitStack() as stack:
        storage = stack.enter_context(FileStorage(root / node, node=node, cluster="test"))
        system = await stack.enter_async_context(gs.ActorSystem(node=node, network=network))
        await system.start(RaftNode, RaftSpec(MEMBERS, KVMachine, storage, CONFIG), name="raft")
        yield system


async def test_a_follower_on_disk_catches_up_through_a_streamed_snapshot(tmp_path: Path) -> None:
    """On FileStorage: a follower down while 2.4 MB are written catches up, and the snapshot is on its disk."""
    network = MemoryNetwork()
    async with AsyncExitStack() as stack:
        for node in ("a", "b"):
            await stack.enter_async_context(raft_node(network, tmp_path, node))
        app = await stack.enter_async_context(gs.ActorSystem(node="app", network=network))
        client = RaftClient(app, MEMBERS, timeout=30.0)
        for n in range(120):
            await client.propose(KVMachine.put(f"k{n}", f"{n}{VALUE}"))
        late = await stack.enter_async_context(raft_node(network, tmp_path, "c"))
        raft = late.whereis("raft")
        assert raft is not None
        with anyio.fail_after(30):
            while (await raft.call(GetStatus())).last_applied < 120:  # noqa: ASYNC110 - polling another node
                await anyio.sleep(0.01)
        assert await client.read(KVMachine.get("k119")) == f"119{VALUE}"
    with FileStorage(tmp_path / "c", node="c", cluster="test") as storage:
        _, _, snapshots = storage.open()
        snapshot = snapshots.load()
        assert snapshot is not None
        assert snapshot.index >= 100
        assert len(snapshot.data) > 2_000_000
    assert not list((tmp_path / "c").glob("*.tmp"))
