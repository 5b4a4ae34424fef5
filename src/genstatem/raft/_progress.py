"""What a leader knows of each follower, and the quorum arithmetic on it.

Figure 2 keeps ``nextIndex[]`` and ``matchIndex[]`` per follower; etcd
calls the record ``Progress`` (``tracker/progress.go``). Ours adds flow
control (appends in flight), liveness for check-quorum, and the highest
ReadIndex round the follower has answered.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .._core import Caller
from ._log import Entry
from ._reads import ReadIndex
from ._rpc import AppendReply


class SnapshotSend:
    """A snapshot being streamed to one follower: what was sent, what it confirmed holding."""

    __slots__ = ("acked", "complete", "crc", "index", "inflight", "members", "rewound_to", "sent", "size", "stalled_at")

    def __init__(self, index: int, members: tuple[str, ...], size: int, crc: int) -> None:
        self.index, self.members, self.size, self.crc = index, members, size, crc
        self.sent = 0  # the offset of the next chunk to send
        self.complete = False  # the last chunk was sent
        self.acked = 0  # the follower holds the data up to here
        self.inflight = 0  # chunks sent and not yet answered
        self.rewound_to = -1  # the offset last resent from, so that one loss rewinds once
        self.stalled_at = -1  # ``acked`` at the last heartbeat: unchanged at the next, the stream is resent

    def rewind(self, offset: int) -> None:
        """Resend from ``offset``: a chunk or its answer was lost, or the follower restarted."""
        self.sent = self.acked = self.rewound_to = offset
        self.inflight = 0
        self.complete = False


class Progress:
    """The leader's record of one follower."""

    __slots__ = ("active", "inflight", "match", "next", "read_seq", "snapshot")

    def __init__(self, next_index: int) -> None:
        self.next = next_index  # nextIndex: the next entry to send it
        self.match = 0  # matchIndex: the highest entry known to be in its log
        self.inflight = 0  # appends sent and not yet answered
        self.active = True  # it answered since the last check-quorum round
        self.read_seq = 0  # the highest ReadIndex round it confirmed
        self.snapshot: SnapshotSend | None = None  # the snapshot being streamed to it, if its next entry is compacted

    def on_reply(self, answer: AppendReply) -> None:
        """Take in an append's answer; late, duplicated or reordered answers never move ``match`` or ``next`` back."""
        self.active = True
        self.read_seq = max(self.read_seq, answer.read_seq)
        self.inflight = max(0, self.inflight - 1)
        if answer.success:
            self.match = max(self.match, answer.match)
            self.next = max(self.next, self.match + 1)
            if self.match >= self.next - 1:
                self.inflight = 0  # it has all we sent: anything counted in flight was lost
        else:
            # a mismatch: back up to the hint (never below what is known to match), one probe at a time
            self.next = max(self.match + 1, min(self.next, answer.hint or self.next - 1))
            self.inflight = 0


def quorum_index(values: Iterable[int], quorum: int) -> int:
    """The highest value that at least ``quorum`` of ``values`` have reached (0 if there are fewer values).

    With each member's match index this is the highest index a quorum
    holds; with each member's confirmed read round, the highest round a
    quorum has answered.
    """
    ranked = sorted(values, reverse=True)
    return ranked[quorum - 1] if len(ranked) >= quorum else 0


@attrs.define
class Leadership:
    """Figure 2's volatile state on leaders, reinitialized after election; a non-leader's is empty."""

    progress: dict[str, Progress] = attrs.Factory(dict)  # nextIndex[] and matchIndex[], per follower
    waiting: dict[int, tuple[int, Caller]] = attrs.Factory(dict)  # index -> (term, proposer)
    reads: ReadIndex = attrs.Factory(ReadIndex)
    transfer_target: str | None = None
    term_start: int = 0  # the index of this term's first entry
    uncommitted_bytes: int = 0
    snapshot_crc: tuple[int, int] = (0, 0)  # (index, CRC-32) of the snapshot last streamed: computed once
    batch: list[Entry] = attrs.Factory(list)  # proposals taken while messages waited: appended together (group commit)
    batch_bytes: int = 0
    read_round_wanted: bool = False  # reads wait for a confirmation round, to start once the mailbox is empty
