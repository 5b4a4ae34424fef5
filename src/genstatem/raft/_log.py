"""The Raft log entry: what the leader replicates, one per index.

An entry is a value: it is built once by the leader, copied to followers, kept
in a store and replayed after a restart, so it is frozen, and it is checked when
it is built so that a bad one never reaches a log.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

KINDS: Final = ("command", "noop", "config")
"""The kinds of entry: a user's command, a new leader's no-op, a membership change."""

ENTRY_OVERHEAD: Final = 72
"""Bytes that ``Entry.size()`` adds to the command: the most the wire codec spends on an entry's other fields."""

STRING_OVERHEAD: Final = 5
"""The most the wire codec spends on a string's header (plus its UTF-8 bytes)."""


def _check(index: Any, term: Any, command: Any, kind: Any) -> None:
    """``ValueError`` naming the first bad field (the slow path of ``Entry.__attrs_post_init__``)."""
    if not isinstance(index, int) or isinstance(index, bool) or index < 1:
        raise ValueError(f"Entry.index must be an int >= 1 (the log is 1-based), got {index!r}")
    if not isinstance(term, int) or isinstance(term, bool) or term < 0:
        raise ValueError(f"Entry.term must be an int >= 0, got {term!r}")
    if not isinstance(command, bytes):
        raise ValueError(f"Entry.command must be bytes, got {type(command).__name__}")
    if kind not in KINDS:
        raise ValueError(f"Entry.kind must be one of {KINDS}, got {kind!r}")


def _members(value: Any) -> tuple[str, ...]:
    # A wire codec may hand back a list; the entry keeps a tuple so it stays hashable.
    return tuple(value)


@attrs.frozen
class Entry:
    """One log entry.

    Attributes:
        index: its position in the log, from 1.
        term: the leader's term when the entry was created.
        command: the user's command, given to ``StateMachine.apply`` once the
            entry commits (``b""`` for a no-op or a config entry).
        kind: ``"command"``, ``"noop"`` (a new leader's first entry, which lets
            it commit entries of earlier terms) or ``"config"`` (a membership
            change).
        client: the id of the client session that proposed it, so a retried
            proposal is applied once; ``None`` for no session.
        seq: the client's sequence number of this proposal within its session.
        config: for ``kind == "config"``, the new member list.
    """

    index: int
    term: int
    command: bytes
    kind: str = "command"
    client: str | None = None
    seq: int = 0
    config: tuple[str, ...] = attrs.field(default=(), converter=_members)
    # ``size()``, once asked: an entry's size is asked on every node for batching, bounds and snapshots.
    _size: int | None = attrs.field(init=False, default=None, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # One check of the four fields, with the usual exact types first: entries are built on the hot path.
        index, term, command, kind = self.index, self.term, self.command, self.kind
        exact = type(index) is int and type(term) is int and type(command) is bytes
        if not (exact and index >= 1 and term >= 0 and kind in KINDS):
            _check(index, term, command, kind)

    def size(self) -> int:
        """An upper bound of the bytes the entry encodes to, for batching appends and bounding uncommitted data.

        Being a bound, not an estimate, it lets the leader cut an append by
        size and know the message fits the wire's frame limit.

        Returns:
            ``len(command)``, the UTF-8 bytes of ``client`` and of each member
            of ``config`` (with ``STRING_OVERHEAD`` each), and a fixed
            ``ENTRY_OVERHEAD``, so that even empty entries count against a limit.
        """
        size = self._size
        if size is None:
            size = len(self.command) + ENTRY_OVERHEAD
            if self.client is not None:
                size += utf8_size(self.client) + STRING_OVERHEAD
            for member in self.config:
                size += utf8_size(member) + STRING_OVERHEAD
            object.__setattr__(self, "_size", size)  # frozen to its users; a cache of its own value
        return size


def utf8_size(text: str) -> int:
    """The UTF-8 length of ``text``: an ASCII str, which knows it is one, is counted without encoding it."""
    return len(text) if text.isascii() else len(text.encode())
