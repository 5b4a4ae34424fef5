"""Raft scenarios of log replication (raft-notes.md 6-10, and the commit rules of the paper's section 5).

The consistency check, Figure 8, reordered and duplicated appends, proposals,
and the bound on uncommitted bytes.

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
from genstatem.raft import GetStatus, KVMachine, ListMachine, RaftConfig, RaftStatus
from genstatem.raft._rpc import (
    Append,
    AppendReply,
    ChangeMembers,
    NotLeader,
    Ok,
    Propose,
    Read,
    Rejected,
    TransferLeadership,
    Unknown,
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
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Everything runs on asyncio on virtual time (the simulator's loop)."""
    return "asyncio", {"loop_factory": VirtualTimeEventLoop}


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
    node = await leader_of(max_uncommitted_bytes=400)
    command = b"x" * 40  # 112 bytes an entry; the no-op takes 72
    callers = [await node.call(Propose(command)) for _ in range(5)]
    accepted = callers[:3]  # 72 + 3 * 112 = 408: past 400 only after the third
    assert [node.answers(c) for c in callers] == [[], [], [], *[[Rejected("too many uncommitted entries")]] * 2]
    assert node.status.last_index == 4
    await node.cast(AppendReply(1, "b", True, 4))
    assert [node.answers(c) for c in accepted] == [[Ok(1)], [Ok(2)], [Ok(3)]]
    accepted_again = await node.call(Propose(command))
    assert node.answers(accepted_again) == []
    assert node.status.last_index == 5


# -- the rules of section 5 ------------------------------------------------------------


async def test_append_of_a_stale_term_is_rejected_with_the_current_term() -> None:
    """5.1: an append of an older term is refused with the node's term, and neither its leader nor timer changes."""
    node = await follower_with_log(1, term=3)
    step = await node.cast(Append(2, "b", 1, 1, tuple(entries(2, [2])), 1))
    assert [s.message for s in node.take(AppendReply)] == [AppendReply(3, "a", False, 0)]
    assert (node.status.leader, node.status.commit_index, node.log_terms()) == (None, 0, [1])
    assert step.state_timeout is None  # the election timer runs on


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


async def test_leader_sends_heartbeats_to_every_follower() -> None:
    """5.2: on each heartbeat the leader sends every follower an append, empty when it has nothing new."""
    node = await leader_of()
    await node.cast(AppendReply(1, "b", True, 1))
    await node.cast(AppendReply(1, "c", True, 1))
    step = await node.fire("heartbeat")
    assert step.generic_timeouts["heartbeat"].time == CONFIG.heartbeat_interval
    sent = sorted((s.to, s.message) for s in node.take())
    assert sent == [("b", Append(1, "a", 1, 1, (), 1)), ("c", Append(1, "a", 1, 1, (), 1))]


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


async def test_status_is_asked_from_another_node() -> None:
    """A GetStatus call from another node is answered with the RaftStatus, across the wire."""
    async with Simulation(seed=3) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        await cluster.client()
        status = await cluster.call(leader, GetStatus(), via="client")
        assert isinstance(status, RaftStatus)
        assert (status.id, status.role, status.members) == (leader, "leader", ("a", "b", "c"))
