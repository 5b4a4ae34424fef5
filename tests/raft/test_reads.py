"""Raft scenarios of linearizable reads through ReadIndex (raft-notes.md 12).

Message-level scenarios drive one RaftNode by hand (``OneNode``: the test
plays every peer); cluster scenarios run on a ``Simulation``, on virtual
time and seeded, with election safety and log agreement checked on every
step (``Cluster``).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from genstatem.raft import Entry, KVMachine
from genstatem.raft._rpc import (
    Append,
    AppendReply,
    Ok,
    Read,
    Unknown,
)
from genstatem.testing import Simulation, VirtualTimeEventLoop

from .helpers import (
    ELECTION,
    NO_PRE_VOTE,
    Cluster,
    OneNode,
    leader_of,
    prepared_storage,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Everything runs on asyncio on virtual time (the simulator's loop)."""
    return "asyncio", {"loop_factory": VirtualTimeEventLoop}


# -- 12. reads ----------------------------------------------------------------------------------


async def test_new_leader_serves_reads_only_after_committing_an_entry_of_its_term() -> None:
    """A new leader holds a read until its own no-op commits, even once a quorum has confirmed its leadership."""
    storage = await prepared_storage(term=1, log=[Entry(1, 1, KVMachine.put("x", "1"))])
    node = await OneNode.start(storage=storage, config=NO_PRE_VOTE, machine=KVMachine)
    await node.elect("b")
    reader = await node.call(Read(KVMachine.get("x")))
    await node.cast(AppendReply(2, "b", True, 1, read_seq=1))  # leadership confirmed; the no-op not yet held
    assert node.answers(reader) == []
    await node.cast(AppendReply(2, "b", True, 2, read_seq=1))
    assert node.answers(reader) == [Ok("1")]


async def test_read_waits_for_a_quorum_to_confirm_leadership() -> None:
    """A leader answers a read only once a quorum has answered a heartbeat sent after the read arrived."""
    node = await leader_of()
    await node.cast(AppendReply(1, "b", True, 1))
    reader = await node.call(Read(b""))
    heartbeats = node.take(Append)
    assert {s.to for s in heartbeats} == {"b", "c"}
    assert all(s.message.read_seq == 1 for s in heartbeats)
    await node.cast(AppendReply(1, "b", True, 1, read_seq=0))  # a reply to an older heartbeat
    assert node.answers(reader) == []
    await node.cast(AppendReply(1, "c", True, 1, read_seq=1))
    assert node.answers(reader) == [Ok(0)]


async def test_a_cluster_of_one_answers_a_read_as_its_round_starts() -> None:
    """A lone voter is its own quorum: a read is answered at once, not left waiting for traffic that never comes."""
    node = await OneNode.start(members=("a",), config=NO_PRE_VOTE, machine=KVMachine)
    await node.fire("election")
    await node.fire("tally")
    assert node.role == "leader"
    reader = await node.call(Read(KVMachine.get("x")))
    assert node.answers(reader) == [Ok(None)]


async def test_reads_reflect_every_acknowledged_write_across_leader_changes() -> None:
    """Each read returns the last write acknowledged before it, while leaders crash, restart and hand over."""
    async with Simulation(seed=12) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        await cluster.wait_for_leader()
        writer, reader = await cluster.client("writer"), await cluster.client("reader")
        for n in range(12):
            assert await writer.propose(KVMachine.put("x", str(n))) == "ok"
            assert await reader.read(KVMachine.get("x")) == str(n)
            leader = await cluster.wait_for_leader()
            if n % 4 == 1:
                await cluster.crash(leader)
                assert await reader.read(KVMachine.get("x")) == str(n)
                await cluster.restart(leader)
            elif n % 4 == 3:
                await writer.transfer_leadership(next(node for node in "abc" if node != leader))
                assert await reader.read(KVMachine.get("x")) == str(n)


async def test_a_deposed_leader_never_serves_a_stale_read() -> None:
    """A read sent to a leader just cut off is never answered from its old state, even as the majority moves on."""
    async with Simulation(seed=12) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        client = await cluster.client()
        await client.propose(KVMachine.put("x", "old"))
        others = [node for node in "abc" if node != leader]
        sim.partition([leader], others)
        answers: list[Any] = []

        async def read_on_old_leader() -> None:
            answers.append(await cluster.call(leader, Read(KVMachine.get("x")), timeout=3 * ELECTION))

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_on_old_leader)
            await cluster.wait_for_leader(among=others)
            assert await client.propose(KVMachine.put("x", "new")) == "ok"
        assert answers == [Unknown("leadership lost before the read was confirmed")]
