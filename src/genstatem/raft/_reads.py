"""ReadIndex: linearizable reads without writing to the log (dissertation 6.4).

A read arriving at the leader remembers the commit index and joins the next
confirmation round: a heartbeat whose ``read_seq`` the followers echo.
Once a quorum has answered that round, no newer leader existed when the
read arrived, and the read is answered as soon as its index is applied.
Reads that arrive while a round is out join the next one, batched as etcd
batches them (``read_only.go``).
"""

from __future__ import annotations

from .._core import Caller, reply
from ._rpc import Unknown


class PendingRead:
    """A read waiting for its round to be confirmed and its index applied."""

    __slots__ = ("caller", "index", "query", "seq")

    def __init__(self, caller: Caller, query: bytes, index: int, seq: int) -> None:
        self.caller, self.query, self.index, self.seq = caller, query, index, seq


class ReadIndex:
    """The leader's reads in waiting and its confirmation rounds."""

    __slots__ = ("out", "pending", "seq")

    def __init__(self) -> None:
        self.pending: list[PendingRead] = []
        self.seq = 0  # the latest round started: heartbeats carry it
        # The latest round is not confirmed yet. It has reads waiting until it is, so ``take_ready`` sees it
        # confirmed; the reads that come meanwhile are then asked a round for (``take_ready``'s second answer).
        self.out = False

    def add(self, caller: Caller, query: bytes, commit_index: int) -> bool:
        """Queue a read for the next round; return whether that round must start now (none is out)."""
        self.pending.append(PendingRead(caller, query, commit_index, self.seq + 1))
        return not self.out

    def start_round(self) -> None:
        """A new round: the heartbeats sent next carry it."""
        self.seq += 1
        self.out = True

    def take_ready(self, confirmed: int, applied: int, term_start: int) -> tuple[list[PendingRead], bool]:
        """The reads whose round is confirmed and whose index is applied (never before the term's first entry).

        Returns:
            those reads, taken out; and whether the reads still waiting need a new round.
        """
        if confirmed >= self.seq:
            self.out = False
        ready: list[PendingRead] = []
        still: list[PendingRead] = []
        for pending in self.pending:
            index = max(pending.index, term_start)
            (ready if pending.seq <= confirmed and applied >= index else still).append(pending)
        self.pending = still
        return ready, confirmed >= self.seq and any(pending.seq > self.seq for pending in still)

    def fail_all(self) -> None:
        """Leadership is lost: answer every waiting read that its outcome is unknown."""
        for pending in self.pending:
            reply(pending.caller, Unknown("leadership lost before the read was confirmed"))
        self.pending.clear()
