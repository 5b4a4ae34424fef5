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

The mechanisms live beside the node, one file each: log replication, the
leader's sending and the follower's accepting (``_replication.py``, a part of
the class), what the leader knows of each follower (``_progress.py``),
linearizable reads (``_reads.py``),
the configuration log (``_membership.py``), and applying entries with
client sessions and snapshots (``_apply.py``).

Persistence comes first: the term and vote are synced before a vote is
sent, and log entries before an append is acknowledged or replicated.
"""

from __future__ import annotations

import random
from typing import Any

from .._core import ActorRef, Call, Caller, Cast, get_logger, reply
from ..net import EncodeError
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
from ._apply import Applier, to_answer
from ._config import RaftSpec
from ._log import ENTRY_OVERHEAD, Entry, utf8_size
from ._membership import Membership
from ._progress import Leadership, Progress, quorum_index
from ._replication import Replication
from ._roles import Role, Timer
from ._rpc import (
    Append,
    AppendReply,
    ApplyFailed,
    ChangeMembers,
    GetStatus,
    InstallSnapshot,
    NotLeader,
    Ok,
    Propose,
    RaftStatus,
    Read,
    Rejected,
    SnapshotReply,
    TimeoutNow,
    TooLarge,
    TransferLeadership,
    Unknown,
    VoteReply,
    VoteRequest,
)
from ._storage import LogStore, Snapshot, SnapshotStore, SnapshotWriter, TermStore

log = get_logger("genstatem.raft")


class RaftNode(Replication, GenStateMachine):
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
        self.receiving: SnapshotWriter | None = None  # a snapshot arriving from the leader, chunk by chunk
        self.peer_refs: dict[str, ActorRef] = {}  # the RaftNode on each other node, by name
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
                if self.id not in self.voters:
                    return KeepState(actions=self._election_timer())  # a learner, or removed: never campaign
                return NextState(Role.PRE_CANDIDATE if self.config.pre_vote else Role.CANDIDATE, data)
            case Cast(), TimeoutNow(term=term) if term == self.term and self.id in self.voters:
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
        """Figure 2: "Upon election: send initial empty AppendEntries RPCs (heartbeat) to each server"; then serve.

        Group commit: proposals taken while other messages wait form a batch, appended, synced and sent once the
        mailbox is empty (or the batch is full); a lone proposal goes at once. Reads that wait together join one
        confirmation round, started once the mailbox is empty.
        """
        if content.__class__ is Propose and event_type.__class__ is Call:  # the most common event, first
            result = await self._propose(event_type.caller, content)
        else:
            result = await self._lead(event_type, content, data)
        leading = self.leading
        still_leading = result is None or result.__class__ is KeepState
        if (leading.batch or leading.read_round_wanted) and still_leading and not self.message_queue_len():
            await self._flush_batch()
            if leading.read_round_wanted:
                leading.read_round_wanted = False
                self._start_read_round()
        return result

    async def _lead(self, event_type: Any, content: Any, data: Any) -> Any:
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
                stepped_down = await self._on_append_reply(answer, data)
                if stepped_down is None:
                    await self._maybe_auto_promote(answer.follower)
                return stepped_down
            case Cast(), SnapshotReply(term=term) as answer if term == self.term:
                self._on_snapshot_reply(answer)
                return None
            case Call(caller), Propose() as proposal:
                return await self._propose(caller, proposal)
            case Call(caller), Read(query=query):
                return self._read(caller, query)
            case Call(caller), ChangeMembers() as change:
                return await self._change_members(caller, change)
            case Call(caller), TransferLeadership(target=target):
                return await self._transfer(caller, target)
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
            case Call(caller), Propose() as proposal if (refusal := self._refusal(proposal)) is not None:
                return KeepState(actions=Reply(caller, refusal))  # refused here, not sent on to the leader
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
        if (refusal := self._refusal(proposal)) is not None:
            return KeepState(actions=Reply(caller, refusal))
        if self.leading.transfer_target is not None:
            return KeepState(actions=Reply(caller, Rejected("leadership transfer in progress")))
        if self.leading.uncommitted_bytes > self.config.max_uncommitted_bytes:
            return KeepState(actions=Reply(caller, Rejected("too many uncommitted entries")))
        answer = self.applier.answered(proposal.client, proposal.seq)
        if answer is not None:
            self._reply(caller, answer)
            return None
        leading = self.leading
        index = self.log_store.last_index() + len(leading.batch) + 1
        entry = Entry(index, self.term, proposal.command, client=proposal.client, seq=proposal.seq)
        leading.waiting[index] = (self.term, caller)
        leading.batch.append(entry)
        leading.batch_bytes += entry.size()
        if len(leading.batch) >= self.config.max_batch_entries or leading.batch_bytes >= self.config.max_batch_bytes:
            await self._flush_batch()  # a full batch goes now; the rest goes once the mailbox is empty (``leader``)
        return None

    async def _change_members(self, caller: Caller, change: ChangeMembers) -> Any:
        if self.membership.index > self.commit_index or not self._committed_in_term():
            return KeepState(actions=Reply(caller, Rejected("a membership change is in progress")))
        try:
            config = self.membership.changed(
                add=change.add, remove=change.remove, learner=change.learner, promote=change.promote
            )
        except ValueError as error:
            return KeepState(actions=Reply(caller, Rejected(str(error))))
        if change.promote in self.membership.learners and not self._caught_up(change.promote):
            return KeepState(actions=Reply(caller, self._behind(change.promote)))
        await self._flush_batch()  # the proposals taken before it come before it
        entry = Entry(self.log_store.last_index() + 1, self.term, b"", kind="config", config=config)
        if entry.size() - ENTRY_OVERHEAD > self.config.max_command_bytes:
            return KeepState(
                actions=Reply(caller, TooLarge(entry.size() - ENTRY_OVERHEAD, self.config.max_command_bytes))
            )
        self.leading.waiting[entry.index] = (self.term, caller)
        await self._append_config(entry)
        return None

    async def _append_config(self, entry: Entry) -> None:
        await self._append_local([entry])
        for peer in self.members:
            if peer != self.id and peer not in self.leading.progress:
                self.leading.progress[peer] = Progress(entry.index)

    def _caught_up(self, learner: str) -> bool:
        """The leader knows ``learner`` holds the log to within ``max_learner_lag`` entries of the commit index."""
        progress = self.leading.progress.get(learner)
        match = progress.match if progress is not None else 0
        return match > 0 and match + self.config.max_learner_lag >= self.commit_index

    def _behind(self, learner: str) -> Rejected:
        progress = self.leading.progress.get(learner)
        return Rejected(
            f"{learner} is not caught up: it holds the log to index {progress.match if progress else 0}, "
            f"the commit index is {self.commit_index}; a learner is promoted within "
            f"{self.config.max_learner_lag} entries of it"
        )

    async def _maybe_auto_promote(self, peer: str) -> None:
        """With ``auto_promote``, make ``peer`` a voter once it is a caught-up learner and no change is in progress."""
        membership = self.membership
        if not (self.config.auto_promote and peer in membership.learners and self._caught_up(peer)):
            return
        if membership.index > self.commit_index or not self._committed_in_term() or self.id not in self.voters:
            return
        log.info("promoting a caught-up learner", node=self.id, learner=peer, term=self.term)
        config = membership.changed(add=None, remove=None, promote=peer)
        await self._flush_batch()  # the proposals taken before it come before it
        await self._append_config(Entry(self.log_store.last_index() + 1, self.term, b"", kind="config", config=config))

    async def _transfer(self, caller: Caller, target: str) -> Any:
        if target == self.id or target not in self.leading.progress or target not in self.voters:
            return KeepState(actions=Reply(caller, Rejected(f"cannot transfer to {target!r}")))
        await self._flush_batch()  # the target must catch up with the proposals taken so far
        self.leading.transfer_target = target
        self._maybe_send_timeout_now()
        return KeepState(actions=[Reply(caller, Ok()), GenericTimeout(Timer.TRANSFER, self.config.election_timeout[1])])

    def _read(self, caller: Caller, query: bytes) -> Any:
        # Never ready yet: it waits for a round started after it came (answers to rounds serve reads).
        if self.leading.reads.add(caller, query, self.commit_index):
            self.leading.read_round_wanted = True  # started once the mailbox is empty: the reads waiting join it
        return None

    def _start_read_round(self) -> None:
        """Ask every follower to confirm this node still leads (the answers echo the round)."""
        self.leading.reads.start_round()
        self._broadcast_appends(heartbeat=True)
        self._serve_reads()  # a lone voter is its own quorum: its reads are confirmed already

    def _confirmed_read_seq(self) -> int:
        """The highest read round a quorum (this node included) has answered."""
        leading = self.leading
        acks = [leading.reads.seq] + [p.read_seq for peer, p in leading.progress.items() if peer in self.voters]
        return quorum_index(acks, self._quorum())

    def _serve_reads(self) -> None:
        """Answer the reads whose leadership check a quorum confirmed and whose index is applied."""
        reads = self.leading.reads
        if not reads.pending or not self._committed_in_term():
            return
        ready, again = reads.take_ready(self._confirmed_read_seq(), self.last_applied, self.leading.term_start)
        for pending in ready:
            self._reply(pending.caller, self.applier.query(pending.query))
        if again:  # the round is answered; the reads that came meanwhile need theirs, once the mailbox is empty
            self.leading.read_round_wanted = True

    def _leave_if_removed(self, data: Any) -> Any:
        if self.id not in self.voters and self.commit_index >= self.membership.index:
            log.info("removed from the cluster; stepping down", node=self.id)
            return self._step_down(data)
        return None

    # -- commit and apply -----------------------------------------------------------------

    async def _advance_commit(self, index: int) -> None:
        """Commit up to ``index``: apply each entry newly committed, and answer its proposer if it waits here."""
        if index <= self.commit_index:
            return
        self.commit_index = index
        leading, apply = self.leading, self.applier.apply
        waiting = leading.waiting  # empty but on a leader
        for entry in self.log_store.entries(self.last_applied + 1, index + 1):  # the batch, taken at once
            self.last_applied = entry.index
            size = entry.size()
            leading.uncommitted_bytes -= size
            result, failed = apply(entry, size)
            if waiting and (proposer := waiting.pop(entry.index, None)) is not None:
                term, caller = proposer
                replaced = term != entry.term
                self._reply(caller, Unknown("the entry was replaced") if replaced else to_answer(result, failed))
        config = self.config
        await self.applier.maybe_snapshot(
            self.last_applied, self.membership, every=config.snapshot_every, max_bytes=config.snapshot_bytes
        )

    def _restore(self, snapshot: Snapshot) -> None:
        self.applier.restore(snapshot)
        self.commit_index = max(self.commit_index, snapshot.index)
        self.last_applied = snapshot.index
        self.membership.restore(snapshot)

    # -- membership ----------------------------------------------------------------------

    @property
    def members(self) -> tuple[str, ...]:
        """Every member in force (the latest configuration in the log), voters then learners."""
        return self.membership.members

    @property
    def voters(self) -> tuple[str, ...]:
        """The voters in force: they campaign, vote and make up the quorums; learners only follow."""
        return self.membership.voters

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
        if len(self.votes & set(self.voters)) >= self._quorum():
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

    def _refusal(self, proposal: Propose) -> TooLarge | ApplyFailed | None:
        """A refusal of a malformed proposal, or of one over ``max_command_bytes`` (its command and client id)."""
        command, client, seq = proposal.command, proposal.client, proposal.seq
        if not (isinstance(command, bytes) and (client is None or isinstance(client, str)) and isinstance(seq, int)):
            # From a client, perhaps not a RaftClient: refused, never in the log, where it would fail every node.
            return ApplyFailed(
                "malformed Propose: its command must be bytes, its client a str or None and its seq an int, not "
                f"{type(command).__name__}, {type(client).__name__} and {type(seq).__name__}"
            )
        size = len(command) + (utf8_size(client) if client is not None else 0)
        return TooLarge(size, self.config.max_command_bytes) if size > self.config.max_command_bytes else None

    def _reply(self, caller: Caller, answer: Any) -> None:
        """Answer a client with what its machine returned: an answer too large for the wire must not crash the node."""
        try:
            reply(caller, answer)
        except EncodeError as error:
            log.warning("answer not sent: it cannot be encoded", node=self.id, error=str(error))

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
            self.voters,
            tuple(sorted((peer, progress.match) for peer, progress in self.leading.progress.items())),
            self.membership.learners,
        )

    def state_name(self) -> str:
        state: str = self.state
        return state

    def _send(self, peer: str, message: Any) -> None:
        ref = self.peer_refs.get(peer)
        if ref is None:
            ref = self.system.remote(peer, self.spec.name)
            if peer != self.id:  # a ref by name to another node stays good: the name is looked up there
                self.peer_refs[peer] = ref
        ref.cast(message)

    def _broadcast(self, message: Any) -> None:
        """Send ``message`` to every other voter (a vote request: a learner is never asked)."""
        for peer in self.voters:
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
        return len(self.voters) // 2 + 1

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
            | SnapshotReply(term=newer)
            | TimeoutNow(term=newer)
        ) if newer > term:
            return newer
    return None
