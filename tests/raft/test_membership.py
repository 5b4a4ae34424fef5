"""Raft scenarios of membership changes, one member at a time (raft-notes.md 13-14).

Message-level scenarios drive one RaftNode by hand (``OneNode``: the test
plays every peer); cluster scenarios run on a ``Simulation``, on virtual
time and seeded, with election safety and log agreement checked on every
step (``Cluster``).
"""

from __future__ import annotations

from typing import Any

import pytest

from genstatem.raft import KVMachine
from genstatem.raft._rpc import (
    AppendReply,
    ChangeMembers,
    Ok,
    Propose,
    Rejected,
)
from genstatem.testing import Simulation, VirtualTimeEventLoop

from .helpers import (
    ELECTION,
    Cluster,
    leader_of,
    role_is,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Everything runs on asyncio on virtual time (the simulator's loop)."""
    return "asyncio", {"loop_factory": VirtualTimeEventLoop}


# -- 13. membership changes ---------------------------------------------------------------------


async def test_one_membership_change_at_a_time() -> None:
    """While a membership change is uncommitted, another is refused; once it commits, the next is accepted."""
    node = await leader_of()
    await node.cast(AppendReply(1, "b", True, 1))
    adding = await node.call(ChangeMembers(add="d"))
    assert node.status.members == ("a", "b", "c", "d")  # in effect once in the log
    assert await node.ask(ChangeMembers(remove="c")) == Rejected("a membership change is in progress")
    await node.cast(AppendReply(1, "b", True, 2))
    assert node.answers(adding) == []  # a, b of a, b, c, d: no quorum under the new configuration
    await node.cast(AppendReply(1, "c", True, 2))
    assert node.answers(adding) == [Ok()]
    removing = await node.call(ChangeMembers(remove="c"))
    assert node.answers(removing) == []
    assert node.status.members == ("a", "b", "d")


async def test_removing_a_node_lowers_the_quorum_so_pending_entries_commit() -> None:
    """With two of four nodes gone, an entry waits; removing one of them makes two of three a quorum, and it commits."""
    node = await leader_of(("a", "b", "c", "d"))
    await node.cast(AppendReply(1, "b", True, 1))
    await node.cast(AppendReply(1, "c", True, 1))
    proposer = await node.call(Propose(b"x"))
    await node.cast(AppendReply(1, "b", True, 2))  # a and b hold it; c and d are gone
    assert node.answers(proposer) == []
    remover = await node.call(ChangeMembers(remove="d"))
    assert node.answers(proposer) == [Ok(1)]
    assert node.answers(remover) == []
    await node.cast(AppendReply(1, "b", True, 3))
    assert node.answers(remover) == [Ok()]
    assert node.status.members == ("a", "b", "c")


async def test_members_are_added_and_removed_one_at_a_time() -> None:
    """A node added catches up and counts in the quorum; a node removed stops counting and never disrupts the rest."""
    async with Simulation(seed=13) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        removed, other = (node for node in "abc" if node != leader)
        client = await cluster.client()
        await client.propose(KVMachine.put("x", "1"))
        await cluster.start("d")  # not a member yet: it never campaigns
        await client.add_member("d")
        await cluster.wait_applied("d", (await cluster.status(leader)).commit_index)
        assert (await cluster.status("d")).members == ("a", "b", "c", "d")
        term = (await cluster.status(leader)).term
        await client.remove_member(removed)
        assert (await cluster.status(leader)).members == tuple(node for node in "abcd" if node != removed)
        await sim.sleep(5 * ELECTION)  # the removed node, never told, does not disrupt the rest
        assert (await cluster.stable_leader(), (await cluster.status(leader)).term) == (leader, term)
        sim.partition([other, removed], [leader, "d"])  # the leader and d are a quorum of three
        assert await client.propose(KVMachine.put("x", "2")) == "ok"
        assert await client.read(KVMachine.get("x")) == "2"


async def test_client_follows_a_leader_it_was_not_told_about() -> None:
    """A client that knows only the first members reaches a leader added later, from the NotLeader answers."""
    async with Simulation(seed=13) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        await cluster.wait_for_leader()
        await cluster.start("d")
        await (await cluster.client("admin")).add_member("d")
        await (await cluster.client("admin")).transfer_leadership("d")
        await cluster.wait_for_leader(among="d")
        client = await cluster.client("old-client", timeout=2 * ELECTION)  # it knows a, b and c only
        assert await client.propose(KVMachine.put("x", "1")) == "ok"
        assert client.leader == "d"


async def test_removed_leader_steps_down_and_a_new_leader_keeps_everything_committed() -> None:
    """A leader that removes itself steps down once the change commits; the rest elect a leader holding every write."""
    async with Simulation(seed=14) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        client = await cluster.client()
        for n in range(5):
            await client.propose(KVMachine.put(f"k{n}", str(n)))
        term = (await cluster.status(leader)).term
        await client.remove_member(leader)
        removed = await cluster.status(leader)
        assert leader not in removed.members
        await cluster.wait_until(lambda: role_is(cluster, leader, "follower"), within=1.0, what="it steps down")
        rest = [node for node in "abc" if node != leader]
        new_leader = await cluster.wait_for_leader(among=rest)
        assert (await cluster.status(new_leader)).members == tuple(rest)
        for n in range(5):
            assert await client.read(KVMachine.get(f"k{n}")) == str(n)
        await sim.sleep(5 * ELECTION)
        after = await cluster.status(leader)
        assert (after.role, after.term) == ("follower", term)  # it never campaigns again
