"""Raft scenarios of client sessions: a retried proposal is applied once.

Message-level scenarios drive one RaftNode by hand (``OneNode``: the test
plays every peer); cluster scenarios run on a ``Simulation``, on virtual
time and seeded, with election safety and log agreement checked on every
step (``Cluster``).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from genstatem.raft import ListMachine
from genstatem.raft._rpc import (
    AppendReply,
    Ok,
    Propose,
    Rejected,
)
from genstatem.testing import Simulation, VirtualTimeEventLoop

from .helpers import (
    Cluster,
    leader_of,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Everything runs on asyncio on virtual time (the simulator's loop)."""
    return "asyncio", {"loop_factory": VirtualTimeEventLoop}


# -- client sessions -----------------------------------------------------------------------------


async def test_retried_proposal_of_a_session_applies_once() -> None:
    """A proposal retried with the same session and sequence number is applied once; every copy gets its result."""
    node = await leader_of()
    first = await node.call(Propose(b"x", "c1", 1))
    retry = await node.call(Propose(b"x", "c1", 1))  # its answer was lost, say, before the first committed
    await node.cast(AppendReply(1, "b", True, 3))
    assert node.answers(first) == node.answers(retry) == [Ok(1)]
    assert node.raft.applier.machine.entries == [b"x"]
    last = node.status.last_index
    assert await node.ask(Propose(b"x", "c1", 1)) == Ok(1)  # once applied, answered from the session
    assert await node.ask(Propose(b"x", "c1", 0)) == Rejected("sequence number already used")
    assert node.status.last_index == last


async def test_retried_proposal_applies_once_across_a_change_of_leader() -> None:
    """A proposal whose answer was lost, retried by the client to the next leader, is applied once and answered."""
    async with Simulation(seed=16) as sim:
        cluster = Cluster(sim, machine=ListMachine)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        others = [node for node in "abc" if node != leader]
        client = await cluster.client(call_timeout=0.5)
        assert await client.propose(b"warm-up") == 1
        sim.partition([leader], ["client"], one_way=True)  # the leader's answers to the client are lost
        answers: list[Any] = []

        async def propose() -> None:
            answers.append(await client.propose(b"x"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(propose)
            await cluster.wait_applied(others, 3)  # committed and applied: no-op, warm-up, x
            sim.partition([leader], [*others, "client"])
            new_leader = await cluster.wait_for_leader(among=others)
        assert answers == [2]
        assert cluster.raft(new_leader).applier.machine.entries == [b"warm-up", b"x"]
