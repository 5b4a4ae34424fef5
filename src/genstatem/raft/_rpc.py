"""The messages of Raft: between nodes (casts), and from clients (calls).

Peer messages are casts between ``RaftNode`` actors on different nodes;
every one carries the sender's term, as in the paper. Client requests are
calls answered with ``Ok``, ``NotLeader``, ``Rejected`` or ``Unknown``.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._log import Entry
from ._storage import Snapshot


def _strings(value: Any) -> tuple[str, ...]:
    # A wire codec may hand back a list; the message keeps a tuple so it stays hashable.
    return tuple(value)


# -- between nodes ------------------------------------------------------------


@attrs.frozen
class VoteRequest:
    """RequestVote (and pre-vote: the term a real election would have)."""

    term: int
    candidate: str
    last_index: int
    last_term: int
    pre_vote: bool = False
    transfer: bool = False  # a leadership transfer: voters ignore their leader lease


@attrs.frozen
class VoteReply:
    """A vote, or a refusal carrying the voter's term."""

    term: int
    voter: str
    granted: bool
    pre_vote: bool = False


@attrs.frozen
class Append:
    """AppendEntries: ``entries`` follow ``prev_index``; a heartbeat carries none.

    ``read_seq`` lets the leader confirm, with the reply, that it still led
    when a read arrived (ReadIndex).
    """

    term: int
    leader: str
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    commit: int
    read_seq: int = 0


@attrs.frozen
class AppendReply:
    """The answer to ``Append``; on a mismatch, ``hint`` is where the leader should retry.

    ``match`` is the highest index known to match the leader's log.
    """

    term: int
    follower: str
    success: bool
    match: int
    hint: int = 0
    read_seq: int = 0


@attrs.frozen
class InstallSnapshot:
    """One chunk of the leader's snapshot, for a follower whose next entry was compacted away (Figure 13).

    A snapshot is sent as ``data`` chunks from ``offset`` 0 to ``size``, a few
    in flight; every chunk carries the snapshot's position and the CRC-32 of
    its whole data, so the follower can start, resume and verify it from any
    chunk. The follower answers each chunk with a ``SnapshotReply``, and the
    last one, once installed, with an ``AppendReply``.
    """

    term: int
    leader: str
    index: int  # the snapshot's last included index
    last_term: int  # the term of that entry
    members: tuple[str, ...] = attrs.field(converter=_strings)
    size: int
    crc: int
    offset: int
    data: bytes

    @property
    def end(self) -> int:
        """The offset just past this chunk."""
        return self.offset + len(self.data)


@attrs.frozen
class SnapshotReply:
    """The answer to an ``InstallSnapshot`` chunk: the follower holds the snapshot's data up to ``offset``.

    ``ok`` is false when the chunk did not follow what the follower holds (a
    chunk was lost, or the follower restarted): the leader resends from
    ``offset``.
    """

    term: int
    follower: str
    index: int
    offset: int
    ok: bool


@attrs.frozen
class TimeoutNow:
    """Leadership transfer: start an election now."""

    term: int
    leader: str


# -- from clients -----------------------------------------------------------------


@attrs.frozen
class Propose:
    """Append ``command`` and answer once it is committed and applied.

    With a ``client`` session, ``seq`` makes a retried proposal apply once.
    """

    command: bytes
    client: str | None = None
    seq: int = 0


@attrs.frozen
class Read:
    """A linearizable read of the state machine (ReadIndex: no log write)."""

    query: bytes


@attrs.frozen
class ChangeMembers:
    """Add or remove one member, or promote a learner to voter (one change at a time).

    With ``learner``, ``add`` joins as a learner: it receives the log but
    neither votes nor counts in a quorum until a ``promote`` names it, which
    the leader refuses while it is not caught up (``RaftConfig.max_learner_lag``).
    """

    add: str | None = None
    remove: str | None = None
    learner: bool = False
    promote: str | None = None


@attrs.frozen
class TransferLeadership:
    """Hand leadership to ``target`` once it has caught up."""

    target: str


@attrs.frozen
class GetStatus:
    """Ask a node, in any role, for its ``RaftStatus``."""


# -- answers to clients -------------------------------------------------------------


@attrs.frozen
class Ok:
    """The request succeeded: ``result`` is what ``apply``/``query`` returned."""

    result: Any = None


@attrs.frozen
class NotLeader:
    """Ask ``leader`` instead (``None`` when this node knows no leader)."""

    leader: str | None


@attrs.frozen
class Rejected:
    """The request was not carried out, for ``reason``: safe to retry later."""

    reason: str


@attrs.frozen
class Unknown:
    """The outcome is unknown (leadership was lost meanwhile): retry with the same sequence number."""

    reason: str


@attrs.frozen
class ApplyFailed:
    """The state machine raised while applying the command (deterministically, on every node)."""

    error: str


@attrs.frozen
class TooLarge:
    """The request is larger than the cluster accepts (``max_command_bytes``): it will never be carried out."""

    size: int
    limit: int


@attrs.frozen
class RaftStatus:
    """A snapshot of a node's Raft state, for tests, invariants and dashboards: the answer to ``GetStatus``.

    ``matches`` is, on a leader, each follower's match index (the highest
    entry known to be in its log) as sorted ``(node, index)`` pairs; it is
    empty on any other role. ``members`` are the voters; ``learners`` the
    members that receive the log without voting.
    """

    id: str
    role: str
    term: int
    voted_for: str | None
    leader: str | None
    commit_index: int
    last_applied: int
    last_index: int
    members: tuple[str, ...]
    matches: tuple[tuple[str, int], ...] = ()
    learners: tuple[str, ...] = attrs.field(default=(), converter=_strings)


RAFT_MESSAGES: tuple[type, ...] = (
    Entry,
    Snapshot,
    VoteRequest,
    VoteReply,
    Append,
    AppendReply,
    InstallSnapshot,
    TimeoutNow,
    Propose,
    Read,
    ChangeMembers,
    TransferLeadership,
    Ok,
    NotLeader,
    Rejected,
    Unknown,
    ApplyFailed,
    GetStatus,
    RaftStatus,
    SnapshotReply,
    TooLarge,
)
"""Registered for the wire with type ids 200, 201, ... in this order (``_wire.py``)."""
