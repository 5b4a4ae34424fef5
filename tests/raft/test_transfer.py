"""Raft scenarios of leadership transfer (raft-notes.md 5 and 15).

Message-level scenarios drive one RaftNode by hand (``OneNode``: the test
plays every peer); cluster scenarios run on a ``Simulation``, on virtual
time and seeded, with election safety and log agreement checked on every
step (``Cluster``).
"""

from __future__ import annotations

from typing import Any

import pytest

from genstatem.raft import KVMachine, RaftConfig
from genstatem.raft._rpc import (
    Append,
    AppendReply,
    Ok,
    Propose,
    Rejected,
    TimeoutNow,
    TransferLeadership,
    VoteReply,
    VoteRequest,
)
from genstatem.testing import Simulation, VirtualTimeEventLoop

from .helpers import (
    CONFIG,
    ELECTION,
    Cluster,
    OneNode,
    leader_of,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Everything runs on asyncio on virtual time (the simulator's loop)."""
    return "asyncio", {"loop_factory": VirtualTimeEventLoop}


# -- 5. leadership moves around --------------------------------------------------------------


@pytest.mark.parametrize("pre_vote", [True, False], ids=["pre-vote", "no-pre-vote"])
async def test_leadership_moves_to_each_node_in_turn(pre_vote: bool) -> None:
    """Transfers hand leadership to every node in turn, one term each, losing no acknowledged write."""
    config = RaftConfig(election_timeout=(1.0, 2.0), heartbeat_interval=0.2, pre_vote=pre_vote)
    async with Simulation(seed=5) as sim:
        cluster = Cluster(sim, ("a", "b", "c", "d", "e"), config=config)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        term = (await cluster.status(leader)).term
        client = await cluster.client()
        order = [node for node in "bcdea" if node != leader] + [leader]
        for step, target in enumerate(order, start=1):
            await client.transfer_leadership(target)
            assert await cluster.wait_for_leader(among=[target], within=ELECTION) == target
            assert (await cluster.status(target)).term == term + step
            assert await client.propose(KVMachine.put("last", target)) == "ok"
        assert await client.read(KVMachine.get("last")) == leader
        assert sim.now() < 5 * ELECTION


# -- 15. leadership transfer --------------------------------------------------------------------


async def test_transfer_sends_timeout_now_only_once_the_target_has_caught_up() -> None:
    """A leader tells the target to campaign only when the target holds its whole log."""
    node = await leader_of()
    await node.cast(AppendReply(1, "b", True, 1))
    await node.call(Propose(b"x"))
    assert await node.ask(TransferLeadership("c")) == Ok()
    assert node.take(TimeoutNow) == []
    await node.cast(AppendReply(1, "c", True, 1))
    assert node.take(TimeoutNow) == []
    await node.cast(AppendReply(1, "c", True, 2))
    assert [(s.to, s.message) for s in node.take(TimeoutNow)] == [("c", TimeoutNow(1, "a"))]


async def test_proposals_are_refused_during_a_transfer() -> None:
    """While a transfer is under way the leader refuses proposals, adding nothing to its log."""
    node = await leader_of()
    await node.ask(TransferLeadership("c"))
    assert await node.ask(Propose(b"x")) == Rejected("leadership transfer in progress")
    assert node.status.last_index == 1


async def test_transfer_aborts_after_an_election_timeout() -> None:
    """A transfer that has not completed within an election timeout is abandoned: proposals are accepted again."""
    node = await leader_of()
    assert await node.ask(TransferLeadership("c")) == Ok()
    timer = node.step.generic_timeouts["transfer"]
    assert timer.time == CONFIG.election_timeout[1]
    await node.fire("transfer")
    assert node.role == "leader"
    proposer = await node.call(Propose(b"x"))
    assert node.answers(proposer) == []
    assert node.status.last_index == 2


@pytest.mark.parametrize("target", ["a", "z"])
async def test_transfer_to_self_or_to_an_unknown_node_does_nothing(target: str) -> None:
    """A transfer to the leader itself or to a non-member is refused and changes nothing."""
    node = await leader_of()
    assert await node.ask(TransferLeadership(target)) == Rejected(f"cannot transfer to {target!r}")
    assert node.take() == []
    assert node.raft.leading.transfer_target is None
    assert node.answers(await node.call(Propose(b"x"))) == []
    assert (node.role, node.status.last_index) == ("leader", 2)


async def test_transfer_target_campaigns_at_once_and_voters_ignore_their_lease() -> None:
    """TimeoutNow makes a follower campaign at once, skipping pre-vote; a voter in a leader's lease still votes."""
    target = await OneNode.start("c")
    await target.cast(Append(1, "a", 0, 0, (), 0))
    await target.cast(TimeoutNow(1, "a"))
    assert (target.role, target.status.term) == ("candidate", 2)
    requests = [s.message for s in target.take(VoteRequest)]
    assert requests == [VoteRequest(2, "c", 0, 0, transfer=True)] * 2
    voter = await OneNode.start("b")
    await voter.cast(Append(1, "a", 0, 0, (), 0))  # b has just heard from its leader
    await voter.cast(VoteRequest(2, "c", 0, 0))
    assert voter.take(VoteReply) == []  # an ordinary candidate is ignored within the lease
    await voter.cast(requests[0])
    assert [s.message for s in voter.take(VoteReply)] == [VoteReply(2, "b", True)]


async def test_transfer_to_a_lagging_node_catches_it_up_then_it_wins() -> None:
    """A transfer to a node that missed writes brings it up to date first; it wins the next term with everything."""
    async with Simulation(seed=15) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        term = (await cluster.status(leader)).term
        target = next(node for node in "abc" if node != leader)
        sim.partition([target], [node for node in "abc" if node != target])
        client = await cluster.client()
        for n in range(20):
            await client.propose(KVMachine.put("x", str(n)))
        committed = (await cluster.status(leader)).commit_index
        assert (await cluster.status(target)).last_index < committed
        sim.heal()
        await client.transfer_leadership(target)
        assert await cluster.wait_for_leader(among=[target], within=ELECTION) == target
        status = await cluster.status(target)
        assert status.term == term + 1
        assert status.commit_index >= committed
        assert await client.read(KVMachine.get("x")) == "19"


async def test_transfer_to_an_unreachable_node_aborts_after_an_election_timeout() -> None:
    """A transfer that cannot complete refuses proposals meanwhile, then gives up; the leader stays."""
    async with Simulation(seed=15) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        target = next(node for node in "abc" if node != leader)
        sim.partition([target], [node for node in "abc" if node != target])
        assert await cluster.call(leader, TransferLeadership(target)) == Ok()
        assert await cluster.call(leader, Propose(b"x")) == Rejected("leadership transfer in progress")
        await sim.sleep(CONFIG.election_timeout[1] + 0.01)
        assert await cluster.call(leader, Propose(KVMachine.put("x", "1"))) == Ok("ok")
        assert await cluster.stable_leader() == leader
