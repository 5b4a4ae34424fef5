"""``RaftNode``: Raft as a gen_statem, one state per role.

    follower --election timeout--> pre_candidate --pre-votes from a quorum--> candidate
    candidate --votes from a quorum--> leader
    any role --a higher term, or a leader of this term--> follower

Reading guide. Each role is one handler (``follower``, ``pre_candidate``,
``candidate``, ``leader``) that handles what only that role does; what every
role does the same way (terms, votes, appends, client requests) is in the
``_on_*`` helpers they share. The election timer is a randomized state
timeout, so a state change restarts it for free; heartbeats and the
leader's quorum check are timeouts too. Peer messages are casts between
the nodes' ``RaftNode`` actors; client requests are calls, answered when
their entry is committed and applied.

Persistence comes first: the term and vote are synced before a vote is
sent, and log entries before an append is acknowledged or replicated.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]

from .._core import Call, Caller, Cast, get_logger, reply
from ..statem import (
    Enter,
    GenericTimeout,
    GenStateMachine,
    Init,
    KeepState,
    NextState,
    RepeatState,
    Reply,
    StateTimeout,
)
from ._config import RaftConfig
from ._log import Entry
from ._rpc import (
    Append,
    AppendReply,
    ApplyFailed,
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
from ._state_machine import StateMachine
from ._storage import LogStore, MemoryStorage, Snapshot, SnapshotStore, TermStore

log = get_logger("genstatem.raft")

FOLLOWER, PRE_CANDIDATE, CANDIDATE, LEADER = "follower", "pre_candidate", "candidate", "leader"


@attrs.frozen
class RaftSpec:
    """What a ``RaftNode`` is started with: ``system.start(RaftNode, spec, name=spec.name)``.

    Attributes:
        members: the node names of the initial cluster (this node included);
            a restarted node takes its membership from its log instead.
        machine: a factory of the user's state machine (called at each start).
        storage: this node's storage; it must outlive the node (keep it
            outside the ActorSystem) so a restart finds what was persisted.
        config: timing and limits.
        name: the name every RaftNode of the cluster is registered under.
        seed: seeds the election timers (deterministic in the simulator).
    """

    members: tuple[str, ...]
    machine: Callable[[], StateMachine]
    storage: MemoryStorage
    config: RaftConfig = attrs.field(factory=RaftConfig)
    name: str = "raft"
    seed: int | str | None = None


@attrs.frozen
class RaftStatus:
    """A snapshot of a node's Raft state, for tests, invariants and dashboards."""

    id: str
    role: str
    term: int
    voted_for: str | None
    leader: str | None
    commit_index: int
    last_applied: int
    last_index: int
    members: tuple[str, ...]


class _Follower:
    """What the leader knows of one follower."""

    __slots__ = ("active", "inflight", "match", "next", "read_seq")

    def __init__(self, next_index: int) -> None:
        self.next = next_index
        self.match = 0
        self.inflight = 0
        self.active = True
        self.read_seq = 0


class _Pending:
    """A read waiting for its ReadIndex to be confirmed and applied."""

    __slots__ = ("caller", "index", "query", "seq")

    def __init__(self, caller: Caller, query: bytes, index: int, seq: int) -> None:
        self.caller, self.query, self.index, self.seq = caller, query, index, seq


class RaftNode(GenStateMachine):
    """A member of a Raft cluster; its roles are its states."""

    callback_mode = "state_functions"
    state_enter = True

    # -- start -------------------------------------------------------------------

    async def init(self, spec: RaftSpec) -> Init:
        self.spec = spec
        self.config = spec.config
        self.id: str = self.system.node
        self.random = random.Random(spec.seed if spec.seed is not None else f"{self.id}")
        self.log_store: LogStore
        self.term_store: TermStore
        self.snapshot_store: SnapshotStore
        self.log_store, self.term_store, self.snapshot_store = spec.storage.open()
        self.term, self.voted_for = self.term_store.load()
        self.machine = spec.machine()
        self.sessions: dict[str, tuple[int, Any]] = {}
        self.followers: dict[str, _Follower] = {}
        self.transfer_target: str | None = None
        self.members: tuple[str, ...] = tuple(spec.members)
        self.configs: list[tuple[int, tuple[str, ...]]] = [(0, self.members)]  # (index, members), oldest first
        self.commit_index = 0
        self.last_applied = 0
        snapshot = self.snapshot_store.load()
        if snapshot is not None:
            self._restore(snapshot)
            if self.log_store.first_index() <= snapshot.index:
                # A crash came between the snapshot's sync and the log's compaction: finish the compaction,
                # or the log ends before the snapshot and no leader's probe can ever match it.
                self.log_store.compact(snapshot.index, snapshot.term)
                await self.log_store.sync()
        self._reload_members()
        self.leader_id: str | None = None
        self.campaign_for_transfer = False
        self.term_start = 0
        self.uncommitted_bytes = 0
        self.votes: set[str] = set()
        self.waiting: dict[int, tuple[int, Caller]] = {}  # index -> (term, proposer)
        self.reads: list[_Pending] = []
        self.read_seq = 0
        self.last_leader_contact = -float("inf")
        return Init(FOLLOWER, None, self._election_timer())

    # -- the roles -----------------------------------------------------------------

    async def follower(self, event_type: Any, content: Any, data: Any) -> Any:
        match event_type, content:
            case StateTimeout(), "election":
                if self.id not in self.members:
                    return KeepState(actions=self._election_timer())  # removed: never campaign
                return NextState(PRE_CANDIDATE if self.config.pre_vote else CANDIDATE, data)
            case Cast(), TimeoutNow(term=term) if term == self.term:
                self.campaign_for_transfer = True
                return NextState(CANDIDATE, data)
        return await self._common(event_type, content, data)

    async def pre_candidate(self, event_type: Any, content: Any, data: Any) -> Any:
        match event_type, content:
            case Enter(), _:
                self.votes = {self.id}
                self._broadcast(VoteRequest(self.term + 1, self.id, *self._last(), pre_vote=True))
                return KeepState(actions=[*self._election_timer(), GenericTimeout("tally", 0)])
            case GenericTimeout("tally"), _:
                return self._maybe_won(PRE_CANDIDATE, data)
            case StateTimeout(), "election":
                return RepeatState()
            case Cast(), VoteReply(pre_vote=True, granted=True, voter=voter, term=term) if term == self.term + 1:
                self.votes.add(voter)
                return self._maybe_won(PRE_CANDIDATE, data)
        return await self._common(event_type, content, data)

    async def candidate(self, event_type: Any, content: Any, data: Any) -> Any:
        match event_type, content:
            case Enter(), _:
                await self._set_term(self.term + 1, self.id)  # persisted before anyone is asked
                self.votes = {self.id}
                transfer, self.campaign_for_transfer = self.campaign_for_transfer, False
                self._broadcast(VoteRequest(self.term, self.id, *self._last(), transfer=transfer))
                return KeepState(actions=[*self._election_timer(), GenericTimeout("tally", 0)])
            case GenericTimeout("tally"), _:
                return self._maybe_won(CANDIDATE, data)
            case StateTimeout(), "election":  # a split vote: try again (through a pre-vote, if on)
                return NextState(PRE_CANDIDATE, data) if self.config.pre_vote else RepeatState()
            case Cast(), VoteReply(pre_vote=False, granted=True, voter=voter, term=term) if term == self.term:
                self.votes.add(voter)
                return self._maybe_won(CANDIDATE, data)
        return await self._common(event_type, content, data)

    async def leader(self, event_type: Any, content: Any, data: Any) -> Any:
        match event_type, content:
            case Enter(), _:
                return await self._become_leader()
            case GenericTimeout("heartbeat"), _:
                self._broadcast_appends(heartbeat=True)
                return KeepState(actions=GenericTimeout("heartbeat", self.config.heartbeat_interval))
            case StateTimeout(), "check_quorum":
                return self._check_quorum(data)
            case GenericTimeout("transfer"), _:
                log.info("leadership transfer abandoned", node=self.id, target=self.transfer_target)
                self.transfer_target = None
                return None
            case Cast(), AppendReply(term=term) as answer if term == self.term:
                return await self._on_append_reply(answer, data)
            case Call(caller), Propose() as proposal:
                return await self._propose(caller, proposal)
            case Call(caller), Read(query=query):
                return self._read(caller, query)
            case Call(caller), ChangeMembers() as change:
                return await self._change_members(caller, change)
            case Call(caller), TransferLeadership(target=target):
                return self._transfer(caller, target)
        return await self._common(event_type, content, data)

    # -- what every role does ----------------------------------------------------------

    async def _common(self, event_type: Any, content: Any, data: Any) -> Any:
        """Terms, votes, appends and client requests: the same rules in every role."""
        match event_type, content:
            case Enter(), _:
                return None
            case Cast(), VoteRequest() as request:
                return await self._on_vote_request(request, data)
            case Cast(), Append() as append:
                return await self._on_append(append, data)
            case Cast(), InstallSnapshot() as install:
                return await self._on_install_snapshot(install, data)
            case Cast(), VoteReply(pre_vote=True, granted=True):
                return None  # a pre-vote grant carries the proposed term, not a real one
            case Cast(), VoteReply(term=term) | AppendReply(term=term) | TimeoutNow(term=term) if term > self.term:
                await self._set_term(term, None)
                return self._step_down(data)
            case Call(caller), Propose() | Read() | ChangeMembers() | TransferLeadership():
                return KeepState(actions=Reply(caller, NotLeader(self.leader_id)))
            case Call(caller), "status":
                return KeepState(actions=Reply(caller, self.status()))
        return None  # stale replies and anything unknown: ignored, as the paper says

    async def _on_vote_request(self, request: VoteRequest, data: Any) -> Any:
        lease = self.config.check_quorum and not request.transfer and self._heard_from_leader_recently()
        up_to_date = (request.last_term, request.last_index) >= self._last()[::-1]
        if request.pre_vote:
            granted = request.term > self.term and up_to_date and not lease
            answer = VoteReply(request.term if granted else self.term, self.id, granted, pre_vote=True)
            self._send(request.candidate, answer)
            return None
        if request.term > self.term and lease:
            return None  # a leader is alive: a disruptive candidate gets no answer (dissertation 4.2.3)
        stepped_down = None
        if request.term > self.term:
            await self._set_term(request.term, None)
            stepped_down = self._step_down(data)
        granted = request.term == self.term and self.voted_for in (None, request.candidate) and up_to_date
        if granted:
            await self._set_term(self.term, request.candidate)  # persisted before the vote is sent
        self._send(request.candidate, VoteReply(self.term, self.id, granted))
        if granted:
            return stepped_down or KeepState(actions=self._election_timer())
        return stepped_down

    async def _follow(self, term: int, leader: str, data: Any) -> Any:
        """A leader of ``term`` >= ours spoke: follow it (and restart the election timer)."""
        if term > self.term:
            await self._set_term(term, None)
        self.last_leader_contact = self._now()
        stepped_down = self._step_down(data)  # None for a follower: its timer restarts below
        self.leader_id = leader  # after the step-down, which clears it on a deposed leader
        return stepped_down or KeepState(actions=self._election_timer())

    async def _on_append(self, append: Append, data: Any) -> Any:
        if append.term < self.term:
            self._send(append.leader, AppendReply(self.term, self.id, False, 0))
            return None
        result = await self._follow(append.term, append.leader, data)
        success, match, hint = self._accept_entries(append)
        if success:
            await self.log_store.sync()  # persisted before it is acknowledged
            await self._advance_commit(min(append.commit, match))
        self._send(append.leader, AppendReply(self.term, self.id, success, match, hint, append.read_seq))
        return result

    def _accept_entries(self, append: Append) -> tuple[bool, int, int]:
        """The consistency check and the append: ``(success, match, hint)``."""
        store = self.log_store
        if append.prev_index > store.last_index():
            return False, 0, store.last_index() + 1
        prev_term = store.term_at(append.prev_index)
        if prev_term is not None and prev_term != append.prev_term:
            # fast backtracking: skip back past every entry of the conflicting term
            hint = append.prev_index
            while hint > store.first_index() and store.term_at(hint - 1) == prev_term:
                hint -= 1
            return False, 0, max(hint, self.commit_index + 1)
        for offset, entry in enumerate(append.entries):
            if entry.index <= store.first_index() - 1:
                continue  # already covered by our snapshot: committed, identical
            existing = store.term_at(entry.index)
            if existing == entry.term:
                continue  # a duplicate: a no-op
            if existing is not None:
                if entry.index <= self.commit_index:
                    raise AssertionError(f"leader {append.leader} would overwrite committed entry {entry.index}")
                store.truncate_from(entry.index)
                self._reload_members()
            store.append(append.entries[offset:])
            self._note_configs(append.entries[offset:])
            break
        return True, append.prev_index + len(append.entries), 0

    async def _on_install_snapshot(self, install: InstallSnapshot, data: Any) -> Any:
        if install.term < self.term:
            self._send(install.leader, AppendReply(self.term, self.id, False, 0))
            return None
        result = await self._follow(install.term, install.leader, data)
        snapshot = install.snapshot
        if snapshot.index > self.commit_index:
            self.snapshot_store.save(snapshot)
            await self.snapshot_store.sync()  # the snapshot is safe before the log it replaces goes
            if self.log_store.term_at(snapshot.index) != snapshot.term:
                self.log_store.truncate_from(max(self.log_store.first_index(), self.commit_index + 1))
            self.log_store.compact(snapshot.index, snapshot.term)
            await self.log_store.sync()
            self._restore(snapshot)
            self._reload_members()
        self._send(install.leader, AppendReply(self.term, self.id, True, max(snapshot.index, self.commit_index)))
        return result

    # -- the leader ---------------------------------------------------------------------

    async def _become_leader(self) -> Any:
        log.info("elected leader", node=self.id, term=self.term)
        self.leader_id = self.id
        self.transfer_target = None
        last = self.log_store.last_index()
        self.followers = {peer: _Follower(last + 1) for peer in self.members if peer != self.id}
        self.term_start = last + 1
        first = max(self.commit_index + 1, self.log_store.first_index())
        self.uncommitted_bytes = sum(entry.size() for entry in self.log_store.entries(first, last + 1))
        await self._append_local([Entry(last + 1, self.term, b"", kind="noop")])  # commits the previous terms' entries
        timers: list[Any] = [GenericTimeout("heartbeat", self.config.heartbeat_interval)]
        if self.config.check_quorum:
            timers.append(StateTimeout(self.config.election_timeout[0], "check_quorum"))
        return KeepState(actions=timers)

    async def _propose(self, caller: Caller, proposal: Propose) -> Any:
        if self.transfer_target is not None:
            return KeepState(actions=Reply(caller, Rejected("leadership transfer in progress")))
        if self.uncommitted_bytes > self.config.max_uncommitted_bytes:
            return KeepState(actions=Reply(caller, Rejected("too many uncommitted entries")))
        if proposal.client is not None:
            done = self.sessions.get(proposal.client)
            if done is not None and done[0] >= proposal.seq:
                answer = done[1] if done[0] == proposal.seq else Rejected("sequence number already used")
                return KeepState(actions=Reply(caller, answer))
        index = self.log_store.last_index() + 1
        entry = Entry(index, self.term, proposal.command, client=proposal.client, seq=proposal.seq)
        self.waiting[index] = (self.term, caller)
        await self._append_local([entry])
        return None

    async def _change_members(self, caller: Caller, change: ChangeMembers) -> Any:
        if self.configs[-1][0] > self.commit_index or not self._committed_in_term():
            return KeepState(actions=Reply(caller, Rejected("a membership change is in progress")))
        members = [m for m in self.members if m != change.remove]
        if change.add is not None and change.add not in members:
            members.append(change.add)
        index = self.log_store.last_index() + 1
        entry = Entry(index, self.term, b"", kind="config", config=tuple(members))
        self.waiting[index] = (self.term, caller)
        await self._append_local([entry])
        for peer in members:
            if peer != self.id and peer not in self.followers:
                self.followers[peer] = _Follower(index)
        return None

    def _transfer(self, caller: Caller, target: str) -> Any:
        if target == self.id or target not in self.followers:
            return KeepState(actions=Reply(caller, Rejected(f"cannot transfer to {target!r}")))
        self.transfer_target = target
        self._maybe_send_timeout_now()
        return KeepState(actions=[Reply(caller, Ok()), GenericTimeout("transfer", self.config.election_timeout[1])])

    def _read(self, caller: Caller, query: bytes) -> Any:
        # reads that arrive while a confirmation round is out join the next one (batched, as etcd does)
        self.reads.append(_Pending(caller, query, self.commit_index, self.read_seq + 1))
        if self._confirmed_read_seq() >= self.read_seq:
            self._start_read_round()
        self._serve_reads()
        return None

    def _start_read_round(self) -> None:
        """Ask every follower to confirm this node still leads (the answers echo ``read_seq``)."""
        self.read_seq += 1
        self._broadcast_appends(heartbeat=True)

    def _confirmed_read_seq(self) -> int:
        """The highest read round a quorum (this node included) has answered."""
        acks = sorted(
            [self.read_seq] + [f.read_seq for peer, f in self.followers.items() if peer in self.members], reverse=True
        )
        return acks[self._quorum() - 1] if len(acks) >= self._quorum() else 0

    async def _append_local(self, entries: list[Entry]) -> None:
        self.log_store.append(entries)
        self._note_configs(entries)
        self.uncommitted_bytes += sum(entry.size() for entry in entries)
        await self.log_store.sync()  # persisted before it is replicated
        self._broadcast_appends(heartbeat=False)
        await self._advance_leader_commit()

    def _broadcast_appends(self, *, heartbeat: bool) -> None:
        for peer in self.followers:
            self._replicate(peer, heartbeat=heartbeat)

    def _replicate(self, peer: str, *, heartbeat: bool = False) -> None:
        """Send ``peer`` what it lacks, up to ``max_inflight`` messages; a heartbeat always goes."""
        follower = self.followers[peer]
        store = self.log_store
        sent = False
        while follower.inflight < self.config.max_inflight and follower.next <= store.last_index():
            if follower.next < store.first_index():
                snapshot = self.snapshot_store.load()
                assert snapshot is not None
                self._send(peer, InstallSnapshot(self.term, self.id, snapshot))
                follower.next = snapshot.index + 1
                follower.inflight = self.config.max_inflight  # nothing more until it answers (or a heartbeat probes)
                return
            entries = store.entries(
                follower.next, follower.next + self.config.max_batch_entries, max_bytes=self.config.max_batch_bytes
            )
            self._send_append(peer, follower.next, tuple(entries))
            follower.next += len(entries)
            follower.inflight += 1
            sent = True
        if heartbeat and not sent:
            self._send_append(peer, follower.next, ())

    def _send_append(self, peer: str, next_index: int, entries: tuple[Entry, ...]) -> None:
        prev = next_index - 1
        prev_term = self.log_store.term_at(prev) or 0
        self._send(peer, Append(self.term, self.id, prev, prev_term, entries, self.commit_index, self.read_seq))

    async def _on_append_reply(self, answer: AppendReply, data: Any) -> Any:
        follower = self.followers.get(answer.follower)
        if follower is None:
            return None
        follower.active = True
        follower.read_seq = max(follower.read_seq, answer.read_seq)
        follower.inflight = max(0, follower.inflight - 1)
        if answer.success:
            follower.match = max(follower.match, answer.match)
            follower.next = max(follower.next, follower.match + 1)
            if follower.match >= follower.next - 1:
                follower.inflight = 0  # it has all we sent: anything counted in flight was lost
            await self._advance_leader_commit()
            self._maybe_send_timeout_now()
        else:
            # a mismatch: back up to the hint (never below what is known to match), one probe at a time
            follower.next = max(follower.match + 1, min(follower.next, answer.hint or follower.next - 1))
            follower.inflight = 0
        self._replicate(answer.follower)
        self._serve_reads()
        return self._leave_if_removed(data)

    async def _advance_leader_commit(self) -> None:
        """Commit the highest index a quorum holds, if it is of this term (never count older terms)."""
        matches = sorted(
            [self.log_store.last_index() if self.id in self.members else 0]
            + [f.match for peer, f in self.followers.items() if peer in self.members],
            reverse=True,
        )
        candidate = matches[self._quorum() - 1] if len(matches) >= self._quorum() else 0
        if candidate > self.commit_index and self.log_store.term_at(candidate) == self.term:
            await self._advance_commit(candidate)

    def _check_quorum(self, data: Any) -> Any:
        active = 1 + sum(1 for peer, f in self.followers.items() if f.active and peer in self.members)
        for follower in self.followers.values():
            follower.active = False
        if active < self._quorum():
            log.warning("lost contact with a quorum; stepping down", node=self.id, term=self.term)
            return self._step_down(data)
        return KeepState(actions=StateTimeout(self.config.election_timeout[0], "check_quorum"))

    def _maybe_send_timeout_now(self) -> None:
        target = self.transfer_target
        if target is not None and self.followers[target].match == self.log_store.last_index():
            self._send(target, TimeoutNow(self.term, self.id))

    def _serve_reads(self) -> None:
        """Answer the reads whose leadership check a quorum confirmed and whose index is applied."""
        if not self.reads or not self._committed_in_term():
            return
        confirmed = self._confirmed_read_seq()
        still: list[_Pending] = []
        for pending in self.reads:
            index = max(pending.index, self.term_start)
            if pending.seq <= confirmed and self.last_applied >= index:
                reply(pending.caller, self._query(pending.query))
            else:
                still.append(pending)
        self.reads = still
        if confirmed >= self.read_seq and any(pending.seq > self.read_seq for pending in still):
            self._start_read_round()  # the round is answered; the reads that came meanwhile need theirs

    def _leave_if_removed(self, data: Any) -> Any:
        if self.id not in self.members and self.commit_index >= self.configs[-1][0]:
            log.info("removed from the cluster; stepping down", node=self.id)
            return self._step_down(data)
        return None

    # -- commit and apply -----------------------------------------------------------------

    async def _advance_commit(self, index: int) -> None:
        if index <= self.commit_index:
            return
        self.commit_index = index
        while self.last_applied < self.commit_index:
            self.last_applied += 1
            entry = self.log_store.entry(self.last_applied)
            self.uncommitted_bytes -= entry.size()
            self._apply(entry)
        await self._maybe_snapshot()

    def _apply(self, entry: Entry) -> None:
        result: Any = Ok()
        if entry.kind == "command":
            if entry.client is not None and self.sessions.get(entry.client, (0, None))[0] >= entry.seq:
                result = self.sessions[entry.client][1]  # applied before: exactly once
            else:
                try:
                    result = Ok(self.machine.apply(entry.command))
                except Exception as exc:  # deterministic: every node fails alike
                    result = ApplyFailed(f"{type(exc).__name__}: {exc}")
                if entry.client is not None:
                    self.sessions[entry.client] = (entry.seq, result)
        waiting = self.waiting.pop(entry.index, None)
        if waiting is not None:
            term, caller = waiting
            reply(caller, result if term == entry.term else Unknown("the entry was replaced"))

    def _query(self, query: bytes) -> Any:
        try:
            return Ok(self.machine.query(query))
        except Exception as exc:
            return ApplyFailed(f"{type(exc).__name__}: {exc}")

    async def _maybe_snapshot(self) -> None:
        every = self.config.snapshot_every
        if every is None or self.last_applied - self.log_store.first_index() + 1 < every:
            return
        index = self.last_applied
        sessions = [(client, seq, *_result_to_data(result)) for client, (seq, result) in sorted(self.sessions.items())]
        state = msgpack.packb([self.machine.snapshot(), sessions], use_bin_type=True)
        snapshot = Snapshot(index, self.log_store.term_at(index) or 0, self._members_at(index), state)
        self.snapshot_store.save(snapshot)
        await self.snapshot_store.sync()  # the snapshot is safe before the entries it covers go
        self.log_store.compact(index, snapshot.term)
        await self.log_store.sync()

    def _restore(self, snapshot: Snapshot) -> None:
        machine_state, sessions = msgpack.unpackb(snapshot.data, raw=False)
        self.machine.restore(machine_state)
        self.sessions = {client: (seq, _result_from_data(failed, value)) for client, seq, failed, value in sessions}
        self.commit_index = max(self.commit_index, snapshot.index)
        self.last_applied = snapshot.index
        self.configs = [(snapshot.index, tuple(snapshot.members))]
        self.members = tuple(snapshot.members)

    # -- role changes -----------------------------------------------------------------

    def _maybe_won(self, role: str, data: Any) -> Any:
        if len(self.votes & set(self.members)) >= self._quorum():
            return NextState(CANDIDATE if role == PRE_CANDIDATE else LEADER, data)
        return None

    def _step_down(self, data: Any) -> Any:
        """Become a follower: give up what only a leader may hold."""
        if self.state_name() == LEADER:
            for index, (_, caller) in self.waiting.items():
                if index > self.commit_index:
                    reply(caller, Unknown("leadership lost before the entry committed"))
            self.waiting.clear()
            for pending in self.reads:
                reply(pending.caller, Unknown("leadership lost before the read was confirmed"))
            self.reads.clear()
            self.followers.clear()
            self.leader_id = None
        elif self.state_name() == FOLLOWER:
            return None  # a follower's election timer runs on: only a leader's word restarts it
        return NextState(FOLLOWER, data, [*self._election_timer(), GenericTimeout("heartbeat", None)])

    async def _set_term(self, term: int, voted_for: str | None) -> None:
        if term != self.term:
            self.leader_id = None
        self.term, self.voted_for = term, voted_for
        self.term_store.save(term, voted_for)
        await self.term_store.sync()

    # -- small helpers ----------------------------------------------------------------

    def status(self) -> RaftStatus:
        """Where this node stands now."""
        return RaftStatus(
            self.id,
            self.state_name(),
            self.term,
            self.voted_for,
            self.leader_id,
            self.commit_index,
            self.last_applied,
            self.log_store.last_index(),
            self.members,
        )

    def state_name(self) -> str:
        state: str = self._engine.state
        return state

    def _send(self, peer: str, message: Any) -> None:
        self.system.remote(peer, self.spec.name).cast(message)

    def _broadcast(self, message: Any) -> None:
        for peer in self.members:
            if peer != self.id:
                self._send(peer, message)

    def _election_timer(self) -> list[Any]:
        return [StateTimeout(self.random.uniform(*self.config.election_timeout), "election")]

    def _heard_from_leader_recently(self) -> bool:
        if self.state_name() == LEADER:
            return True
        return self._now() - self.last_leader_contact < self.config.election_timeout[0]

    def _now(self) -> float:
        return self.system.backend.now()

    def _last(self) -> tuple[int, int]:
        """``(last_index, last_term)`` of the log."""
        return self.log_store.last_index(), self.log_store.last_term()

    def _quorum(self) -> int:
        return len(self.members) // 2 + 1

    def _committed_in_term(self) -> bool:
        return self.log_store.term_at(self.commit_index) == self.term

    def _members_at(self, index: int) -> tuple[str, ...]:
        members = self.configs[0][1]
        for config_index, config_members in self.configs:
            if config_index <= index:
                members = config_members
        return members

    def _note_configs(self, entries: Any) -> None:
        """A configuration takes effect as soon as it is in the log (dissertation 4.1)."""
        for entry in entries:
            if entry.kind == "config":
                self.configs.append((entry.index, entry.config))
        self._apply_members()

    def _reload_members(self) -> None:
        """After a truncation or a snapshot: forget configurations no longer in the log."""
        last = self.log_store.last_index()
        kept = [config for config in self.configs if config[0] <= last]
        self.configs = kept or self.configs[:1]
        if self.log_store.first_index() <= last:
            known = self.configs[-1][0]
            for entry in self.log_store.entries(max(known + 1, self.log_store.first_index()), last + 1):
                if entry.kind == "config":
                    self.configs.append((entry.index, entry.config))
        self._apply_members()

    def _apply_members(self) -> None:
        self.members = self.configs[-1][1]
        for peer in list(self.followers):
            if peer not in self.members and peer != self.transfer_target:
                del self.followers[peer]


def _result_to_data(result: Ok | ApplyFailed) -> tuple[bool, Any]:
    """A session's remembered answer as plain data for a snapshot: ``(failed, value)``."""
    return (True, result.error) if isinstance(result, ApplyFailed) else (False, result.result)


def _result_from_data(failed: bool, value: Any) -> Ok | ApplyFailed:
    return ApplyFailed(value) if failed else Ok(value)
