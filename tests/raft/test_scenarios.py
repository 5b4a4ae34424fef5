"""The named Raft scenarios of raft-notes.md (1-15) and the rules of the paper's section 5.

Message-level scenarios drive one RaftNode by hand (``OneNode``: the test
plays every peer); cluster scenarios run on a ``Simulation``, on virtual
time and seeded, with election safety and log agreement checked on every
step (``Cluster``).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from genstatem import CallTimeout
from genstatem.raft import Entry, KVMachine, ListMachine, RaftConfig, Snapshot
from genstatem.raft._rpc import (
    Append,
    AppendReply,
    ChangeMembers,
    InstallSnapshot,
    NotLeader,
    Ok,
    Propose,
    Read,
    Rejected,
    TimeoutNow,
    TransferLeadership,
    Unknown,
    VoteReply,
    VoteRequest,
)
from genstatem.testing import Faults, Simulation, VirtualTimeEventLoop

from .scenario_helpers import CONFIG, ELECTION, Cluster, OneNode, entries, prepared_storage

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Everything runs on asyncio on virtual time (the simulator's loop)."""
    return "asyncio", {"loop_factory": VirtualTimeEventLoop}


NO_PRE_VOTE = RaftConfig(election_timeout=(1.0, 2.0), heartbeat_interval=0.2, pre_vote=False)


# -- builders ---------------------------------------------------------------------------------


async def follower_with_log(*terms: int, term: int | None = None) -> OneNode:
    """Follower ``a`` of members a, b, c holding entries 1.. of ``terms``, at ``term`` (the last entry's)."""
    storage = await prepared_storage(term=term or terms[-1], log=entries(1, terms))
    return await OneNode.start(storage=storage)


async def leader_of(
    members: tuple[str, ...] = ("a", "b", "c"), *, machine: Any = ListMachine, **config: Any
) -> OneNode:
    """Node ``a``, elected leader of term 1 by a bare majority, its no-op (index 1) not yet acknowledged."""
    options = {"election_timeout": (1.0, 2.0), "heartbeat_interval": 0.2, "pre_vote": False, **config}
    node = await OneNode.start("a", members, config=RaftConfig(**options), machine=machine)
    await node.elect(*members[1 : len(members) // 2 + 1])
    node.take()
    return node


async def snapshot_of_three_entries() -> bytes:
    """The data of a real snapshot: a ListMachine holding x1, x2, x3, proposed by session c1."""
    node = await leader_of(snapshot_every=3)
    for seq in (1, 2, 3):
        await node.call(Propose(f"x{seq}".encode(), "c1", seq))
    await node.cast(AppendReply(1, "b", True, 4))
    snapshot = node.storage.durable().snapshot
    assert snapshot is not None
    return snapshot.data


async def follows(cluster: Cluster, node: str, leader: str) -> bool:
    """Whether ``node`` is a follower of ``leader``."""
    status = await cluster.status(node)
    return status.role == "follower" and status.leader == leader


async def role_is(cluster: Cluster, node: str, role: str) -> bool:
    """Whether ``node`` is in ``role``."""
    return (await cluster.status(node)).role == role


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
    async with Simulation(seed=1) as sim:
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


# -- 6. the consistency check ---------------------------------------------------------------


async def test_follower_rejects_an_append_whose_previous_entry_does_not_match() -> None:
    """An append whose previous entry has another term, or lies past the log's end, is refused; the log is kept."""
    node = await follower_with_log(1, 1, 2)
    await node.cast(Append(3, "b", 3, 3, tuple(entries(4, [3])), 0))
    await node.cast(Append(3, "b", 5, 3, tuple(entries(6, [3])), 0))
    replies = [s.message for s in node.take(AppendReply)]
    assert replies == [AppendReply(3, "a", False, 0, hint=3), AppendReply(3, "a", False, 0, hint=4)]
    assert node.log_terms() == [1, 1, 2]


async def test_follower_truncates_a_conflicting_suffix() -> None:
    """An append that conflicts with the log replaces it from the first conflict on, durably before the ack."""
    node = await follower_with_log(1, 1, 2, 2)
    await node.cast(Append(3, "b", 2, 1, tuple(entries(3, [3])), 0))
    assert node.log_terms() == [1, 1, 3]
    [sent] = node.take(AppendReply)
    assert sent.message == AppendReply(3, "a", True, 3)
    assert [entry.term for entry in sent.durable.entries] == [1, 1, 3]


async def test_duplicate_append_is_a_no_op() -> None:
    """Delivering the same append twice appends and truncates nothing the second time and gets the same answer."""
    node = await follower_with_log(1)
    append = Append(2, "b", 1, 1, tuple(entries(2, [2, 2])), 0)
    await node.cast(append)
    before = node.storage.statistics()
    await node.cast(append)
    after = node.storage.statistics()
    assert node.log_terms() == [1, 2, 2]
    assert (after.entries_appended, after.entries_truncated) == (before.entries_appended, before.entries_truncated)
    assert [s.message for s in node.take(AppendReply)] == [AppendReply(2, "a", True, 3)] * 2


# -- 7. Figure 8 ----------------------------------------------------------------------------------


async def test_figure_8_earlier_term_entries_are_not_committed_by_counting_replicas() -> None:
    """Figure 8: a leader never commits an older term's entry because a majority holds it; its own entry commits it."""
    # S1 of Figure 8 (c): it led term 2 and left entry 2 (term 2) unreplicated; now it is elected in term 4.
    storage = await prepared_storage(term=3, log=entries(1, [1, 2]))
    node = await OneNode.start("a", ("a", "b", "c", "d", "e"), storage=storage, config=NO_PRE_VOTE)
    await node.elect("b", "c")
    assert node.log_terms() == [1, 2, 4]  # its own no-op, of term 4, at index 3
    await node.cast(AppendReply(4, "b", True, 2))
    await node.cast(AppendReply(4, "c", True, 2))
    assert node.status.commit_index == 0  # entry 2 is on S1, S2, S3, a majority of five: not committed
    await node.cast(AppendReply(4, "b", True, 3))
    assert node.status.commit_index == 0
    await node.cast(AppendReply(4, "c", True, 3))
    assert (node.status.commit_index, node.status.last_applied) == (3, 3)
    assert node.raft.applier.machine.entries == [b"c1t1", b"c2t2"]


@pytest.mark.parametrize("seed", range(10))
async def test_figure_8_logs_converge_whoever_wins(seed: int) -> None:
    """From the logs of Figure 8 (b), through elections and a leader crash, all five nodes commit the same entries."""
    storages = {
        "a": await prepared_storage(term=2, voted_for="a", log=entries(1, [1, 2])),
        "b": await prepared_storage(term=2, voted_for="a", log=entries(1, [1, 2])),
        "c": await prepared_storage(term=3, voted_for="e", log=entries(1, [1])),
        "d": await prepared_storage(term=3, voted_for="e", log=entries(1, [1])),
        "e": await prepared_storage(term=3, voted_for="e", log=entries(1, [1, 3])),
    }
    async with Simulation(seed=seed) as sim:
        cluster = Cluster(sim, ("a", "b", "c", "d", "e"), machine=ListMachine)
        await cluster.start(storages=storages)
        leader = await cluster.wait_for_leader()
        await cluster.crash(leader)
        await cluster.wait_for_leader(among=[node for node in "abcde" if node != leader])
        await cluster.restart(leader)
        client = await cluster.client()
        await client.propose(b"last")
        await cluster.wait_applied("abcde", (await cluster.status(await cluster.wait_for_leader())).commit_index)
        machines = {node: raft.applier.machine.entries for node, raft in cluster.running_nodes().items()}
        assert len({tuple(m) for m in machines.values()}) == 1, machines
        assert machines["a"][0] == b"c1t1"
        assert machines["a"][-1] == b"last"


# -- 8. reordered and duplicated appends --------------------------------------------------------


async def test_stale_append_does_not_shorten_the_log() -> None:
    """An older, shorter append from the same leader, arriving late, leaves the longer log as it is."""
    node = await follower_with_log(1, term=2)
    await node.cast(Append(2, "b", 1, 1, tuple(entries(2, [2, 2, 2])), 0))
    await node.cast(Append(2, "b", 1, 1, tuple(entries(2, [2])), 0))
    await node.cast(Append(2, "b", 0, 0, (), 0))
    assert node.log_terms() == [1, 2, 2, 2]
    assert [s.message.success for s in node.take(AppendReply)] == [True] * 3


async def test_stale_or_duplicate_replies_never_move_a_match_index_back() -> None:
    """Late, duplicated and reordered append replies never lower a follower's match index or next index."""
    node = await leader_of()
    for command in (b"x", b"y", b"z"):
        await node.call(Propose(command))
    await node.cast(AppendReply(1, "b", True, 4))
    follower = node.raft.leading.progress["b"]
    assert (follower.match, follower.next) == (4, 5)
    for late in (AppendReply(1, "b", True, 1), AppendReply(1, "b", True, 4), AppendReply(1, "b", False, 0, hint=1)):
        await node.cast(late)
        assert (follower.match, follower.next) == (4, 5), late
    assert node.status.commit_index == 4


async def test_reordering_duplicating_network_never_moves_a_log_or_match_index_back() -> None:
    """With appends pipelined through a network that duplicates and reorders, no log or match index ever goes back."""
    async with Simulation(seed=8) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        term = (await cluster.status(leader)).term
        highest: dict[tuple[str, ...], int] = {}

        def never_back(record: Any) -> None:
            for name, raft in cluster.running_nodes().items():
                marks = {("log", name): raft.log_store.last_index()}
                marks.update({("match", name, peer): f.match for peer, f in raft.leading.progress.items()})
                for key, value in marks.items():
                    assert value >= highest.get(key, 0), f"{key} went back to {value} at {record}"
                    highest[key] = value

        sim.observe(never_back)
        sim.faults = Faults(duplicate=0.3, reorder=0.5, delay=(0.001, 0.1))
        clients = [await cluster.client(f"client{i}") for i in range(40)]
        async with anyio.create_task_group() as tg:
            for i, client in enumerate(clients):  # one proposal at a time per session
                tg.start_soon(client.propose, KVMachine.put(f"k{i % 4}", str(i)))
                await sim.sleep(0.001)
        await cluster.wait_applied("abc", (await cluster.status(leader)).commit_index)
        assert {(s.term, s.leader) for s in (await cluster.statuses()).values()} == {(term, leader)}
        assert sum(1 for r in sim.records("deliver") if "Append(" in r.detail) > 0


async def test_concurrent_proposals_through_one_client_all_apply() -> None:
    """Proposals made concurrently through one RaftClient over a reordering network are each applied once."""
    async with Simulation(seed=9) as sim:
        cluster = Cluster(sim, machine=ListMachine)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        sim.faults = Faults(reorder=1.0, delay=(0.001, 0.05))
        client = await cluster.client()
        async with anyio.create_task_group() as tg:
            for n in range(10):
                tg.start_soon(client.propose, f"x{n}".encode())
        applied = cluster.raft(leader).applier.machine.entries
        assert sorted(applied) == sorted(f"x{n}".encode() for n in range(10))


# -- 9. proposals to a follower ---------------------------------------------------------------


@pytest.mark.parametrize(
    "request_", [Propose(b"x"), Read(b""), ChangeMembers(add="d"), TransferLeadership("b")], ids=type
)
async def test_follower_answers_a_request_with_the_leader_it_knows(request_: Any) -> None:
    """A follower answers a client request with the leader it knows: none before one speaks, then that one."""
    node = await OneNode.start()
    assert await node.ask(request_) == NotLeader(None)
    await node.cast(Append(1, "b", 0, 0, (), 0))
    assert await node.ask(request_) == NotLeader("b")
    assert node.status.last_index == 0


@pytest.mark.parametrize("check_quorum", [True, False], ids=["check-quorum", "no-check-quorum"])
async def test_proposal_without_a_quorum_is_never_acknowledged(check_quorum: bool) -> None:
    """A leader cut off from its followers never acknowledges a proposal; the entry is later replaced."""
    config = RaftConfig(election_timeout=(1.0, 2.0), heartbeat_interval=0.2, check_quorum=check_quorum)
    async with Simulation(seed=9) as sim:
        cluster = Cluster(sim, config=config)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        others = [node for node in "abc" if node != leader]
        sim.partition([leader], others)
        if check_quorum:  # it steps down within an election timeout, and the proposal's fate is unknown
            answer = await cluster.call(leader, Propose(KVMachine.put("x", "lost")), timeout=3 * ELECTION)
            assert answer == Unknown("leadership lost before the entry committed")
        else:  # it leads on alone, and the proposal waits
            with pytest.raises(CallTimeout):
                await cluster.call(leader, Propose(KVMachine.put("x", "lost")), timeout=3 * ELECTION)
        new_leader = await cluster.wait_for_leader(among=others)
        sim.heal()
        await cluster.wait_until(
            lambda: follows(cluster, leader, new_leader), within=2 * ELECTION, what="the old leader follows"
        )
        client = await cluster.client()
        assert await client.read(KVMachine.get("x")) is None
        assert (await cluster.status(leader)).last_index == (await cluster.status(new_leader)).last_index


# -- 10. the uncommitted bytes bound --------------------------------------------------------------


async def test_leader_refuses_proposals_beyond_the_uncommitted_bytes_bound() -> None:
    """Once its uncommitted entries pass the bound, a leader refuses proposals; after they commit it accepts again."""
    node = await leader_of(max_uncommitted_bytes=200)
    command = b"x" * 40  # 72 bytes an entry; the no-op takes 32
    callers = [await node.call(Propose(command)) for _ in range(5)]
    accepted = callers[:3]  # 32 + 3 * 72 = 248: past 200 only after the third
    assert [node.answers(c) for c in callers] == [[], [], [], *[[Rejected("too many uncommitted entries")]] * 2]
    assert node.status.last_index == 4
    await node.cast(AppendReply(1, "b", True, 4))
    assert [node.answers(c) for c in accepted] == [[Ok(1)], [Ok(2)], [Ok(3)]]
    accepted_again = await node.call(Propose(command))
    assert node.answers(accepted_again) == []
    assert node.status.last_index == 5


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
        await cluster.start("d", members=("a", "b", "c"))  # not a member yet: it never campaigns
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
        await cluster.start("d", members=("a", "b", "c"))
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


# -- the rules of section 5 --------------------------------------------------------------------


async def test_append_of_a_stale_term_is_rejected_with_the_current_term() -> None:
    """5.1: an append of an older term is refused with the node's term, and neither its leader nor timer changes."""
    node = await follower_with_log(1, term=3)
    step = await node.cast(Append(2, "b", 1, 1, tuple(entries(2, [2])), 1))
    assert [s.message for s in node.take(AppendReply)] == [AppendReply(3, "a", False, 0)]
    assert (node.status.leader, node.status.commit_index, node.log_terms()) == (None, 0, [1])
    assert step.state_timeout is None  # the election timer runs on


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


async def test_follower_commits_up_to_the_leaders_commit_but_only_what_it_knows_matches() -> None:
    """5.3: a follower's commit index is the leader's, capped at the last entry the append proved matching."""
    node = await follower_with_log(1, 1, 1, term=1)
    await node.cast(Append(2, "b", 1, 1, (), 3))  # entries 2 and 3 may still conflict with the leader's
    assert node.status.commit_index == 1
    await node.cast(Append(2, "b", 1, 1, tuple(entries(2, [2])), 3))
    assert (node.status.commit_index, node.log_terms()) == (2, [1, 2])
    assert node.raft.applier.machine.entries == [b"c1t1", b"c2t2"]


async def test_leader_commits_an_entry_a_majority_holds_and_tells_the_followers() -> None:
    """5.3: an entry of its term commits when a majority holds it, is applied, answered, and its index is sent on."""
    node = await leader_of()
    await node.cast(AppendReply(1, "b", True, 1))
    proposer = await node.call(Propose(b"x"))
    [to_b] = node.take(Append, to="b")
    assert (to_b.message.prev_index, [e.command for e in to_b.message.entries], to_b.message.commit) == (1, [b"x"], 1)
    await node.cast(AppendReply(1, "c", True, 2))
    assert node.answers(proposer) == [Ok(1)]
    await node.fire("heartbeat")
    assert {s.message.commit for s in node.take(Append)} == {2}


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


async def test_leader_sends_heartbeats_to_every_follower() -> None:
    """5.2: on each heartbeat the leader sends every follower an append, empty when it has nothing new."""
    node = await leader_of()
    await node.cast(AppendReply(1, "b", True, 1))
    await node.cast(AppendReply(1, "c", True, 1))
    step = await node.fire("heartbeat")
    assert step.generic_timeouts["heartbeat"].time == CONFIG.heartbeat_interval
    sent = sorted((s.to, s.message) for s in node.take())
    assert sent == [("b", Append(1, "a", 1, 1, (), 1)), ("c", Append(1, "a", 1, 1, (), 1))]


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


async def test_committed_entries_survive_leader_crashes() -> None:
    """5.4: every later leader holds every committed entry: writes survive the crash of each leader in turn."""
    async with Simulation(seed=54) as sim:
        cluster = Cluster(sim, ("a", "b", "c", "d", "e"))
        await cluster.start()
        client = await cluster.client()
        written: dict[str, str] = {}
        for round_ in range(4):
            for n in range(5):
                key = f"k{round_}-{n}"
                await client.propose(KVMachine.put(key, str(n)))
                written[key] = str(n)
            leader = await cluster.wait_for_leader()
            await cluster.crash(leader)
            await cluster.wait_for_leader(among=[node for node in "abcde" if node != leader])
            for key, value in written.items():
                assert await client.read(KVMachine.get(key)) == value
            await cluster.restart(leader)


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


# -- snapshots -----------------------------------------------------------------------------------


async def test_restarted_node_starts_from_its_snapshot() -> None:
    """A node compacts its log into a snapshot, and a restart restores the machine and sessions from it."""
    node = await leader_of(snapshot_every=3)
    for seq in (1, 2, 3):
        await node.call(Propose(f"x{seq}".encode(), "c1", seq))
    await node.cast(AppendReply(1, "b", True, 4))
    snapshot = node.storage.durable().snapshot
    assert snapshot is not None
    assert (snapshot.index, snapshot.term) == (4, 1)
    assert node.raft.log_store.first_index() == 5
    node = await node.restart()
    status = node.status
    assert (status.commit_index, status.last_applied, status.last_index) == (4, 4, 4)
    assert node.raft.applier.machine.entries == [b"x1", b"x2", b"x3"]
    assert node.raft.applier.sessions == {"c1": (3, Ok(3))}


SNAPSHOTS = RaftConfig(election_timeout=(1.0, 2.0), heartbeat_interval=0.2, snapshot_every=5)


async def test_lagging_follower_catches_up_through_install_snapshot() -> None:
    """A follower that missed entries the leader has compacted away is sent the snapshot and catches up."""
    async with Simulation(seed=17) as sim:
        cluster = Cluster(sim, config=SNAPSHOTS)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        lagger = next(node for node in "abc" if node != leader)
        sim.partition([lagger], [node for node in "abc" if node != lagger])
        client = await cluster.client()
        for n in range(30):
            await client.propose(KVMachine.put(f"k{n % 7}", str(n)))
        assert cluster.raft(leader).log_store.first_index() > (await cluster.status(lagger)).last_index + 1
        sim.heal()
        await cluster.wait_applied([lagger], (await cluster.status(leader)).commit_index)
        assert [r for r in sim.records("deliver") if r.peer == lagger and "InstallSnapshot(" in r.detail]
        assert cluster.raft(lagger).applier.machine.data == cluster.raft(leader).applier.machine.data


async def test_restarted_follower_resumes_from_its_snapshot_and_catches_up() -> None:
    """A crashed follower restarts from its own snapshot, then takes the leader's newer one."""
    async with Simulation(seed=18) as sim:
        cluster = Cluster(sim, config=SNAPSHOTS)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        follower = next(node for node in "abc" if node != leader)
        client = await cluster.client()
        for n in range(12):
            await client.propose(KVMachine.put("x", str(n)))
        await cluster.wait_applied([follower], 13)
        await cluster.crash(follower)
        own = cluster.storages[follower].durable().snapshot
        assert own is not None
        assert own.index >= 5
        for n in range(12, 30):
            await client.propose(KVMachine.put("x", str(n)))
        await cluster.restart(follower)
        restarted = await cluster.status(follower)
        assert restarted.last_applied >= own.index
        assert cluster.raft(follower).applier.machine.data["x"] == str(restarted.last_applied - 2)  # x was put at 2..13
        await cluster.wait_applied([follower], (await cluster.status(leader)).commit_index)
        assert cluster.raft(follower).applier.machine.data == {"x": "29"}


async def test_whole_cluster_restart_loses_nothing_committed() -> None:
    """Every node crashes and restarts from its snapshot and log; every acknowledged write is still there."""
    async with Simulation(seed=19) as sim:
        cluster = Cluster(sim, config=SNAPSHOTS)
        await cluster.start()
        await cluster.wait_for_leader()
        client = await cluster.client()
        for n in range(23):
            await client.propose(KVMachine.put(f"k{n % 5}", str(n)))
        for node in "abc":
            await cluster.crash(node)
        for node in "abc":
            await cluster.restart(node)
        await cluster.wait_for_leader()
        assert [await client.read(KVMachine.get(f"k{n}")) for n in range(5)] == ["20", "21", "22", "18", "19"]


@pytest.mark.parametrize(
    ("log", "kept"), [([1, 2, 2, 2, 2], []), ([1, 3, 3, 3, 3, 3], [3, 3])], ids=["conflicting", "matching"]
)
async def test_follower_installs_a_snapshot_over_its_log(log: list[int], kept: list[int]) -> None:
    """InstallSnapshot replaces a follower's state; its log after the snapshot stays only if it matches there."""
    node = await follower_with_log(*log)
    data = await snapshot_of_three_entries()
    await node.cast(InstallSnapshot(3, "b", Snapshot(4, 3, ("a", "b", "c"), data)))
    assert [s.message for s in node.take(AppendReply)] == [AppendReply(3, "a", True, 4)]
    status = node.status
    assert (status.role, status.leader, status.commit_index, status.last_applied) == ("follower", "b", 4, 4)
    assert node.log_terms() == kept
    assert node.raft.log_store.first_index() == 5
    assert node.raft.applier.machine.entries == [b"x1", b"x2", b"x3"]
    assert node.raft.applier.sessions == {"c1": (3, Ok(3))}
    durable = node.storage.durable()
    assert durable.snapshot is not None
    assert (durable.snapshot.index, durable.compacted_index, len(durable.entries)) == (4, 4, len(kept))
