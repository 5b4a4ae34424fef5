"""Applying committed entries to the user's state machine, exactly once per client session, and snapshots.

Every node applies the same entries in the same order, so the machine, the
sessions (each client's last sequence number and answer, dissertation 6.3)
and a snapshot of both come out the same on every node. A snapshot holds
plain data only (msgpack), never pickles: it crosses the disk and the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgpack  # type: ignore[import-untyped]

from ._log import Entry
from ._rpc import ApplyFailed, Ok, Rejected
from ._state_machine import StateMachine
from ._storage import LogStore, Snapshot, SnapshotStore

if TYPE_CHECKING:
    from ._membership import Membership


class Applier:
    """The user's state machine and the client sessions, fed committed entries; it snapshots and restores both."""

    __slots__ = ("_sessions", "log_bytes", "log_store", "machine", "snapshot_store")

    def __init__(self, machine: StateMachine, log_store: LogStore, snapshot_store: SnapshotStore) -> None:
        self.machine = machine
        # client -> [last seq applied, its result, whether apply raised (the result is then the error)]: updated
        # in place, so that applying an entry on a follower leaves no new object for the cyclic GC to track.
        self._sessions: dict[str, list[Any]] = {}
        self.log_store = log_store
        self.snapshot_store = snapshot_store
        self.log_bytes = 0  # the size of the entries applied since the last snapshot (the compactable log)

    @property
    def sessions(self) -> dict[str, tuple[int, Ok | ApplyFailed]]:
        """Each client session's last sequence number applied and the answer it got."""
        return {client: (seq, to_answer(result, failed)) for client, (seq, result, failed) in self._sessions.items()}

    def apply(self, entry: Entry, size: int) -> tuple[Any, bool]:
        """Apply a committed entry (a retried proposal only once): ``(result, failed)``, for ``to_answer``.

        ``size`` is ``entry.size()``, which the caller has already computed.
        """
        self.log_bytes += size
        if entry.kind != "command":
            return None, False
        client = entry.client
        session = None
        if client is not None:
            session = self._sessions.get(client)
            if session is not None and session[0] >= entry.seq:
                return session[1], session[2]  # applied before: exactly once
        failed = False
        try:
            result = self.machine.apply(entry.command)
        except Exception as exc:  # deterministic: every node fails alike
            result, failed = f"{type(exc).__name__}: {exc}", True
        if session is not None:
            session[0], session[1], session[2] = entry.seq, result, failed
        elif client is not None:
            self._sessions[client] = [entry.seq, result, failed]
        return result, failed

    def answered(self, client: str | None, seq: int) -> Any:
        """The answer to a proposal its session has already applied (or a refusal of an older one); else ``None``."""
        if client is None:
            return None
        session = self._sessions.get(client)
        if session is not None and session[0] >= seq:
            return to_answer(session[1], session[2]) if session[0] == seq else Rejected("sequence number already used")
        return None

    def query(self, query: bytes) -> Ok | ApplyFailed:
        """Run a read-only ``query`` on the machine."""
        try:
            return Ok(self.machine.query(query))
        except Exception as exc:
            return ApplyFailed(f"{type(exc).__name__}: {exc}")

    async def maybe_snapshot(
        self, applied: int, membership: Membership, *, every: int | None, max_bytes: int | None
    ) -> None:
        """Once ``every`` entries, or ``max_bytes`` of them, are applied past the last snapshot: snapshot, compact."""
        by_count = every is not None and applied - self.log_store.first_index() + 1 >= every
        by_size = max_bytes is not None and self.log_bytes >= max_bytes
        if not (by_count or by_size) or applied < self.log_store.first_index():
            return
        index = applied
        sessions = [(client, seq, failed, result) for client, (seq, result, failed) in sorted(self._sessions.items())]
        state = msgpack.packb([self.machine.snapshot(), sessions], use_bin_type=True)
        snapshot = Snapshot(index, self.log_store.term_at(index) or 0, membership.stored_at(index), state)
        self.snapshot_store.save(snapshot)
        await self.snapshot_store.sync()  # the snapshot is safe before the entries it covers go
        self.log_store.compact(index, snapshot.term)
        await self.log_store.sync()
        self.log_bytes = 0

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the machine and the sessions with a snapshot's."""
        machine_state, sessions = msgpack.unpackb(snapshot.data, raw=False)
        self.machine.restore(machine_state)
        self.log_bytes = 0
        self._sessions = {client: [seq, value, failed] for client, seq, failed, value in sessions}


def to_answer(result: Any, failed: bool) -> Ok | ApplyFailed:
    """The answer to a proposal whose entry ``Applier.apply`` gave ``(result, failed)``."""
    return ApplyFailed(result) if failed else Ok(result)
