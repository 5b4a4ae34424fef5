"""Log replication, both ends: the leader sends what each follower lacks, the follower checks and appends it.

Figure 2's AppendEntries and Figure 13's InstallSnapshot. The leader keeps a
``Progress`` per follower (``_progress.py``) and sends it entries from its
``next`` index, pipelined up to ``max_inflight`` messages, or the snapshot
when those entries are compacted away; it commits the highest index a
quorum holds, if of its own term. The follower runs the consistency check
and appends, persisting before it acknowledges.

``Replication`` is a part of ``RaftNode``, split off to keep the node's
roles readable: it uses the node's state and helpers, declared below.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from .._core import get_logger
from ..statem import KeepState, StateTimeout
from ._log import Entry
from ._progress import Progress, SnapshotSend, quorum_index
from ._roles import Timer
from ._rpc import Append, AppendReply, InstallSnapshot, SnapshotReply, TimeoutNow
from ._storage import Snapshot

if TYPE_CHECKING:
    from ._apply import Applier
    from ._config import RaftConfig
    from ._progress import Leadership
    from ._storage import LogStore, SnapshotStore, SnapshotWriter

log = get_logger("genstatem.raft")


class Replication:
    """The replication half of ``RaftNode``."""

    if TYPE_CHECKING:
        id: str
        term: int
        config: RaftConfig
        leading: Leadership
        log_store: LogStore
        snapshot_store: SnapshotStore
        applier: Applier
        commit_index: int
        leader_id: str | None
        last_leader_contact: float
        receiving: SnapshotWriter | None

        @property
        def voters(self) -> tuple[str, ...]: ...
        def _send(self, peer: str, message: Any) -> None: ...
        def _quorum(self) -> int: ...
        def _now(self) -> float: ...
        def _step_down(self, data: Any) -> Any: ...
        def _election_timer(self) -> list[Any]: ...
        def _serve_reads(self) -> None: ...
        def _leave_if_removed(self, data: Any) -> Any: ...
        def _note_configs(self, entries: Any) -> None: ...
        def _reload_members(self) -> None: ...
        def _restore(self, snapshot: Snapshot) -> None: ...
        async def _advance_commit(self, index: int) -> None: ...

    # -- the follower ----------------------------------------------------------------

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

    async def _on_install_snapshot(self, chunk: InstallSnapshot, data: Any, stepped_down: Any) -> Any:
        """Figure 13, chunk by chunk: write what follows what is held; install once whole and verified."""
        if chunk.term < self.term:
            self._send(chunk.leader, AppendReply(self.term, self.id, False, 0))
            return stepped_down
        result = self._follow(chunk.leader, data, stepped_down)
        if chunk.index <= self.commit_index:  # already held (the last chunk's answer was lost, or a duplicate)
            self._abort_receiving()
            self._send(chunk.leader, AppendReply(self.term, self.id, True, self.commit_index))
            return result
        writer = self.receiving
        key = (chunk.index, chunk.last_term, chunk.size, chunk.crc)
        if writer is None or (writer.index, writer.term, writer.size, writer.crc) != key:
            self._abort_receiving()
            if chunk.offset != 0:  # the start was lost, or this node restarted: ask for it
                self._send(chunk.leader, SnapshotReply(self.term, self.id, chunk.index, 0, False))
                return result
            writer = self.snapshot_store.begin(chunk.index, chunk.last_term, chunk.members, chunk.size, chunk.crc)
            self.receiving = writer
        held = writer.written
        if not chunk.offset <= held <= chunk.end or (held == chunk.end and held < chunk.size):
            # a gap (a chunk was lost: resend from ``held``), or a duplicate of what is held
            self._send(chunk.leader, SnapshotReply(self.term, self.id, chunk.index, held, chunk.offset < held))
            return result
        await writer.write(held, chunk.data[held - chunk.offset :])
        if writer.written < writer.size:
            self._send(chunk.leader, SnapshotReply(self.term, self.id, chunk.index, writer.written, True))
            return result
        self.receiving = None
        try:
            snapshot = await writer.finish()  # verified, and durable before the log it replaces goes
        except ValueError as error:
            log.warning("received snapshot failed its check; asking again", node=self.id, error=str(error))
            self._send(chunk.leader, SnapshotReply(self.term, self.id, chunk.index, 0, False))
            return result
        await self._install(snapshot)
        self._send(chunk.leader, AppendReply(self.term, self.id, True, max(snapshot.index, self.commit_index)))
        return result

    async def _install(self, snapshot: Snapshot) -> None:
        """Replace the log it covers and the machine with a durable snapshot from the leader."""
        if self.log_store.term_at(snapshot.index) != snapshot.term:
            self.log_store.truncate_from(max(self.log_store.first_index(), self.commit_index + 1))
        self.log_store.compact(snapshot.index, snapshot.term)
        await self.log_store.sync()
        self._restore(snapshot)
        self._reload_members()

    def _abort_receiving(self) -> None:
        if self.receiving is not None:
            self.receiving.abort()
            self.receiving = None

    # -- the leader ----------------------------------------------------------------

    async def _flush_batch(self) -> None:
        """Append the proposals taken so far, with one sync and one ``Append`` per follower (group commit)."""
        leading = self.leading
        if leading.batch:
            batch, size, leading.batch, leading.batch_bytes = leading.batch, leading.batch_bytes, [], 0
            await self._append_local(batch, size)

    async def _append_local(self, entries: list[Entry], size: int | None = None) -> None:
        """Append ``entries`` to the leader's log, send them, and sync: the followers write while the leader does.

        The leader may send entries before they are durable on its own disk
        (the Raft paper, section 10.2.1; etcd does the same): a follower
        still syncs before it acknowledges, and the leader counts its own
        copy towards a quorum only once its ``sync()`` has returned, which
        is before this event ends and so before any acknowledgement is
        handled. The two flushes overlap instead of adding up. ``size`` is
        the entries' total ``size()``, if the caller knows it.
        """
        self.log_store.append(entries)
        self._note_configs(entries)
        self.leading.uncommitted_bytes += sum(entry.size() for entry in entries) if size is None else size
        self._broadcast_appends(heartbeat=False)
        await self.log_store.sync()
        await self._advance_leader_commit()

    def _broadcast_appends(self, *, heartbeat: bool) -> None:
        for peer in self.leading.progress:
            self._replicate(peer, heartbeat=heartbeat)

    def _replicate(self, peer: str, *, heartbeat: bool = False) -> None:
        """Send ``peer`` what it lacks, up to ``max_inflight`` messages; a heartbeat always goes."""
        progress = self.leading.progress[peer]
        store = self.log_store
        sent = False
        if progress.next < store.first_index():
            self._stream_snapshot(peer, progress, heartbeat=heartbeat)
        else:
            progress.snapshot = None
            while progress.inflight < self.config.max_inflight and progress.next <= store.last_index():
                entries = store.entries(
                    progress.next, progress.next + self.config.max_batch_entries, max_bytes=self.config.max_batch_bytes
                )
                self._send_append(peer, progress.next, tuple(entries))
                progress.next += len(entries)
                progress.inflight += 1
                sent = True
        if heartbeat and not sent:
            self._send_append(peer, progress.next, ())

    def _stream_snapshot(self, peer: str, progress: Progress, *, heartbeat: bool) -> None:
        """Send ``peer`` the snapshot's next chunks, a few in flight; a newer snapshot restarts the stream."""
        snapshot = self.snapshot_store.load()
        assert snapshot is not None, "the log was compacted without a snapshot"
        stream = progress.snapshot
        if stream is None or stream.index != snapshot.index:
            if self.leading.snapshot_crc[0] != snapshot.index:
                self.leading.snapshot_crc = (snapshot.index, zlib.crc32(snapshot.data))
            stream = SnapshotSend(snapshot.index, snapshot.members, len(snapshot.data), self.leading.snapshot_crc[1])
            progress.snapshot = stream
        elif heartbeat:
            if stream.acked == stream.stalled_at:
                stream.rewind(stream.acked)  # no answer for a whole heartbeat interval: chunks or answers were lost
            stream.stalled_at = stream.acked
        chunk_bytes = self.config.snapshot_chunk_bytes
        while stream.inflight < self.config.snapshot_chunks_in_flight and not stream.complete:
            data = self.snapshot_store.read(stream.sent, chunk_bytes)
            self._send(
                peer,
                InstallSnapshot(
                    self.term,
                    self.id,
                    snapshot.index,
                    snapshot.term,
                    snapshot.members,
                    stream.size,
                    stream.crc,
                    stream.sent,
                    data,
                ),
            )
            stream.sent += len(data)
            stream.complete = stream.sent >= stream.size
            stream.inflight += 1

    def _on_snapshot_reply(self, answer: SnapshotReply) -> None:
        progress = self.leading.progress.get(answer.follower)
        if progress is None:
            return
        progress.active = True
        stream = progress.snapshot
        if stream is not None and stream.index == answer.index:  # else about a snapshot no longer streamed
            stream.inflight = max(0, stream.inflight - 1)
            if answer.ok:
                stream.acked = max(stream.acked, answer.offset)
            elif answer.offset < stream.sent and answer.offset != stream.rewound_to:
                stream.rewind(answer.offset)  # a gap at the follower: resend from what it holds (once per loss)
        self._replicate(answer.follower)

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
        matches = [self.log_store.last_index() if self.id in self.voters else 0]
        matches += [p.match for peer, p in self.leading.progress.items() if peer in self.voters]
        candidate = quorum_index(matches, self._quorum())
        if candidate > self.commit_index and self.log_store.term_at(candidate) == self.term:
            await self._advance_commit(candidate)

    def _check_quorum(self, data: Any) -> Any:
        progress = self.leading.progress
        active = 1 + sum(1 for peer, p in progress.items() if p.active and peer in self.voters)
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
