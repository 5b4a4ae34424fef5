"""Raft's safety invariants, checked after every step of every node.

``RaftInvariants`` looks at each node's ``RaftNode`` directly and remembers
what it saw across steps and restarts: who led which term, which entry sits
at each (index, term), what was committed and applied where, each node's
term and vote. A look costs only the work done since the last one (new log
entries, new commits), so it can run on every step of hundreds of seeds.

    checker = RaftInvariants.attach(sim, ["a", "b", "c"])   # looks after each step
    spec = RaftSpec(members, checker.machine("a", KVMachine), storage)  # also records what is applied

A broken invariant raises ``InvariantViolation``, which names the invariant
and says what was seen where; in a simulation it ends the run at that step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, cast

from .._core import behaviour_of
from ..raft import Entry, LogStore, StateMachine
from ._simulator import SimRecord, Simulation

ELECTION_SAFETY = "election safety"
"""At most one leader per term, ever (a node that restarts cannot lead its old term again)."""
ONE_VOTE_PER_TERM = "one vote per term"
"""A node never changes or forgets the vote it cast in a term, even across a restart."""
LEADER_APPEND_ONLY = "leader append-only"
"""While a node leads a term, its log only grows."""
LOG_MATCHING = "log matching"
"""Entries with the same index and term are identical, and so are the logs up to them."""
LEADER_COMPLETENESS = "leader completeness"
"""An entry committed in a term is in the log of every leader of a later term."""
STATE_MACHINE_SAFETY = "state machine safety"
"""No two nodes commit or apply different entries at one index, and a committed entry is never removed."""
MONOTONIC = "monotonic"
"""Term never goes back on a node; commit and applied index never go back within an incarnation."""
DURABILITY = "durability"
"""What a node committed survives its crash: it was synced before it was committed."""
NODE_ALIVE = "node alive"
"""A RaftNode never stops on its own (an exception in a handler is a bug)."""

INVARIANTS = (
    ELECTION_SAFETY,
    ONE_VOTE_PER_TERM,
    LEADER_APPEND_ONLY,
    LOG_MATCHING,
    LEADER_COMPLETENESS,
    STATE_MACHINE_SAFETY,
    MONOTONIC,
    DURABILITY,
    NODE_ALIVE,
)
"""The names ``InvariantViolation.invariant`` takes."""

LEADER = "leader"
# Records a node's own engine emits between two of its handlers: only then are its role and term consistent.
_STEP_KINDS = frozenset({"event", "timeout", "enter", "transition", "postpone"})


class InvariantViolation(AssertionError):
    """A Raft invariant was broken.

    Attributes:
        invariant: which one, one of ``INVARIANTS`` (e.g. ``"election safety"``).
        detail: what was seen, naming the nodes, terms and indexes.
    """

    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant} violated: {detail}")
        self.invariant = invariant
        self.detail = detail


class RaftView(Protocol):
    """What the checker reads of a node: ``RaftNode`` has all of it."""

    @property
    def term(self) -> int: ...
    @property
    def voted_for(self) -> str | None: ...
    @property
    def commit_index(self) -> int: ...
    @property
    def last_applied(self) -> int: ...
    @property
    def log_store(self) -> LogStore: ...
    def state_name(self) -> str: ...


Locate = Callable[[str], RaftView | None]
"""Finds the running RaftNode of a node by name (``None`` when the node is down or still starting)."""


def running_raft_node(sim: Simulation, node: str, name: str = "raft") -> Any:
    """The behaviour registered as ``name`` on ``node`` in ``sim`` (its RaftNode), or ``None``.

    ``None`` while the node is down or the actor is starting, stopping or
    gone. The one way the testing kit finds a node's RaftNode: ``RaftCluster.node``
    and the ``locate`` of :meth:`RaftInvariants.attach` both use it.
    """
    try:
        system = sim.system(node)
    except LookupError:
        return None
    return behaviour_of(system, name)


class _Incarnation:
    """What was seen of one run of a node, from a (re)start to its crash."""

    __slots__ = ("applied", "commit", "lead_last", "leading", "node", "number", "seen")

    def __init__(self, node: RaftView, number: int) -> None:
        self.node = node
        self.number = number
        self.seen: list[Entry | None] = [None]  # seen[i]: the entry object at index i at the last look
        # What it committed before the first look is checked at the first look; what its snapshot covers is not.
        self.commit = min(node.commit_index, node.log_store.first_index() - 1)
        self.applied = min(node.last_applied, self.commit)
        self.leading: int | None = None  # the term it led at the last look
        self.lead_last = 0


class _Member:
    """What was seen of one node, over all its incarnations."""

    __slots__ = ("commit", "incarnation", "restarts", "term", "up", "vote")

    def __init__(self) -> None:
        self.incarnation: _Incarnation | None = None
        self.restarts = 0
        self.term = 0
        self.vote: str | None = None  # the vote seen in ``term``
        self.commit = 0  # the highest commit index seen in any incarnation
        self.up = True


class RaftInvariants:
    """Checks Raft's safety invariants on every step, keeping history across steps and restarts.

    Checked: election safety, one vote per term, leader append-only, log
    matching, leader completeness, state machine safety (committed and
    applied entries agree), monotonic term / commit / applied index, and that
    what a node committed survives its restart. The first violation raises
    ``InvariantViolation``.

    Use :meth:`attach` with a ``Simulation``; or call :meth:`look` yourself
    with any object that has a ``RaftNode``'s attributes (``RaftView``).

    Args:
        locate: finds a node's running RaftNode by name, for :meth:`check_all`
            and for :meth:`machine` to learn the index being applied.
    """

    def __init__(self, locate: Locate | None = None) -> None:
        self._locate = locate
        self._members: dict[str, _Member] = {}
        self.leaders: dict[int, tuple[str, int]] = {}
        """term -> (node, incarnation) seen leading it."""
        self._positions: dict[tuple[int, int], tuple[Entry, int | None, str]] = {}
        self._committed: dict[int, tuple[Entry, int, str]] = {}  # index -> (entry, term it was seen at, node)
        self._max_committed = 0
        self._applied: dict[int, tuple[bytes, str]] = {}
        self._pending: InvariantViolation | None = None
        self.looks = 0
        """How many times a node was looked at."""

    # -- wiring -----------------------------------------------------------------------

    @classmethod
    def attach(cls, sim: Simulation, members: Iterable[str], *, name: str = "raft") -> RaftInvariants:
        """Check the RaftNodes registered as ``name`` on ``members`` after each of their steps in ``sim``.

        Args:
            sim: the simulation; the checker becomes one of its observers.
            members: the nodes that run a RaftNode (more can be added with :meth:`track`).
            name: the name the RaftNodes are registered under.

        Returns:
            The checker, also observing ``sim``.
        """

        def locate(node: str) -> RaftView | None:
            return cast(RaftView | None, running_raft_node(sim, node, name))

        checker = cls(locate)
        for member in members:
            checker.track(member)
        sim.observe(checker)
        return checker

    def track(self, node: str) -> None:
        """Also check ``node`` (e.g. one added to the cluster)."""
        self._members.setdefault(node, _Member())

    def machine(self, node: str, factory: Callable[[], StateMachine]) -> Callable[[], StateMachine]:
        """Wrap a state machine factory so that every command ``node`` applies is checked against the others.

        Give the result to ``RaftSpec(machine=...)``. Needs ``locate`` (as
        :meth:`attach` provides) to learn the index of each command.
        """

        def make() -> StateMachine:
            return _RecordingMachine(factory(), node, self)

        return make

    def __call__(self, record: SimRecord) -> None:
        """A ``Simulation`` observer: look at the node that just took a step.

        Raises:
            InvariantViolation: saying also when, and at which step, it was seen.
        """
        if record.node not in self._members:
            return
        try:
            self._observe(record)
        except InvariantViolation as violation:
            violation.args = (f"{violation.args[0]} (seen at t={record.time:.6f}, at {record.node}'s {record.kind})",)
            raise

    def _observe(self, record: SimRecord) -> None:
        member = self._members[record.node]
        if record.kind in _STEP_KINDS:
            if self._locate is not None and member.up:
                node = self._locate(record.node)
                if node is not None:
                    self.look(record.node, node)
        elif record.kind == "node":
            if record.detail in ("crash", "stop"):
                self.down(record.node)
            elif record.detail == "start":
                member.up = True
        elif record.kind == "terminate" and member.up and not record.detail.endswith("'shutdown'"):
            raise InvariantViolation(NODE_ALIVE, f"the RaftNode on {record.node} stopped: {record.detail}")
        self._raise_pending()

    def down(self, node: str) -> None:
        """Say that ``node`` crashed or stopped: its next RaftNode is a new incarnation."""
        member = self._members.setdefault(node, _Member())
        member.up = False

    def check_all(self) -> None:
        """Look at every tracked node that is up, e.g. once more at the end of a run.

        Role-based checks are skipped, since a node may be in the middle of a
        step (its term already raised, its role not yet changed).
        """
        if self._locate is None:
            return
        for name, member in self._members.items():
            node = self._locate(name) if member.up else None
            if node is not None:
                self.look(name, node, between_steps=False)
        self._raise_pending()

    def summary(self) -> dict[str, int]:
        """Counts of what was checked: looks, terms with a leader, committed and applied indexes, restarts."""
        return {
            "looks": self.looks,
            "leaders": len(self.leaders),
            "committed": self._max_committed,
            "applied": len(self._applied),
            "restarts": sum(member.restarts for member in self._members.values()),
        }

    # -- one look ---------------------------------------------------------------------

    def look(self, name: str, node: RaftView, *, between_steps: bool = True) -> None:
        """Check ``node`` (the RaftNode of ``name``) against everything seen before.

        Args:
            name: the node's name.
            node: its RaftNode, or anything with the same attributes. A new
                object for the same name is a new incarnation (a restart).
            between_steps: the node is between two steps, so its role and term
                agree; ``False`` skips the checks that depend on the role.

        Raises:
            InvariantViolation: the first invariant found broken.
        """
        self.looks += 1
        member = self._members.setdefault(name, _Member())
        incarnation = member.incarnation
        if incarnation is None or incarnation.node is not node:
            incarnation = self._restarted(name, member, node)
        term = node.term
        role = node.state_name() if between_steps else ""
        self._check_term_and_vote(name, member, node, term)
        self._scan_log(name, incarnation, node, role == LEADER and incarnation.leading == term)
        self._check_commit(name, member, incarnation, node, term)
        if role == LEADER:
            self._check_leader(name, incarnation, node, term)
        elif between_steps:
            incarnation.leading = None
        self._raise_pending()

    def _restarted(self, name: str, member: _Member, node: RaftView) -> _Incarnation:
        if member.incarnation is not None:
            member.restarts += 1
        number = 1 + (member.incarnation.number if member.incarnation is not None else 0)
        incarnation = _Incarnation(node, number)
        member.incarnation = incarnation
        member.up = True
        store = node.log_store
        last, first = store.last_index(), store.first_index()
        if last < member.commit:
            raise InvariantViolation(
                DURABILITY,
                f"{name} restarted with its log ending at {last}, but it had committed up to {member.commit}"
                " before: committed entries must have been synced",
            )
        for index in range(max(first, 1), min(member.commit, last) + 1):
            entry, _, origin = self._committed.get(index, (None, 0, ""))
            if entry is not None and store.entry(index) != entry:
                raise InvariantViolation(
                    DURABILITY,
                    f"{name} restarted with {store.entry(index)!r} at index {index}, where {entry!r}"
                    f" was committed (seen on {origin})",
                )
        return incarnation

    def _check_term_and_vote(self, name: str, member: _Member, node: RaftView, term: int) -> None:
        if term < member.term:
            raise InvariantViolation(
                MONOTONIC,
                f"the term of {name} went back from {member.term} to {term} (restarts so far: {member.restarts})",
            )
        vote = node.voted_for
        if term == member.term and member.vote is not None and vote != member.vote:
            raise InvariantViolation(
                ONE_VOTE_PER_TERM, f"{name} voted for {member.vote!r} in term {term}, then for {vote!r}"
            )
        member.term, member.vote = term, vote

    def _scan_log(self, name: str, incarnation: _Incarnation, node: RaftView, still_leading: bool) -> None:
        """Find what changed in the log since the last look (by entry identity), and check the new entries."""
        store = node.log_store
        seen = incarnation.seen
        known = len(seen) - 1
        first, last = store.first_index(), store.last_index()
        same = min(known, last)
        while same >= first and store.entry(same) is not seen[same]:
            same -= 1
        if same < known:
            self._removed(name, incarnation, same + 1, known, still_leading)
            del seen[same + 1 :]
        for index in range(len(seen), last + 1):
            if index < first:
                seen.append(None)  # covered by a snapshot: committed, so checked as it was committed
                continue
            entry = store.entry(index)
            seen.append(entry)
            self._check_position(name, entry, store.term_at(index - 1))

    def _removed(self, name: str, incarnation: _Incarnation, start: int, end: int, still_leading: bool) -> None:
        if still_leading:
            raise InvariantViolation(
                LEADER_APPEND_ONLY,
                f"{name}, leader of term {incarnation.leading}, lost or replaced its entries {start}..{end}",
            )
        if start <= incarnation.commit:
            raise InvariantViolation(
                STATE_MACHINE_SAFETY,
                f"{name} removed entries {start}..{end} from its log, but had committed up to {incarnation.commit}",
            )

    def _check_position(self, name: str, entry: Entry, prev_term: int | None) -> None:
        key = (entry.index, entry.term)
        known = self._positions.get(key)
        if known is None:
            self._positions[key] = (entry, prev_term, name)
            return
        other, other_prev, origin = known
        if other != entry:
            raise InvariantViolation(
                LOG_MATCHING,
                f"index {entry.index}, term {entry.term} holds {other!r} on {origin} but {entry!r} on {name}",
            )
        if other_prev is None:
            self._positions[key] = (other, prev_term, origin)
        elif prev_term is not None and prev_term != other_prev:
            raise InvariantViolation(
                LOG_MATCHING,
                f"index {entry.index}, term {entry.term} follows an entry of term {other_prev} on {origin}"
                f" but of term {prev_term} on {name}",
            )

    def _check_commit(self, name: str, member: _Member, incarnation: _Incarnation, node: RaftView, term: int) -> None:
        commit, applied = node.commit_index, node.last_applied
        if commit < incarnation.commit or applied < incarnation.applied:
            raise InvariantViolation(
                MONOTONIC,
                f"{name} went back from commit {incarnation.commit}, applied {incarnation.applied}"
                f" to commit {commit}, applied {applied}",
            )
        if applied > commit:
            raise InvariantViolation(MONOTONIC, f"{name} applied up to {applied}, beyond its commit index {commit}")
        store = node.log_store
        first, last = store.first_index(), store.last_index()
        for index in range(max(incarnation.commit + 1, first), min(commit, last) + 1):
            entry = store.entry(index)
            known = self._committed.get(index)
            if known is None:
                self._committed[index] = (entry, term, name)
                self._max_committed = max(self._max_committed, index)
                self._check_leaders_hold(index, entry, term)
            elif known[0] != entry:
                raise InvariantViolation(
                    STATE_MACHINE_SAFETY,
                    f"index {index} was committed as {known[0]!r} on {known[2]} but as {entry!r} on {name}",
                )
        incarnation.commit, incarnation.applied = commit, applied
        member.commit = max(member.commit, commit)

    def _check_leaders_hold(self, index: int, entry: Entry, term: int) -> None:
        """A newly committed entry (committed in ``term`` or before) is in the log of every leader of a later term."""
        for name, member in self._members.items():
            incarnation = member.incarnation
            if not member.up or incarnation is None or incarnation.leading is None:
                continue
            leader = incarnation.node
            # Only a leader still as last seen between its steps: in the middle of one, its term may be ahead.
            if incarnation.leading > term and leader.term == incarnation.leading and leader.state_name() == LEADER:
                self._check_holds(name, leader, index, entry, f"committed by term {term}")

    def _check_leader(self, name: str, incarnation: _Incarnation, node: RaftView, term: int) -> None:
        holder = self.leaders.setdefault(term, (name, incarnation.number))
        if holder != (name, incarnation.number):
            raise InvariantViolation(
                ELECTION_SAFETY,
                f"two leaders in term {term}: {holder[0]} (incarnation {holder[1]})"
                f" and {name} (incarnation {incarnation.number})",
            )
        last = node.log_store.last_index()
        if incarnation.leading == term:
            if last < incarnation.lead_last:
                raise InvariantViolation(
                    LEADER_APPEND_ONLY,
                    f"{name}, leader of term {term}, shrank its log from {incarnation.lead_last} to {last}",
                )
        else:  # newly seen leading: it must hold everything committed in earlier terms
            incarnation.leading = term
            for index in range(node.commit_index + 1, self._max_committed + 1):
                known = self._committed.get(index)
                if known is not None and known[1] < term:
                    self._check_holds(name, node, index, known[0], f"committed by term {known[1]} on {known[2]}")
        incarnation.lead_last = last

    def _check_holds(self, name: str, leader: RaftView, index: int, entry: Entry, why: str) -> None:
        store = leader.log_store
        if index < store.first_index():
            return  # compacted into its snapshot, which holds only committed entries
        if index > store.last_index() or store.entry(index) != entry:
            held = store.entry(index) if index <= store.last_index() else "nothing"
            raise InvariantViolation(
                LEADER_COMPLETENESS,
                f"{name}, leader of term {leader.term}, holds {held!r} at index {index}, where {entry!r} was {why}",
            )

    # -- what the state machines apply ----------------------------------------------------

    def applied(self, name: str, index: int, command: bytes) -> None:
        """Record that ``name`` applied ``command`` at ``index``; a different command seen there is a violation.

        Called from inside the node's step, so a violation is raised at the next look, not here.
        """
        known = self._applied.get(index)
        if known is None:
            self._applied[index] = (command, name)
        elif known[0] != command and self._pending is None:
            self._pending = InvariantViolation(
                STATE_MACHINE_SAFETY,
                f"{known[1]} applied {known[0]!r} at index {index}, but {name} applied {command!r}",
            )

    def _raise_pending(self) -> None:
        if self._pending is not None:
            raise self._pending

    def _applying(self, name: str) -> int | None:
        node = self._locate(name) if self._locate is not None else None
        return None if node is None else node.last_applied


class _RecordingMachine:
    """A state machine that tells the checker what it applies, at which index."""

    def __init__(self, machine: StateMachine, node: str, checker: RaftInvariants) -> None:
        self.machine = machine
        self.node = node
        self.checker = checker

    def __repr__(self) -> str:
        return f"Recording({self.machine!r})"

    def __getattr__(self, name: str) -> Any:
        # Anything else is the wrapped machine's: a test reads its own machine through the RaftNode.
        if name == "machine":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.machine, name)

    def apply(self, command: bytes) -> Any:
        index = self.checker._applying(self.node)
        if index is not None:
            self.checker.applied(self.node, index, command)
        return self.machine.apply(command)

    def query(self, query: bytes) -> Any:
        return self.machine.query(query)

    def snapshot(self) -> bytes:
        return self.machine.snapshot()

    def restore(self, snapshot: bytes) -> None:
        self.machine.restore(snapshot)
