"""``RaftNode``: Raft as a gen_statem, one state per role.

    follower --election timeout--> pre_candidate --pre-votes from a quorum--> candidate
    candidate --votes from a quorum--> leader
    any role --a higher term, or a leader of this term--> follower

Reading guide. Each role is one handler (``follower``, ``pre_candidate``,
``candidate``, ``leader``) that handles what only that role does; what every
role does the same way is in ``_common``, which applies the higher-term rule
first and then the RPC rules. The election timer is a randomized state
timeout, so a state change restarts it for free; heartbeats and the
leader's quorum check are timeouts too. Peer messages are casts between
the nodes' ``RaftNode`` actors; client requests are calls, answered when
their entry is committed and applied.

The mechanisms live beside the node, one file each: what the leader knows
of each follower (``_progress.py``), linearizable reads (``_reads.py``),
the configuration log (``_membership.py``), and applying entries with
client sessions and snapshots (``_apply.py``).

Persistence comes first: the term and vote are synced before a vote is
sent, and log entries before an append is acknowledged or replicated.
"""

from __future__ import annotations

import enum
import random
from typing import Any, Final

import structlog

from .._core import Call, Caller, Cast, reply
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
from ._apply import Applier
from ._config import RaftSpec
from ._log import Entry
from ._membership import Membership
from ._progress import Leadership, Progress, quorum_index
from ._rpc import (
    Append,
    AppendReply,
    ChangeMembers,
    GetStatus,
    InstallSnapshot,
    NotLeader,
    Ok,
    Propose,
    RaftStatus,
    Read,
    Rejected,
    TimeoutNow,
    TransferLeadership,
    Unknown,
    VoteReply,
    VoteRequest,
)
from ._storage import LogStore, Snapshot, SnapshotStore, TermStore

log = structlog.get_logger("genstatem.raft")


class Role(enum.StrEnum):
    """A node's roles, which are its states: each value names its handler method."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"

    def __repr__(self) -> str:
        return repr(self.value)  # traces and diagrams show 'leader', as when roles were plain strings


class Timer:
    """The names of the node's timers."""

    ELECTION: Final = "election"  # a state timeout: any change of role restarts it
    CHECK_QUORUM: Final = "check_quorum"  # the leader's state timeout: has a quorum answered lately?
    TALLY: Final = "tally"  # zero time: counts the votes once the enter call is done
    HEARTBEAT: Final = "heartbeat"  # generic: a leader's heartbeats
    TRANSFER: Final = "transfer"  # generic: a leadership transfer's deadline


class RaftNode(GenStateMachine):
    """A member of a Raft cluster; its roles are its states."""

    callback_mode = "state_functions"
    state_enter = True

    async def init(self, spec: RaftSpec) -> Init:
        self.spec = spec
        self.config = spec.config
        self.id: str = self.system.node
        self.random = random.Random(spec.seed if spec.seed is not None else f"{self.id}")
        self.log_store: LogStore
        self.term_store: TermStore
        self.snapshot_store: SnapshotStore
        self.log_store, self.term_store, self.snapshot_store = spec.storage.open()
        # Persistent state on all servers: currentTerm and votedFor, then log[] (with its configurations).
        self.term, self.voted_for = self.term_store.load()
        self.membership = Membership(spec.members)
        self.applier = Applier(spec.machine(), self.log_store, self.snapshot_store)
        # Volatile state on all servers.
        self.commit_index = 0
        self.last_applied = 0
        self.leader_id: str | None = None
        self.last_leader_contact = -float("inf")
        self.votes: set[str] = set()
        self.campaign_for_transfer = False
        # Volatile state on leaders.
        self.leading = Leadership()
        snapshot = self.snapshot_store.load()
        if snapshot is not None:
            self._restore(snapshot)
            if self.log_store.first_index() <= snapshot.index:
                # A crash came between the snapshot's sync and the log's compaction: finish the compaction,
                # or the log ends before the snapshot and no leader's probe can ever match it.
                self.log_store.compact(snapshot.index, snapshot.term)
                await self.log_store.sync()
        self._reload_members()
        return Init(Role.FOLLOWER, None, self._election_timer())

    # -- the roles -----------------------------------------------------------------

    async def follower(self, event_type: Any, content: Any, data: Any) -> Any:
        """Figure 2: "Respond to RPCs from candidates and leaders"; campaign when the election timeout elapses."""
        match event_type, content:
            case Enter(), Role.LEADER:
                self._leave_leadership()
                return KeepState(actions=GenericTimeout(Timer.HEARTBEAT, None))
            case StateTimeout(), Timer.ELECTION:
                if self.id not in self.members:
                    return KeepState(actions=self._election_timer())  # removed: never campaign
                return NextState(Role.PRE_CANDIDATE if self.config.pre_vote else Role.CANDIDATE, data)
            case Cast(), TimeoutNow(term=term) if term == self.term:
                self.campaign_for_transfer = True
                return NextState(Role.CANDIDATE, data)
        return await self._common(event_type, content, data)

    async def pre_candidate(self, event_type: Any, content: Any, data: Any) -> Any:
        """Not in Figure 2 (dissertation 9.6): ask whether a quorum would vote, before raising the term."""
        match event_type, content:
            case Enter(), _:
                self.votes = {self.id}
                self._broadcast(VoteRequest(self.term + 1, self.id, *self._last(), pre_vote=True))
                # An enter call may not change the state: our own vote is counted in an event of its own.
                return KeepState(actions=[*self._election_timer(), GenericTimeout(Timer.TALLY, 0)])
            case GenericTimeout(Timer.TALLY), _:
                return self._maybe_won(Role.PRE_CANDIDATE, data)
            case StateTimeout(), Timer.ELECTION:
                return RepeatState()
            case Cast(), VoteReply(pre_vote=True, granted=True, voter=voter, term=term) if term == self.term + 1:
                self.votes.add(voter)
                return self._maybe_won(Role.PRE_CANDIDATE, data)
        return await self._common(event_type, content, data)

    async def candidate(self, event_type: Any, content: Any, data: Any) -> Any:
        """Figure 2: "On conversion to candidate, start election"; "If votes received from majority: become leader"."""
        match event_type, content:
            case Enter(), _:
                await self._set_term(self.term + 1, self.id)  # persisted before anyone is asked
                self.votes = {self.id}
                transfer, self.campaign_for_transfer = self.campaign_for_transfer, False
                self._broadcast(VoteRequest(self.term, self.id, *self._last(), transfer=transfer))
                # An enter call may not change the state: our own vote is counted in an event of its own.
                return KeepState(actions=[*self._election_timer(), GenericTimeout(Timer.TALLY, 0)])
            case GenericTimeout(Timer.TALLY), _:
                return self._maybe_won(Role.CANDIDATE, data)
            case StateTimeout(), Timer.ELECTION:  # a split vote: try again (through a pre-vote, if on)
                return NextState(Role.PRE_CANDIDATE, data) if self.config.pre_vote else RepeatState()
            case Cast(), VoteReply(pre_vote=False, granted=True, voter=voter, term=term) if term == self.term:
                self.votes.add(voter)
                return self._maybe_won(Role.CANDIDATE, data)
        return await self._common(event_type, content, data)

    async def leader(self, event_type: Any, content: Any, data: Any) -> Any:
        """Figure 2: "Upon election: send initial empty AppendEntries RPCs (heartbeat) to each server"; then serve."""
        match event_type, content:
            case Enter(), _:
                return await self._become_leader()
            case GenericTimeout(Timer.HEARTBEAT), _:
                self._broadcast_appends(heartbeat=True)
                return KeepState(actions=GenericTimeout(Timer.HEARTBEAT, self.config.heartbeat_interval))
            case StateTimeout(), Timer.CHECK_QUORUM:
                return self._check_quorum(data)
            case GenericTimeout(Timer.TRANSFER), _:
                log.info("leadership transfer abandoned", node=self.id, target=self.leading.transfer_target)
                self.leading.transfer_target = None
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
        """The higher-term rule, checked first (the roles match messages of their own term only), then the RPCs."""
        stepped_down = None
        if isinstance(event_type, Cast) and (term := _newer_term(content, self.term)) is not None:
            if isinstance(content, VoteRequest) and self._in_lease(content):
                return None  # a leader is alive: a disruptive candidate gets no answer (dissertation 4.2.3)
            stepped_down = await self._on_newer_term(term, data)
        match event_type, content:
            case Enter(), _:
                return None
            case Cast(), VoteRequest() as request:
                return await self._on_vote_request(request, stepped_down)
            case Cast(), Append() as append:
                return await self._on_append(append, data, stepped_down)
            case Cast(), InstallSnapshot() as install:
                return await self._on_install_snapshot(install, data, stepped_down)
            case Call(caller), Propose() | Read() | ChangeMembers() | TransferLeadership():
                return KeepState(actions=Reply(caller, NotLeader(self.leader_id)))
            case Call(caller), GetStatus():
                return KeepState(actions=Reply(caller, self.status()))
        return stepped_down  # stale replies and anything unknown: ignored, as the paper says

    async def _on_newer_term(self, term: int, data: Any) -> Any:
        """Figure 2: "If RPC request or response contains term T > currentTerm: set currentTerm = T, convert to
        follower"."""
        await self._set_term(term, None)
        return self._step_down(data)

    async def _on_vote_request(self, request: VoteRequest, stepped_down: Any) -> Any:
        up_to_date = (request.last_term, request.last_index) >= self._last()[::-1]
        if request.pre_vote:
            granted = request.term > self.term and up_to_date and not self._in_lease(request)
            answer = VoteReply(request.term if granted else self.term, self.id, granted, pre_vote=True)
            self._send(request.candidate, answer)
            return None
        granted = request.term == self.term and self.voted_for in (None, request.candidate) and up_to_date
        if granted:
            await self._set_term(self.term, request.candidate)  # persisted before the vote is sent
        self._send(request.candidate, VoteReply(self.term, self.id, granted))
        if granted:
            return stepped_down or KeepState(actions=self._election_timer())
        return stepped_down

    def _follow(self, leader: str, data: Any, stepped_down: Any) -> Any:
        """The leader of our term spoke: follow it (a candidate steps down) and restart the election timer."""
        self.last_leader_contact = self._now()
        stepped_down = stepped_down or self._step_down(data)  # None for a follower: its timer restarts below
        self.leader_id = leader
        return stepped_down or KeepState(actions=self._election_timer())

    async def _on_append(self, append: Append, data: Any, stepped_down: Any) -> Any:
        if append.term < self.term:
            self._send(append.leader, AppendReply(self.term, self.id, False, 0))
            return stepped_down
        result = self._follow(append.leader, data, stepped_down)
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

    async def _on_install_snapshot(self, install: InstallSnapshot, data: Any, stepped_down: Any) -> Any:
        if install.term < self.term:
            self._send(install.leader, AppendReply(self.term, self.id, False, 0))
            return stepped_down
        result = self._follow(install.leader, data, stepped_down)
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
        last = self.log_store.last_index()
        first = max(self.commit_index + 1, self.log_store.first_index())
        self.leading = Leadership(
            progress={peer: Progress(last + 1) for peer in self.members if peer != self.id},
            term_start=last + 1,
            uncommitted_bytes=sum(entry.size() for entry in self.log_store.entries(first, last + 1)),
        )
        await self._append_local([Entry(last + 1, self.term, b"", kind="noop")])  # commits the previous terms' entries
        timers: list[Any] = [GenericTimeout(Timer.HEARTBEAT, self.config.heartbeat_interval)]
        if self.config.check_quorum:
            timers.append(StateTimeout(self.config.election_timeout[0], Timer.CHECK_QUORUM))
        return KeepState(actions=timers)

    async def _propose(self, caller: Caller, proposal: Propose) -> Any:
        if self.leading.transfer_target is not None:
            return KeepState(actions=Reply(caller, Rejected("leadership transfer in progress")))
        if self.leading.uncommitted_bytes > self.config.max_uncommitted_bytes:
            return KeepState(actions=Reply(caller, Rejected("too many uncommitted entries")))
        answer = self.applier.answered(proposal.client, proposal.seq)
        if answer is not None:
            return KeepState(actions=Reply(caller, answer))
        index = self.log_store.last_index() + 1
        entry = Entry(index, self.term, proposal.command, client=proposal.client, seq=proposal.seq)
        self.leading.waiting[index] = (self.term, caller)
        await self._append_local([entry])
        return None

    async def _change_members(self, caller: Caller, change: ChangeMembers) -> Any:
        if self.membership.index > self.commit_index or not self._committed_in_term():
            return KeepState(actions=Reply(caller, Rejected("a membership change is in progress")))
        members = self.membership.changed(add=change.add, remove=change.remove)
        index = self.log_store.last_index() + 1
        entry = Entry(index, self.term, b"", kind="config", config=members)
        self.leading.waiting[index] = (self.term, caller)
        await self._append_local([entry])
        for peer in members:
            if peer != self.id and peer not in self.leading.progress:
                self.leading.progress[peer] = Progress(index)
        return None

    def _transfer(self, caller: Caller, target: str) -> Any:
        if target == self.id or target not in self.leading.progress:
            return KeepState(actions=Reply(caller, Rejected(f"cannot transfer to {target!r}")))
        self.leading.transfer_target = target
        self._maybe_send_timeout_now()
        return KeepState(actions=[Reply(caller, Ok()), GenericTimeout(Timer.TRANSFER, self.config.election_timeout[1])])

    def _read(self, caller: Caller, query: bytes) -> Any:
        if self.leading.reads.add(caller, query, self.commit_index, self._confirmed_read_seq()):
            self._start_read_round()
        self._serve_reads()
        return None

    def _start_read_round(self) -> None:
        """Ask every follower to confirm this node still leads (the answers echo the round)."""
        self.leading.reads.start_round()
        self._broadcast_appends(heartbeat=True)

    def _confirmed_read_seq(self) -> int:
        """The highest read round a quorum (this node included) has answered."""
        leading = self.leading
        acks = [leading.reads.seq] + [p.read_seq for peer, p in leading.progress.items() if peer in self.members]
        return quorum_index(acks, self._quorum())

    def _serve_reads(self) -> None:
        """Answer the reads whose leadership check a quorum confirmed and whose index is applied."""
        reads = self.leading.reads
        if not reads.pending or not self._committed_in_term():
            return
        ready, again = reads.take_ready(self._confirmed_read_seq(), self.last_applied, self.leading.term_start)
        for pending in ready:
            reply(pending.caller, self.applier.query(pending.query))
        if again:
            self._start_read_round()  # the round is answered; the reads that came meanwhile need theirs

    async def _append_local(self, entries: list[Entry]) -> None:
        self.log_store.append(entries)
        self._note_configs(entries)
        self.leading.uncommitted_bytes += sum(entry.size() for entry in entries)
        await self.log_store.sync()  # persisted before it is replicated
        self._broadcast_appends(heartbeat=False)
        await self._advance_leader_commit()

    def _broadcast_appends(self, *, heartbeat: bool) -> None:
        for peer in self.leading.progress:
            self._replicate(peer, heartbeat=heartbeat)

    def _replicate(self, peer: str, *, heartbeat: bool = False) -> None:
        """Send ``peer`` what it lacks, up to ``max_inflight`` messages; a heartbeat always goes."""
        progress = self.leading.progress[peer]
        store = self.log_store
        sent = False
        while progress.inflight < self.config.max_inflight and progress.next <= store.last_index():
            if progress.next < store.first_index():
                snapshot = self.snapshot_store.load()
                assert snapshot is not None
                self._send(peer, InstallSnapshot(self.term, self.id, snapshot))
                progress.next = snapshot.index + 1
                progress.inflight = self.config.max_inflight  # nothing more until it answers (or a heartbeat probes)
                return
            entries = store.entries(
                progress.next, progress.next + self.config.max_batch_entries, max_bytes=self.config.max_batch_bytes
            )
            self._send_append(peer, progress.next, tuple(entries))
            progress.next += len(entries)
            progress.inflight += 1
            sent = True
        if heartbeat and not sent:
            self._send_append(peer, progress.next, ())

    def _send_append(self, peer: str, next_index: int, entries: tuple[Entry, ...]) -> None:
        prev = next_index - 1
        prev_term = self.log_store.term_at(prev) or 0
        read_seq = self.leading.reads.seq
        self._send(peer, Append(self.term, self.id, prev, prev_term, entries, self.commit_index, read_seq))

    async def _on_append_reply(self, answer: AppendReply, data: Any) -> Any:
        progress = self.leading.progress.get(answer.follower)
        if progress is None:
            return None
        progress.on_reply(answer)
        if answer.success:
            await self._advance_leader_commit()
            self._maybe_send_timeout_now()
        self._replicate(answer.follower)
        self._serve_reads()
        return self._leave_if_removed(data)

    async def _advance_leader_commit(self) -> None:
        """Commit the highest index a quorum holds, if it is of this term (never count older terms)."""
        matches = [self.log_store.last_index() if self.id in self.members else 0]
        matches += [p.match for peer, p in self.leading.progress.items() if peer in self.members]
        candidate = quorum_index(matches, self._quorum())
        if candidate > self.commit_index and self.log_store.term_at(candidate) == self.term:
            await self._advance_commit(candidate)

    def _check_quorum(self, data: Any) -> Any:
        progress = self.leading.progress
        active = 1 + sum(1 for peer, p in progress.items() if p.active and peer in self.members)
        for p in progress.values():
            p.active = False
        if active < self._quorum():
            log.warning("lost contact with a quorum; stepping down", node=self.id, term=self.term)
            return self._step_down(data)
        return KeepState(actions=StateTimeout(self.config.election_timeout[0], Timer.CHECK_QUORUM))

    def _maybe_send_timeout_now(self) -> None:
        target = self.leading.transfer_target
        if target is not None and self.leading.progress[target].match == self.log_store.last_index():
            self._send(target, TimeoutNow(self.term, self.id))

    def _leave_if_removed(self, data: Any) -> Any:
        if self.id not in self.members and self.commit_index >= self.membership.index:
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
            self.leading.uncommitted_bytes -= entry.size()
            self._apply(entry)
        await self.applier.maybe_snapshot(self.last_applied, self.config.snapshot_every, self.membership)

    def _apply(self, entry: Entry) -> None:
        """Apply a committed entry, and answer its proposer if it waits here."""
        result = self.applier.apply(entry)
        waiting = self.leading.waiting.pop(entry.index, None)
        if waiting is not None:
            term, caller = waiting
            reply(caller, result if term == entry.term else Unknown("the entry was replaced"))

    def _restore(self, snapshot: Snapshot) -> None:
        self.applier.restore(snapshot)
        self.commit_index = max(self.commit_index, snapshot.index)
        self.last_applied = snapshot.index
        self.membership.restore(snapshot)

    # -- membership ----------------------------------------------------------------------

    @property
    def members(self) -> tuple[str, ...]:
        """The members in force: the latest configuration in the log."""
        return self.membership.members

    def _note_configs(self, entries: Any) -> None:
        self.membership.note(entries)
        self._prune_progress()

    def _reload_members(self) -> None:
        self.membership.reload(self.log_store)
        self._prune_progress()

    def _prune_progress(self) -> None:
        progress = self.leading.progress
        for peer in list(progress):
            if peer not in self.members and peer != self.leading.transfer_target:
                del progress[peer]

    # -- role changes -----------------------------------------------------------------

    def _maybe_won(self, role: Role, data: Any) -> Any:
        if len(self.votes & set(self.members)) >= self._quorum():
            return NextState(Role.CANDIDATE if role == Role.PRE_CANDIDATE else Role.LEADER, data)
        return None

    def _step_down(self, data: Any) -> Any:
        """Become a follower; a follower stays one, its election timer running on (only a leader's word restarts it)."""
        if self.state_name() == Role.FOLLOWER:
            return None
        return NextState(Role.FOLLOWER, data, self._election_timer())

    def _leave_leadership(self) -> None:
        """Give up what only a leader holds: its waiting clients learn that their outcome is unknown."""
        for index, (_, caller) in self.leading.waiting.items():
            if index > self.commit_index:
                reply(caller, Unknown("leadership lost before the entry committed"))
        self.leading.reads.fail_all()
        self.leading = Leadership()
        if self.leader_id == self.id:
            self.leader_id = None

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
            str(self.state_name()),
            self.term,
            self.voted_for,
            self.leader_id,
            self.commit_index,
            self.last_applied,
            self.log_store.last_index(),
            self.members,
            tuple(sorted((peer, progress.match) for peer, progress in self.leading.progress.items())),
        )

    def state_name(self) -> str:
        state: str = self.state
        return state

    def _send(self, peer: str, message: Any) -> None:
        self.system.remote(peer, self.spec.name).cast(message)

    def _broadcast(self, message: Any) -> None:
        for peer in self.members:
            if peer != self.id:
                self._send(peer, message)

    def _election_timer(self) -> list[Any]:
        return [StateTimeout(self.random.uniform(*self.config.election_timeout), Timer.ELECTION)]

    def _in_lease(self, request: VoteRequest) -> bool:
        """Check-quorum's leader lease: this node heard from a leader within the shortest election timeout."""
        return self.config.check_quorum and not request.transfer and self._heard_from_leader_recently()

    def _heard_from_leader_recently(self) -> bool:
        if self.state_name() == Role.LEADER:
            return True
        return self._now() - self.last_leader_contact < self.config.election_timeout[0]

    def _now(self) -> float:
        return self.system.now()

    def _last(self) -> tuple[int, int]:
        """``(last_index, last_term)`` of the log."""
        return self.log_store.last_index(), self.log_store.last_term()

    def _quorum(self) -> int:
        return len(self.members) // 2 + 1

    def _committed_in_term(self) -> bool:
        return self.log_store.term_at(self.commit_index) == self.term


def _newer_term(message: Any, term: int) -> int | None:
    """The term a peer's message brings, if newer than ``term`` (a pre-vote's term is only proposed, never taken)."""
    match message:
        case VoteRequest(pre_vote=True) | VoteReply(pre_vote=True, granted=True):
            return None
        case (
            VoteRequest(term=newer)
            | VoteReply(term=newer)
            | Append(term=newer)
            | AppendReply(term=newer)
            | InstallSnapshot(term=newer)
            | TimeoutNow(term=newer)
        ) if newer > term:
            return newer
    return None
