"""The Raft invariant checker: each invariant caught in a hand-made bad situation, and a clean run passing."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from genstatem.raft import Entry, KVMachine, ListMachine, LogStore, MemoryStorage
from genstatem.testing import RaftCluster, Simulation, run_nemesis
from genstatem.testing._raft_checks import (
    DURABILITY,
    ELECTION_SAFETY,
    LEADER_APPEND_ONLY,
    LEADER_COMPLETENESS,
    LOG_MATCHING,
    MONOTONIC,
    NODE_ALIVE,
    ONE_VOTE_PER_TERM,
    STATE_MACHINE_SAFETY,
    InvariantViolation,
    RaftInvariants,
)
from genstatem.testing._simulator import SimRecord


@attrs.define
class FakeNode:
    """Just what the checker reads of a RaftNode, set by hand."""

    log_store: LogStore
    term: int = 0
    voted_for: str | None = None
    commit_index: int = 0
    last_applied: int = 0
    role: str = "follower"

    def state_name(self) -> str:
        return self.role


def entry(index: int, term: int, command: bytes = b"") -> Entry:
    return Entry(index, term, command or f"cmd{index}.{term}".encode())


def log(*terms: int) -> list[Entry]:
    """Entries 1, 2, ... with these terms."""
    return [entry(index, term) for index, term in enumerate(terms, 1)]


def node(entries: list[Entry] = (), **fields: Any) -> FakeNode:  # type: ignore[assignment]
    store, _, _ = MemoryStorage().open()
    store.append(entries)
    return FakeNode(store, **fields)


@pytest.fixture
def checker() -> RaftInvariants:
    return RaftInvariants()


@pytest.fixture
def violation() -> Any:
    """``with violation(INVARIANT):`` expects an InvariantViolation naming that invariant."""

    def expect(invariant: str) -> Any:
        return pytest.raises(InvariantViolation, match=f"^{invariant} violated: ")

    return expect


# -- election safety ------------------------------------------------------------------------


def test_two_leaders_in_one_term_break_election_safety(checker: RaftInvariants, violation: Any) -> None:
    """Two nodes seen leading the same term (even at different times) is an election safety violation."""
    checker.look("a", node(log(1), term=1, voted_for="a", role="leader"))
    checker.look("a", node(log(1), term=2, voted_for="b"))
    with violation(ELECTION_SAFETY) as caught:
        checker.look("b", node(log(1), term=1, voted_for="b", role="leader"))
    assert caught.value.invariant == ELECTION_SAFETY
    assert "two leaders in term 1: a (incarnation 1) and b (incarnation 1)" in str(caught.value)


def test_a_restarted_node_leading_its_old_term_again_breaks_election_safety(
    checker: RaftInvariants, violation: Any
) -> None:
    """A node that leads term t, restarts, and leads term t again was two leaders of t."""
    checker.look("a", node(log(1), term=1, voted_for="a", role="leader"))
    checker.down("a")
    with violation(ELECTION_SAFETY):
        checker.look("a", node(log(1), term=1, voted_for="a", role="leader"))


def test_one_leader_per_term_over_many_terms_passes(checker: RaftInvariants) -> None:
    """Leadership moving from node to node, one per term, is fine."""
    nodes = {name: node() for name in "abc"}
    for term, name in enumerate(["a", "b", "c", "a"], 1):
        for other in nodes.values():
            other.term, other.role = term, "follower"
            other.log_store.append([entry(term, term)])
        nodes[name].role = "leader"
        for other_name, other in nodes.items():
            checker.look(other_name, other)
    assert checker.leaders == {1: ("a", 1), 2: ("b", 1), 3: ("c", 1), 4: ("a", 1)}


# -- votes and terms ----------------------------------------------------------------------------


def test_a_term_going_back_after_a_restart_breaks_monotonicity(checker: RaftInvariants, violation: Any) -> None:
    """A node that restarts at a lower term than it had reached forgot a persisted term."""
    checker.look("a", node(term=5))
    checker.down("a")
    with violation(MONOTONIC) as caught:
        checker.look("a", node(term=3))
    assert "term of a went back from 5 to 3" in str(caught.value)


def test_a_vote_forgotten_after_a_restart_breaks_one_vote_per_term(checker: RaftInvariants, violation: Any) -> None:
    """A node that voted in term t and comes back in term t without that vote could vote twice."""
    checker.look("a", node(term=4, voted_for="b"))
    checker.down("a")
    with violation(ONE_VOTE_PER_TERM):
        checker.look("a", node(term=4, voted_for=None))


def test_a_vote_changed_within_a_term_breaks_one_vote_per_term(checker: RaftInvariants, violation: Any) -> None:
    """Changing the vote of the current term is a second vote."""
    alive = node(term=4, voted_for="b")
    checker.look("a", alive)
    alive.voted_for = "c"
    with violation(ONE_VOTE_PER_TERM):
        checker.look("a", alive)


# -- logs -----------------------------------------------------------------------------------


def test_two_entries_at_one_index_and_term_break_log_matching(checker: RaftInvariants, violation: Any) -> None:
    """Entries with the same index and term but different commands: only one leader made entries in that term."""
    checker.look("a", node([entry(1, 1, b"x")], term=1))
    with violation(LOG_MATCHING):
        checker.look("b", node([entry(1, 1, b"y")], term=1))


def test_the_same_entry_after_different_prefixes_breaks_log_matching(checker: RaftInvariants, violation: Any) -> None:
    """An (index, term) must follow the same entry on every node, so whole prefixes match."""
    checker.look("a", node([entry(1, 1), entry(2, 3, b"z")], term=3))
    with violation(LOG_MATCHING) as caught:
        checker.look("b", node([entry(1, 2), entry(2, 3, b"z")], term=3))
    assert "follows an entry of term 1 on a but of term 2 on b" in str(caught.value)


def test_a_leader_that_drops_its_own_entries_breaks_append_only(checker: RaftInvariants, violation: Any) -> None:
    """While a node leads a term, no entry leaves its log."""
    leader = node(log(1, 1, 1), term=1, voted_for="a", role="leader")
    checker.look("a", leader)
    leader.log_store.truncate_from(3)
    with violation(LEADER_APPEND_ONLY):
        checker.look("a", leader)


def test_a_leader_that_replaces_an_entry_breaks_append_only(checker: RaftInvariants, violation: Any) -> None:
    """A leader rewriting an index, even with an entry of the same length, changed its log."""
    leader = node(log(1, 1), term=1, voted_for="a", role="leader")
    checker.look("a", leader)
    leader.log_store.truncate_from(2)
    leader.log_store.append([entry(2, 1, b"other")])
    with violation(LEADER_APPEND_ONLY):
        checker.look("a", leader)


def test_a_follower_truncating_an_uncommitted_suffix_is_fine(checker: RaftInvariants) -> None:
    """Followers drop conflicting uncommitted entries: that is how logs are repaired."""
    follower = node(log(1, 1, 2), term=2, commit_index=2, last_applied=2)
    checker.look("b", follower)
    follower.log_store.truncate_from(3)
    follower.log_store.append([entry(3, 3)])
    follower.term = 3
    checker.look("b", follower)


def test_removing_a_committed_entry_breaks_state_machine_safety(checker: RaftInvariants, violation: Any) -> None:
    """A committed entry must stay in the log (or in a snapshot) for good."""
    follower = node(log(1, 1, 1), term=1, commit_index=3, last_applied=3)
    checker.look("b", follower)
    follower.log_store.truncate_from(2)
    with violation(STATE_MACHINE_SAFETY):
        checker.look("b", follower)


# -- commit, apply, leader completeness --------------------------------------------------------


def test_different_entries_committed_at_one_index_break_state_machine_safety(
    checker: RaftInvariants, violation: Any
) -> None:
    """Two nodes committing different entries at one index would apply different commands."""
    checker.look("a", node([entry(1, 1, b"x")], term=1, commit_index=1, last_applied=1))
    with violation(STATE_MACHINE_SAFETY):
        checker.look("b", node([entry(1, 2, b"y")], term=2, commit_index=1, last_applied=1))


def test_different_commands_applied_at_one_index_break_state_machine_safety(
    checker: RaftInvariants, violation: Any
) -> None:
    """What the state machines apply is recorded by index; a different command at a known index is a violation."""
    checker.applied("a", 7, b"put x 1")
    checker.applied("b", 7, b"put x 1")
    checker.applied("c", 7, b"put x 2")  # reported at the next look: apply runs inside the node's step
    with violation(STATE_MACHINE_SAFETY) as caught:
        checker.look("c", node())
    assert "a applied b'put x 1' at index 7, but c applied b'put x 2'" in str(caught.value)


def test_a_new_leader_without_a_committed_entry_breaks_leader_completeness(
    checker: RaftInvariants, violation: Any
) -> None:
    """An entry committed in term 1 must be in the log of the leader of term 2."""
    checker.look("a", node(log(1, 1), term=1, voted_for="a", role="leader", commit_index=2, last_applied=2))
    with violation(LEADER_COMPLETENESS) as caught:
        checker.look("b", node(log(1), term=2, voted_for="b", role="leader"))
    assert "leader of term 2, holds 'nothing' at index 2" in str(caught.value)


def test_an_entry_committed_after_a_later_leader_was_seen_is_checked_too(
    checker: RaftInvariants, violation: Any
) -> None:
    """A commit learnt late (by a node of an older term) is still checked against the current leader's log."""
    checker.look("c", node(log(1), term=3, voted_for="c", role="leader"))
    with violation(LEADER_COMPLETENESS):
        checker.look("a", node(log(1, 1), term=1, commit_index=2, last_applied=2))


def test_a_leader_holding_every_committed_entry_passes(checker: RaftInvariants) -> None:
    """A new leader whose log extends the committed prefix is fine, even before it learns the commit index."""
    checker.look("a", node(log(1, 1), term=1, voted_for="a", role="leader", commit_index=2, last_applied=2))
    checker.look("b", node(log(1, 1, 2), term=2, voted_for="b", role="leader"))


def test_commit_going_back_within_an_incarnation_breaks_monotonicity(checker: RaftInvariants, violation: Any) -> None:
    """A running node's commit index only grows."""
    follower = node(log(1, 1), term=1, commit_index=2, last_applied=2)
    checker.look("a", follower)
    follower.commit_index = follower.last_applied = 1
    with violation(MONOTONIC):
        checker.look("a", follower)


def test_applying_beyond_the_commit_index_breaks_monotonicity(checker: RaftInvariants, violation: Any) -> None:
    """Nothing is applied before it is committed."""
    with violation(MONOTONIC):
        checker.look("a", node(log(1, 1), term=1, commit_index=1, last_applied=2))


def test_a_restart_that_lost_committed_entries_breaks_durability(checker: RaftInvariants, violation: Any) -> None:
    """A node commits only what it has synced, so its committed entries survive a crash."""
    checker.look("a", node(log(1, 1, 1), term=1, commit_index=3, last_applied=3))
    checker.down("a")
    with violation(DURABILITY):
        checker.look("a", node(log(1), term=1))


def test_a_restart_from_the_synced_log_passes(checker: RaftInvariants) -> None:
    """A restarted node that starts over (commit 0) from everything it had is fine."""
    checker.look("a", node(log(1, 1, 1), term=1, commit_index=3, last_applied=3))
    checker.down("a")
    checker.look("a", node(log(1, 1, 1), term=1))
    assert checker.summary()["restarts"] == 1


def test_a_raft_node_stopping_on_its_own_breaks_node_alive(checker: RaftInvariants, violation: Any) -> None:
    """A RaftNode that terminates with an error (not a crash or shutdown of its node) is reported."""
    checker.track("a")
    record = SimRecord(1.0, "terminate", "a", "<ActorRef RaftNode#1 'raft'> 'follower' None AssertionError('boom')")
    with violation(NODE_ALIVE):
        checker(record)
    checker(SimRecord(2.0, "terminate", "a", "<ActorRef RaftNode#1 'raft'> 'follower' None 'shutdown'"))


# -- in a simulation ---------------------------------------------------------------------------


async def _clean_cluster(sim: Simulation) -> dict[str, int]:
    cluster = RaftCluster(sim, ["a", "b", "c"])
    await cluster.start()
    await sim.sleep(5)
    assert cluster.invariants is not None
    cluster.invariants.check_all()
    return cluster.invariants.summary()


def test_a_clean_cluster_passes_every_check() -> None:
    """An undisturbed cluster elects one leader and the checker looks at every step without complaint."""
    summary, _ = Simulation.run(_clean_cluster, seed=1)
    assert summary["leaders"] == 1
    assert summary["looks"] > 100
    assert summary["committed"] >= 1


async def _outsider_joins(sim: Simulation) -> tuple[list[str], str | None, bool]:
    cluster = RaftCluster(sim, ["a", "b", "c"])
    await cluster.start()
    await cluster.start("d")
    await sim.sleep(5)
    outsider = cluster.node("d")
    assert outsider is not None
    assert cluster.invariants is not None
    cluster.invariants.check_all()
    return cluster.nodes, outsider.state_name(), "d" in outsider.spec.members


def test_a_cluster_starts_a_node_outside_the_configuration_that_never_campaigns() -> None:
    """``RaftCluster.start("d")`` runs a non-member that knows the members, stays a follower and is checked too."""
    (nodes, role, member), _ = Simulation.run(_outsider_joins, seed=1)
    assert (nodes, role, member) == (["a", "b", "c", "d"], "follower", False)


def test_a_recorded_machine_reads_as_the_machine_it_wraps() -> None:
    """The state machine the checker wraps still shows its own attributes, so a test can read them."""
    machine = RaftInvariants().machine("a", ListMachine)()
    machine.apply(b"x")
    assert machine.entries == [b"x"]  # type: ignore[attr-defined]


async def _term_goes_back(sim: Simulation) -> None:
    cluster = RaftCluster(sim, ["a", "b", "c"])
    await cluster.start()
    await sim.sleep(3)
    follower = next(m for m in cluster.members if m != cluster.leader())
    node = cluster.node(follower)
    assert node is not None
    assert node.term >= 1
    node.term = 0  # a bug, planted
    await sim.sleep(3)
    raise AssertionError("the run went on past the violation")


def test_a_violation_ends_the_simulation_at_the_step_that_shows_it() -> None:
    """Attached to a simulation, the checker stops the run at the next step of the broken node."""
    with pytest.raises(InvariantViolation, match=r"^monotonic violated: the term of"):
        Simulation.run(_term_goes_back, seed=2)


def test_the_state_machines_apply_log_is_checked_in_a_nemesis_run() -> None:
    """In a run with faults, every command applied on any node is recorded by index and agrees."""
    report = run_nemesis(3)
    assert report.ok, report.error
    assert report.invariants["applied"] > 10
    assert report.invariants["looks"] > 500


def test_kv_machine_recording_wrapper_passes_everything_through() -> None:
    """The recording wrapper is a transparent StateMachine: apply, query, snapshot and restore reach the machine."""
    checker = RaftInvariants()
    machine = checker.machine("a", KVMachine)()
    assert machine.apply(KVMachine.put("k", "v")) == "ok"
    assert machine.query(KVMachine.get("k")) == "v"
    other = checker.machine("b", KVMachine)()
    other.restore(machine.snapshot())
    assert other.query(KVMachine.get("k")) == "v"
