"""How Raft's messages travel: every one as a registered record, but ``Append``, in a compact form.

An ``Append`` carries a batch of entries, and a leader sends one to every
follower per batch, so its encoding is the replication's hot path. As a
record, each entry would be a tagged record of its own, decoded field by
field; instead the whole message is one flat msgpack array of plain values,
which the codec packs and unpacks in one step each:

    term, leader, prev_index, prev_term, commit, read_seq,
    then for each entry: index, term, command, kind, client, seq, len(config), *config

The bytes come from a peer, so the decoding checks every value's type and
the array's shape, and ``Entry`` checks its own fields as it is built: a
malformed ``Append`` is a ``DecodeError`` at the receiver, never a bad entry
in its log.
"""

from __future__ import annotations

from typing import Any, Final

from ..net import TypeRegistry
from ._log import Entry
from ._rpc import RAFT_MESSAGES, Append

FIRST_TYPE_ID: Final = 200
"""``RAFT_MESSAGES`` are registered with type ids 200, 201, ... in their order."""

_HEADER: Final = 6  # term, leader, prev_index, prev_term, commit, read_seq
_ENTRY: Final = 7  # an entry's values up to its config members: index ... len(config)


def register_raft_messages(registry: TypeRegistry) -> None:
    """Allow Raft's messages on the wire of every node that uses ``registry``."""
    for offset, cls in enumerate(RAFT_MESSAGES):
        if cls is Append:
            registry.register_custom(Append, FIRST_TYPE_ID + offset, append_to_wire, append_from_wire, reserved=True)
        else:
            registry.register(cls, FIRST_TYPE_ID + offset, reserved=True)


def append_to_wire(append: Append) -> list[Any]:
    """``append`` as one flat list of plain values (the module's docstring has the layout)."""
    data = [append.term, append.leader, append.prev_index, append.prev_term, append.commit, append.read_seq]
    for entry in append.entries:
        config = entry.config
        data += (entry.index, entry.term, entry.command, entry.kind, entry.client, entry.seq, len(config))
        data += config
    return data


def append_from_wire(data: Any) -> Append:
    """Rebuild an ``Append`` from ``append_to_wire``'s list, checking it all: it comes from a peer.

    Raises:
        ValueError: the data is not such a list, or an entry's value is of
            the wrong type or out of range.
    """
    if type(data) is not list or len(data) < _HEADER:
        raise ValueError(f"an Append is a list of at least {_HEADER} values, not {_describe(data)}")
    term, leader, prev_index, prev_term, commit, read_seq = data[:_HEADER]
    if type(leader) is not str or not _all_ints(term, prev_index, prev_term, commit, read_seq):
        raise ValueError(f"an Append's header is ints and the leader's name, not {data[:_HEADER]!r}")
    return Append(term, leader, prev_index, prev_term, _entries_from_wire(data), commit, read_seq)


def _entries_from_wire(data: list[Any]) -> tuple[Entry, ...]:
    entries = []
    at, end = _HEADER, len(data)
    while at < end:
        values = data[at : at + _ENTRY]
        if len(values) < _ENTRY:
            raise ValueError(f"an entry at position {at} is cut short: {values!r}")
        index, term, command, kind, client, seq, count = values
        if not (client is None or type(client) is str) or type(seq) is not int or type(count) is not int or count < 0:
            raise ValueError(f"an entry's client is a str or None, its seq and member count ints: {values!r}")
        at += _ENTRY
        config: tuple[Any, ...] = ()
        if count:
            config = tuple(data[at : at + count])
            if len(config) != count or not all(type(member) is str for member in config):
                raise ValueError(f"an entry's {count} members are strs: {config!r}")
            at += count
        entries.append(Entry(index, term, command, kind, client, seq, config))  # checks the rest of its fields
    return tuple(entries)


def _all_ints(*values: Any) -> bool:
    return all(type(value) is int for value in values)


def _describe(data: Any) -> str:
    return f"a list of {len(data)}" if type(data) is list else type(data).__name__
