"""What a node's peers occupy in local mailboxes: the counts behind TCP receive backpressure."""

from __future__ import annotations

import weakref
from collections import deque

import attrs

from .._core import (
    LocalRef,
    mailbox_size,
)


@attrs.frozen
class NodeStatistics:
    """A snapshot of the size of a ``Node``'s tables: each shrinks back as calls end and actors and peers go.

    Attributes:
        pending_calls: calls from here to other nodes waiting for an answer.
        incoming_calls: calls from other nodes delivered to local actors and
            not yet answered; one is forgotten when its caller gives up.
        remote_actors: remote actors linked to or monitored by a local actor.
        monitors: monitors across nodes, set from here or by other nodes,
            and ``wait_exit`` calls in progress.
        remote_refs: remote actors some ``RemoteRef`` held here refers to.
        backlog_bytes: frame bytes from other nodes whose messages still
            wait in local mailboxes (at most).
    """

    pending_calls: int
    incoming_calls: int
    remote_actors: int
    monitors: int
    remote_refs: int
    backlog_bytes: int


class _Inbox:
    """What one peer's messages still occupy in local mailboxes, in frame bytes.

    Per actor, the sizes of the last messages from the peer put in its
    mailbox, oldest first. A mailbox is first in, first out, so when it
    holds ``n`` messages at most the last ``n`` of these are still there:
    ``settle`` forgets the others. Messages from elsewhere in the same
    mailbox only make the figure larger than the truth, never smaller. The
    actors are held weakly: an actor gone and collected takes its count along.
    """

    __slots__ = ("size", "targets")

    def __init__(self) -> None:
        self.size = 0
        self.targets: weakref.WeakKeyDictionary[LocalRef, _Charges] = weakref.WeakKeyDictionary()

    def charge(self, target: LocalRef, size: int) -> None:
        charges = self.targets.get(target)
        if charges is None:
            charges = self.targets[target] = _Charges()
        charges.sizes.append(size)
        charges.total += size
        self.size += size

    def settle(self) -> int:
        total = 0
        for target, charges in list(self.targets.items()):
            sizes = charges.sizes
            waiting = mailbox_size(target)
            while len(sizes) > waiting:
                charges.total -= sizes.popleft()
            if sizes:
                total += charges.total
            else:
                del self.targets[target]
        self.size = total
        return total


class _Charges:
    """The sizes of the messages from one peer that may still wait in one actor's mailbox, and their sum."""

    __slots__ = ("sizes", "total")

    def __init__(self) -> None:
        self.sizes: deque[int] = deque()
        self.total = 0
