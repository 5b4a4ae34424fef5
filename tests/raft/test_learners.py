"""Learners: members that receive the log and snapshots, never vote or campaign, and count in no quorum.

Message-level scenarios drive one RaftNode by hand (``OneNode``); cluster
scenarios run on a seeded ``Simulation`` on virtual time, checked by the
Raft invariants on every step.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from genstatem.raft import KVMachine, NoQuorum, RequestRejected
from genstatem.raft._membership import encode
from genstatem.raft._rpc import (
    Append,
    AppendReply,
    ChangeMembers,
    Ok,
    Propose,
    Read,
    Rejected,
    TimeoutNow,
    TransferLeadership,
    VoteReply,
    VoteRequest,
)
from genstatem.testing import Simulation, VirtualTimeEventLoop

from .helpers import CONFIG, ELECTION, Cluster, OneNode, leader_of, role_is

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Everything runs on asyncio on virtual time (the simulator's loop)."""
    return "asyncio", {"loop_factory": VirtualTimeEventLoop}


async def leader_with_learner(**config: Any) -> OneNode:
    """Leader ``a`` of voters a, b, c with learner ``d`` added and committed (index 2)."""
    node = await leader_of(**config)
    await node.cast(AppendReply(1, "b", True, 1))
    adding = await node.call(ChangeMembers(add="d", learner=True))
    await node.cast(AppendReply(1, "b", True, 2))
    assert node.answers(adding) == [Ok()]
    node.take()
    return node


# -- one node, driven by hand -------------------------------------------------------------


async def test_a_learner_is_sent_the_log_and_shown_apart_from_the_voters() -> None:
    """Adding a learner leaves the voters as they were; the leader replicates to it like to any follower."""
    node = await leader_with_learner()
    assert (node.status.members, node.status.learners) == (("a", "b", "c"), ("d",))
    await node.call(Propose(b"x"))
    assert [sent.message.entries[-1].command for sent in node.take(Append, to="d")] == [b"x"]


async def test_a_learner_counts_in_no_commit_quorum() -> None:
    """An entry the learner holds but only one voter (the leader) holds does not commit; a second voter commits it."""
    node = await leader_with_learner()
    proposer = await node.call(Propose(b"x"))
    await node.cast(AppendReply(1, "d", True, 3))
    assert (node.answers(proposer), node.status.commit_index) == ([], 2)
    await node.cast(AppendReply(1, "c", True, 3))
    assert node.answers(proposer) == [Ok(1)]


async def test_a_learner_counts_in_no_read_quorum() -> None:
    """A read confirmed by the learner alone waits; a voter's confirmation answers it."""
    node = await leader_with_learner()
    reader = await node.call(Read(b""))
    round_ = node.take(Append, to="d")[-1].message.read_seq
    await node.cast(AppendReply(1, "d", True, 2, read_seq=round_))
    assert node.answers(reader) == []
    await node.cast(AppendReply(1, "c", True, 2, read_seq=round_))
    assert node.answers(reader) == [Ok(0)]  # ListMachine: how many entries it applied


async def test_a_candidate_neither_asks_a_learner_for_its_vote_nor_counts_it() -> None:
    """Vote requests go to the voters only; a learner's vote does not make a candidate leader, a voter's does."""
    node = await OneNode.start("a", encode(("a", "b", "c"), ("d",)), config=attrs.evolve(CONFIG, pre_vote=False))
    await node.fire("election")
    assert sorted(sent.to for sent in node.take(VoteRequest)) == ["b", "c"]
    await node.cast(VoteReply(1, "d", True))
    assert node.role == "candidate"
    await node.cast(VoteReply(1, "b", True))
    assert node.role == "leader"


async def test_a_learner_never_campaigns_even_after_many_election_timeouts() -> None:
    """A learner's election timer runs out again and again: it stays a follower, asks for no vote, keeps its term."""
    node = await OneNode.start("d", encode(("a", "b", "c"), ("d",)))
    for _ in range(5):
        await node.fire("election")
    await node.cast(TimeoutNow(0, "a"))  # nor does a transfer make it one
    assert (node.role, node.raft.term, node.take(VoteRequest)) == ("follower", 0, [])


async def test_a_learner_answers_a_vote_request_as_etcd_does() -> None:
    """A learner may be a voter in a candidate's newer configuration it has not received yet: it grants its vote."""
    node = await OneNode.start("d", encode(("a", "b", "c"), ("d",)))
    await node.cast(VoteRequest(1, "a", 0, 0))
    assert [sent.message for sent in node.take(VoteReply)] == [VoteReply(1, "d", True)]


async def test_a_learner_far_behind_is_not_promoted_and_is_told_why() -> None:
    """Promotion is refused, with how far behind the learner is, until it holds the log within max_learner_lag."""
    node = await leader_with_learner(max_learner_lag=1)
    for command in (b"x", b"y", b"z"):
        await node.call(Propose(command))
    await node.cast(AppendReply(1, "b", True, 5))
    refusal = await node.ask(ChangeMembers(promote="d"))
    assert refusal == Rejected(
        "d is not caught up: it holds the log to index 0, the commit index is 5; "
        "a learner is promoted within 1 entries of it"
    )
    await node.cast(AppendReply(1, "d", True, 3))
    assert isinstance(await node.ask(ChangeMembers(promote="d")), Rejected)
    await node.cast(AppendReply(1, "d", True, 4))
    promoting = await node.call(ChangeMembers(promote="d"))
    assert (node.status.members, node.status.learners) == (("a", "b", "c", "d"), ())
    await node.cast(AppendReply(1, "b", True, 6))
    assert node.answers(promoting) == []  # a and b of four voters: no quorum any more
    await node.cast(AppendReply(1, "d", True, 6))
    assert node.answers(promoting) == [Ok()]


async def test_a_caught_up_learner_is_promoted_by_the_leader_with_auto_promote() -> None:
    """With auto_promote, the learner's first answer that shows it caught up makes the leader promote it."""
    node = await leader_with_learner(auto_promote=True)
    assert node.status.learners == ("d",)
    await node.cast(AppendReply(1, "d", True, 2))
    assert (node.status.members, node.status.learners, node.status.last_index) == (("a", "b", "c", "d"), (), 3)


async def test_changes_a_configuration_cannot_make_are_refused_with_the_reason() -> None:
    """A voter added as learner, a learner added as voter, a promotion of a non-member, a transfer to a learner."""
    node = await leader_with_learner()
    assert await node.ask(ChangeMembers(add="b", learner=True)) == Rejected("b is already a voter")
    assert await node.ask(ChangeMembers(add="d")) == Rejected("d is a learner: promote it to make it a voter")
    assert await node.ask(ChangeMembers(promote="e")) == Rejected("e is not a learner of the cluster")
    assert await node.ask(TransferLeadership("d")) == Rejected("cannot transfer to 'd'")


async def test_a_learner_removed_is_no_longer_replicated_to() -> None:
    """Removing a learner takes it out of the configuration; the leader stops sending it entries."""
    node = await leader_with_learner()
    await node.call(ChangeMembers(remove="d"))
    assert (node.status.members, node.status.learners) == (("a", "b", "c"), ())
    node.take()
    await node.call(Propose(b"x"))
    assert node.take(Append, to="d") == []


# -- a cluster in a simulation --------------------------------------------------------------


async def test_a_node_joins_a_live_cluster_empty_as_a_learner_then_is_promoted() -> None:
    """Start it empty, add it as a learner, promote it: it holds every write and then counts in the quorum."""
    async with Simulation(seed=41) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        client = await cluster.client()
        for n in range(20):
            await client.propose(KVMachine.put(f"k{n}", str(n)))
        await cluster.start("d")
        await client.add_learner("d")
        await cluster.wait_applied("d", (await cluster.status(leader)).commit_index)
        assert (await cluster.status("d")).learners == ("d",)
        await client.promote("d")
        assert ((await cluster.status(leader)).members, (await cluster.status(leader)).learners) == (
            ("a", "b", "c", "d"),
            (),
        )
        down = next(node for node in "abc" if node != leader)
        await cluster.crash(down)
        assert await client.propose(KVMachine.put("after", "1")) == "ok"  # 3 of 4 voters, d among them


async def test_voters_down_stop_commits_whatever_the_learner_holds() -> None:
    """Three voters and a learner with two voters down: nothing commits, no leader is elected, the learner waits."""
    async with Simulation(seed=42) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        client = await cluster.client(timeout=3 * ELECTION)
        await cluster.start("d")
        await client.add_learner("d")
        commit = (await cluster.status(leader)).commit_index
        for node in "abc":
            if node != leader:
                await cluster.crash(node)
        with pytest.raises(NoQuorum):
            await client.propose(KVMachine.put("x", "1"))
        assert (await cluster.status(leader)).commit_index == commit
        await cluster.crash(leader)
        term = (await cluster.status("d")).term
        await sim.sleep(10 * ELECTION)
        learner = await cluster.status("d")
        assert (learner.role, learner.term, learner.commit_index) == ("follower", term, commit)


async def test_a_learner_catches_up_from_a_snapshot_and_stays_a_learner_across_a_restart() -> None:
    """A learner added after compaction gets the snapshot; restarted from its snapshot, it is still a learner."""
    async with Simulation(seed=43) as sim:
        cluster = Cluster(sim, config=attrs.evolve(CONFIG, snapshot_every=5))
        await cluster.start()
        leader = await cluster.wait_for_leader()
        client = await cluster.client()
        for n in range(12):
            await client.propose(KVMachine.put(f"k{n}", str(n)))
        await cluster.start("d")
        await client.add_learner("d")
        for n in range(12, 24):  # the learner's configuration is compacted into the snapshots
            await client.propose(KVMachine.put(f"k{n}", str(n)))
        await cluster.wait_applied("d", (await cluster.status(leader)).commit_index)
        raft = cluster.raft("d")
        snapshot = raft.snapshot_store.load()
        assert snapshot is not None
        assert raft.log_store.first_index() > 1
        assert snapshot.members == ("a", "b", "c", "", "d")
        await cluster.crash("d")
        await cluster.restart("d")
        restarted = await cluster.status("d")
        assert (restarted.members, restarted.learners) == (("a", "b", "c"), ("d",))
        await sim.sleep(5 * ELECTION)
        assert await role_is(cluster, "d", "follower")
        assert await client.read(KVMachine.get("k23")) == "23"


async def test_promotion_of_a_learner_is_refused_while_it_is_cut_off() -> None:
    """A learner the leader has not heard from since its election is not caught up: promote raises, with the reason."""
    async with Simulation(seed=44) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        await cluster.wait_for_leader()
        client = await cluster.client()
        await client.add_learner("d")  # never started: it answers nothing
        with pytest.raises(RequestRejected, match="d is not caught up"):
            await client.promote("d")
