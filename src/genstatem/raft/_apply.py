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

    __slots__ = ("log_bytes", "log_store", "machine", "sessions", "snapshot_store")

    def __init__(self, machine: StateMachine, log_store: LogStore, snapshot_store: SnapshotStore) -> None:
        self.machine = machine
        self.sessions: dict[str, tuple[int, Ok | ApplyFailed]] = {}  # client -> (last seq applied, its answer)
        self.log_store = log_store
        self.snapshot_store = snapshot_store
        self.log_bytes = 0  # the size of the entries applied since the last snapshot (the compactable log)

    def apply(self, entry: Entry, size: int) -> Ok | ApplyFailed:
        """Apply a committed entry (a retried proposal only once); return the answer for its proposer.

        ``size`` is ``entry.size()``, which the caller has already computed.
        """
        self.log_bytes += size
        if entry.kind != "command":
            return Ok()
        client = entry.client
        if client is not None:
            done = self.sessions.get(client)
            if done is not None and done[0] >= entry.seq:
                return done[1]  # applied before: exactly once
        result: Ok | ApplyFailed
        try:
            result = Ok(self.machine.apply(entry.command))
        except Exception as exc:  # deterministic: every node fails alike
            result = ApplyFailed(f"{type(exc).__name__}: {exc}")
        if client is not None:
            self.sessions[client] = (entry.seq, result)
        return result

    def answered(self, client: str | None, seq: int) -> Any:
        """The answer to a proposal its session has already applied (or a refusal of an older one); else ``None``."""
        if client is None:
            return None
        done = self.sessions.get(client)
        if done is not None and done[0] >= seq:
            return done[1] if done[0] == seq else Rejected("sequence number already used")
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
        sessions = [(client, seq, *_result_to_data(result)) for client, (seq, result) in sorted(self.sessions.items())]
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
        self.sessions = {client: (seq, _result_from_data(failed, value)) for client, seq, failed, value in sessions}


def _result_to_data(result: Ok | ApplyFailed) -> tuple[bool, Any]:
    """A session's remembered answer as plain data for a snapshot: ``(failed, value)``."""
    return (True, result.error) if isinstance(result, ApplyFailed) else (False, result.result)


def _result_from_data(failed: bool, value: Any) -> Ok | ApplyFailed:
    return ApplyFailed(value) if failed else Ok(value)
