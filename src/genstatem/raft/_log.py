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


def _check_kind(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in KINDS:
        raise ValueError(f"Entry.kind must be one of {KINDS}, got {value!r}")


def _check_index(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Entry.index must be an int >= 1 (the log is 1-based), got {value!r}")


def _check_term(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"Entry.term must be an int >= 0, got {value!r}")


def _check_command(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bytes):
        raise ValueError(f"Entry.command must be bytes, got {type(value).__name__}")


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

    index: int = attrs.field(validator=_check_index)
    term: int = attrs.field(validator=_check_term)
    command: bytes = attrs.field(validator=_check_command)
    kind: str = attrs.field(default="command", validator=_check_kind)
    client: str | None = None
    seq: int = 0
    config: tuple[str, ...] = attrs.field(default=(), converter=_members)

    def size(self) -> int:
        """An upper bound of the bytes the entry encodes to, for batching appends and bounding uncommitted data.

        Being a bound, not an estimate, it lets the leader cut an append by
        size and know the message fits the wire's frame limit.

        Returns:
            ``len(command)``, the UTF-8 bytes of ``client`` and of each member
            of ``config`` (with ``STRING_OVERHEAD`` each), and a fixed
            ``ENTRY_OVERHEAD``, so that even empty entries count against a limit.
        """
        size = len(self.command) + ENTRY_OVERHEAD
        if self.client is not None:
            size += _utf8_size(self.client) + STRING_OVERHEAD
        for member in self.config:
            size += _utf8_size(member) + STRING_OVERHEAD
        return size


def _utf8_size(text: str) -> int:
    # An ASCII str is one byte a character, and knows it is ASCII: no need to encode it to count.
    return len(text) if text.isascii() else len(text.encode())
