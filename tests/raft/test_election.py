"""Raft scenarios of elections (raft-notes.md 1-4 and 11, and the election rules of the paper's section 5).

Boot, one vote per term, candidates, split votes, pre-vote, and check-quorum's
leader lease.

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
    NotLeader,
    Ok,
    Propose,
    Unknown,
    VoteReply,
    VoteRequest,
)
from genstatem.testing import Faults, Simulation, VirtualTimeEventLoop

from .helpers import (
    CONFIG,
    ELECTION,
    NO_PRE_VOTE,
    Cluster,
    OneNode,
    entries,
    follower_with_log,
    follows,
    leader_of,
    prepared_storage,
    role_is,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Everything runs on asyncio on virtual time (the simulator's loop)."""
    return "asyncio", {"loop_factory": VirtualTimeEventLoop}


# -- safe defaults --------------------------------------------------------------------------


def test_safety_options_are_on_by_default() -> None:
    """Pre-vote and check-quorum are on unless turned off; heartbeats come well inside an election timeout."""
    config = RaftConfig()
    assert (config.pre_vote, config.check_quorum) == (True, True)
    assert config.heartbeat_interval < config.election_timeout[0]


# -- 1. boot ---------------------------------------------------------------------------


async def test_boots_as_a_follower_at_its_persisted_term() -> None:
    """A node starts as a follower with the term and vote it persisted, knowing no leader, sending nothing."""
    storage = await prepared_storage(term=7, voted_for="b", log=entries(1, [3, 7]))
    node = await OneNode.start(storage=storage)
    status = node.status
    assert (status.role, status.term, status.voted_for, status.leader) == ("follower", 7, "b", None)
    assert (status.last_index, status.commit_index, status.last_applied) == (2, 0, 0)
    timer = node.driver.init_step.state_timeout
    assert timer is not None
    assert timer.content == "election"
    assert timer.time is not None
    assert 1.0 <= timer.time <= 2.0
    assert node.take() == []


async def test_no_leader_before_an_election_timeout() -> None:
    """A booted cluster keeps its persisted terms with no candidate until an election timeout, then elects a leader."""
    async with Simulation(seed=2) as sim:
        storages = {node: await prepared_storage(term=term) for node, term in (("a", 3), ("b", 5), ("c", 4))}
        cluster = Cluster(sim)
        await cluster.start(storages=storages)
        await sim.sleep(CONFIG.election_timeout[0] - 0.01)
        statuses = await cluster.statuses()
        assert {n: (s.role, s.term, s.leader) for n, s in statuses.items()} == {
            "a": ("follower", 3, None),
            "b": ("follower", 5, None),
            "c": ("follower", 4, None),
        }
        leader = await cluster.wait_for_leader(within=3 * ELECTION)
        assert (await cluster.status(leader)).term > 5


# -- 2. one vote per term -------------------------------------------------------------------


async def test_one_vote_per_term_first_come_first_served() -> None:
    """In one term a node votes for the first candidate that asks, refuses the next, and re-grants to the first."""
    node = await OneNode.start(config=NO_PRE_VOTE)
    await node.cast(VoteRequest(2, "b", 0, 0))
    await node.cast(VoteRequest(2, "c", 0, 0))
    await node.cast(VoteRequest(2, "b", 0, 0))
    replies = [(s.to, s.message) for s in node.take(VoteReply)]
    assert replies == [("b", VoteReply(2, "a", True)), ("c", VoteReply(2, "a", False)), ("b", VoteReply(2, "a", True))]
    assert node.status.voted_for == "b"


async def test_vote_is_persisted_before_the_reply() -> None:
    """When the vote leaves the node, its term and vote are already durable."""
    node = await OneNode.start(config=NO_PRE_VOTE)
    await node.cast(VoteRequest(3, "c", 0, 0))
    [sent] = node.take(VoteReply)
    assert sent.message.granted
    assert (sent.durable.term, sent.durable.voted_for) == (3, "c")


async def test_vote_survives_a_restart() -> None:
    """A node restarted in the term it voted in refuses any other candidate of that term."""
    node = await OneNode.start(config=NO_PRE_VOTE)
    await node.cast(VoteRequest(3, "c", 0, 0))
    node = await node.restart()
    assert (node.status.term, node.status.voted_for) == (3, "c")
    await node.cast(VoteRequest(3, "b", 0, 0))
    [sent] = node.take(VoteReply)
    assert sent.message == VoteReply(3, "a", False)


# -- 3. a candidate meets a leader --------------------------------------------------------------


async def test_candidate_steps_down_on_an_append_of_its_term() -> None:
    """A candidate that gets an append of its own term follows that leader, keeping its term and vote."""
    node = await OneNode.start(config=NO_PRE_VOTE)
    await node.fire("election")
    assert (node.role, node.status.term) == ("candidate", 1)
    node.take()
    await node.cast(Append(1, "b", 0, 0, (), 0))
    status = node.status
    assert (status.role, status.term, status.voted_for, status.leader) == ("follower", 1, "a", "b")
    assert [s.message for s in node.take(AppendReply)] == [AppendReply(1, "a", True, 0)]


async def test_candidate_steps_down_on_an_append_of_a_higher_term() -> None:
    """A candidate that gets an append of a higher term adopts the term and follows its leader."""
    node = await OneNode.start(config=NO_PRE_VOTE)
    await node.fire("election")
    await node.cast(Append(5, "c", 0, 0, (), 0))
    status = node.status
    assert (status.role, status.term, status.voted_for, status.leader) == ("follower", 5, None, "c")


async def test_candidate_rejects_an_append_of_a_lower_term() -> None:
    """A candidate refuses an append of an older term, answering with its own term, and campaigns on."""
    node = await OneNode.start(config=NO_PRE_VOTE)
    await node.fire("election")
    await node.fire("election")
    assert (node.role, node.status.term) == ("candidate", 2)
    node.take()
    await node.cast(Append(1, "b", 0, 0, (), 0))
    assert (node.role, node.status.term, node.status.leader) == ("candidate", 2, None)
    assert [s.message for s in node.take(AppendReply)] == [AppendReply(2, "a", False, 0)]


# -- 4. split votes ---------------------------------------------------------------------------


@pytest.mark.parametrize("pre_vote", [True, False], ids=["pre-vote", "no-pre-vote"])
def test_split_votes_resolve_within_a_few_election_timeouts(pre_vote: bool) -> None:
    """Over many seeds, five nodes whose timers nearly coincide split votes, yet elect a leader within ten timeouts."""
    config = RaftConfig(election_timeout=(1.0, 1.1), heartbeat_interval=0.2, pre_vote=pre_vote)

    async def elect(sim: Simulation) -> tuple[float, int]:
        sim.faults = Faults(delay=(0.01, 0.05))
        cluster = Cluster(sim, ("a", "b", "c", "d", "e"), config=config)
        await cluster.start()
        leader = await cluster.wait_for_leader(within=10 * 1.1)
        return sim.now(), (await cluster.status(leader)).term

    runs = [Simulation.run(elect, seed=seed)[0] for seed in range(20)]
    assert max(took for took, _ in runs) <= 10 * 1.1
    assert sum(term > 1 for _, term in runs) >= 3  # split votes happened, and were resolved


# -- 11. a partitioned node comes back -----------------------------------------------------------


async def test_partitioned_node_returns_without_raising_the_term_or_deposing_the_leader() -> None:
    """A follower cut off for ten election timeouts rejoins at the same term, under the same leader."""
    async with Simulation(seed=11) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        term = (await cluster.status(leader)).term
        loner = next(node for node in "abc" if node != leader)
        sim.partition([loner], [node for node in "abc" if node != loner])
        client = await cluster.client()
        await client.propose(KVMachine.put("x", "1"))
        await sim.sleep(10 * ELECTION)
        assert (await cluster.status(loner)).term == term
        sim.heal()
        await cluster.wait_until(lambda: follows(cluster, loner, leader), within=ELECTION, what="it rejoins")
        await sim.sleep(3 * ELECTION)
        statuses = await cluster.statuses()
        assert {(s.term, s.leader) for s in statuses.values()} == {(term, leader)}
        assert statuses[loner].last_applied == statuses[leader].last_applied


async def test_follower_in_a_leader_lease_refuses_votes_until_the_leader_falls_silent() -> None:
    """Check-quorum: within an election timeout of its leader's last append a follower refuses pre-votes and votes."""
    node = await OneNode.start("b")
    await node.cast(Append(1, "a", 0, 0, (), 0))
    node.advance(CONFIG.election_timeout[0] - 0.01)
    await node.cast(VoteRequest(2, "c", 0, 0, pre_vote=True))
    await node.cast(VoteRequest(2, "c", 0, 0))
    assert [s.message for s in node.take(VoteReply)] == [VoteReply(1, "b", False, pre_vote=True)]
    assert node.status.term == 1  # the real request was ignored: its term not even adopted
    node.advance(0.01)
    await node.cast(VoteRequest(2, "c", 0, 0, pre_vote=True))
    await node.cast(VoteRequest(2, "c", 0, 0))
    replies = [s.message for s in node.take(VoteReply)]
    assert replies == [VoteReply(2, "b", True, pre_vote=True), VoteReply(2, "b", True)]


async def test_leader_cut_off_from_a_quorum_steps_down() -> None:
    """Check-quorum: a leader that hears from no quorum for an election timeout steps down; the rest elect anew."""
    async with Simulation(seed=11) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        others = [node for node in "abc" if node != leader]
        sim.partition([leader], others)
        took = await cluster.wait_until(
            lambda: role_is(cluster, leader, "follower"), within=2 * ELECTION, what="the leader steps down"
        )
        assert took <= 2 * CONFIG.election_timeout[0] + 0.1
        new_leader = await cluster.wait_for_leader(among=others)
        sim.heal()
        await cluster.wait_until(lambda: follows(cluster, leader, new_leader), within=ELECTION, what="it follows")


# -- the rules of section 5 ------------------------------------------------------------


async def test_vote_request_of_a_stale_term_is_refused() -> None:
    """5.1: a vote request of an older term is refused with the voter's term."""
    node = await follower_with_log(1, term=3)
    await node.cast(VoteRequest(2, "b", 5, 2))
    assert [s.message for s in node.take(VoteReply)] == [VoteReply(3, "a", False)]
    assert node.status.voted_for is None


async def test_leader_steps_down_on_a_reply_of_a_higher_term() -> None:
    """5.1: a leader that learns of a higher term from a reply becomes a follower of that term, with no vote."""
    node = await leader_of()
    proposer = await node.call(Propose(b"x"))
    await node.cast(AppendReply(4, "b", False, 0))
    status = node.status
    assert (status.role, status.term, status.voted_for, status.leader) == ("follower", 4, None, None)
    assert node.answers(proposer) == [Unknown("leadership lost before the entry committed")]
    assert node.step.generic_timeouts["heartbeat"].time is None  # heartbeats stop


async def test_leader_deposed_by_an_append_that_commits_its_entry_answers_the_proposer() -> None:
    """A leader deposed by an append that commits its pending entry answers the proposer with the entry's result."""
    node = await leader_of()
    proposer = await node.call(Propose(b"x"))
    await node.cast(Append(2, "c", 2, 1, (), 2))  # c leads term 2, holds a's entries and has committed them
    assert (node.role, node.status.term, node.status.commit_index) == ("follower", 2, 2)
    assert node.answers(proposer) == [Ok(1)]


async def test_leader_steps_down_on_an_append_of_a_higher_term_and_follows_its_sender() -> None:
    """5.1: a leader given an append of a higher term follows the new leader and knows it at once."""
    node = await leader_of()
    await node.cast(Append(2, "c", 1, 1, (), 1))
    status = node.status
    assert (status.role, status.term, status.leader) == ("follower", 2, "c")
    assert await node.ask(Propose(b"x")) == NotLeader("c")


@pytest.mark.parametrize(
    ("last_index", "last_term", "granted"),
    [(1, 1, False), (2, 1, False), (3, 1, False), (1, 2, False), (2, 2, True), (3, 2, True), (1, 3, True)],
)
async def test_voter_grants_only_a_candidate_whose_log_is_at_least_as_up_to_date(
    last_index: int, last_term: int, granted: bool
) -> None:
    """5.4.1: a vote goes only to a candidate whose last term is higher, or equal with an index at least as high."""
    node = await follower_with_log(1, 2)
    await node.cast(VoteRequest(3, "b", last_index, last_term))
    [sent] = node.take(VoteReply)
    assert sent.message == VoteReply(3, "a", granted)


async def test_candidate_starts_a_new_term_when_its_election_times_out() -> None:
    """5.2: a candidate that neither wins nor loses votes for itself again in a new term."""
    node = await OneNode.start(config=NO_PRE_VOTE)
    await node.fire("election")
    assert [s.message for s in node.take(VoteRequest)] == [VoteRequest(1, "a", 0, 0)] * 2
    await node.cast(VoteReply(1, "b", False))
    await node.fire("election")
    assert (node.role, node.status.term, node.status.voted_for) == ("candidate", 2, "a")
    assert [s.message for s in node.take(VoteRequest)] == [VoteRequest(2, "a", 0, 0)] * 2


async def test_pre_vote_does_not_raise_the_term() -> None:
    """A pre-candidate asks for the next term without taking it; refused, it stays at its term."""
    node = await follower_with_log(1, term=1)
    await node.fire("election")
    assert (node.role, node.status.term, node.status.voted_for) == ("pre_candidate", 1, None)
    assert [s.message for s in node.take(VoteRequest)] == [VoteRequest(2, "a", 1, 1, pre_vote=True)] * 2
    await node.cast(VoteReply(1, "b", False, pre_vote=True))
    await node.cast(VoteReply(1, "c", False, pre_vote=True))
    assert (node.role, node.storage.durable().term) == ("pre_candidate", 1)
    await node.cast(VoteReply(2, "b", True, pre_vote=True))
    assert (node.role, node.status.term) == ("candidate", 2)


async def test_an_append_restarts_the_election_timer_with_a_random_timeout() -> None:
    """5.2: each append from the leader restarts a follower's election timer, drawn at random from the range."""
    node = await OneNode.start()
    times = []
    for _ in range(5):
        step = await node.cast(Append(1, "b", 0, 0, (), 0))
        assert step.state_timeout is not None
        assert step.state_timeout.content == "election"
        times.append(step.state_timeout.time)
    assert all(1.0 <= t <= 2.0 for t in times)
    assert len(set(times)) == 5


async def test_a_stable_leader_keeps_its_term() -> None:
    """5.2: while heartbeats flow, no follower ever campaigns: one term for a minute."""
    async with Simulation(seed=52) as sim:
        cluster = Cluster(sim, ("a", "b", "c", "d", "e"))
        await cluster.start()
        leader = await cluster.wait_for_leader()
        term = (await cluster.status(leader)).term
        since = sim.now()
        await sim.sleep(60)
        campaigns = [r for r in sim.records("transition") if r.time > since and "candidate" in r.detail]
        assert campaigns == []
        assert {(s.term, s.leader) for s in (await cluster.statuses()).values()} == {(term, leader)}
