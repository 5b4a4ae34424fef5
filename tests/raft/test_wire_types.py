"""Every type a RaftNode sends to another node is registered with the wire codec and round-trips."""

from __future__ import annotations

import typing
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genstatem as gs
import genstatem.raft as raft
from genstatem.net import Codec, DecodeError, MemoryNetwork, default_registry
from genstatem.net._handshake import HANDSHAKE_VERSION
from genstatem.raft import (
    Entry,
    GetStatus,
    KVMachine,
    MemoryStorage,
    RaftConfig,
    RaftNode,
    RaftSpec,
    RaftStatus,
    Snapshot,
    StorageStatistics,
)
from genstatem.raft._rpc import RAFT_MESSAGES, Append
from genstatem.raft._wire import FIRST_TYPE_ID, append_to_wire

from ..net.strategies import mutated

DATA = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
"""Plain data: what a user's commands and results are made of."""

NAMES = st.text(max_size=5)
ENTRIES = st.builds(
    Entry,
    index=st.integers(1, 2**40),
    term=st.integers(0, 2**40),
    command=st.binary(max_size=16),
    kind=st.sampled_from(["command", "noop", "config"]),
    client=st.none() | NAMES,
    seq=st.integers(0, 2**40),
    config=st.lists(NAMES, max_size=3).map(tuple),
)
SNAPSHOTS = st.builds(
    Snapshot,
    index=st.integers(0, 2**40),
    term=st.integers(0, 2**40),
    members=st.lists(NAMES, max_size=3),
    data=st.binary(max_size=16),
)


BY_HINT: dict[Any, st.SearchStrategy[Any]] = {
    Any: DATA,
    int: st.integers(0, 2**40),
    bool: st.booleans(),
    str: NAMES,
    bytes: st.binary(max_size=16),
    str | None: st.none() | NAMES,
    tuple[str, ...]: st.lists(NAMES, max_size=3).map(tuple),
    tuple[Entry, ...]: st.lists(ENTRIES, max_size=3).map(tuple),
    tuple[tuple[str, int], ...]: st.lists(st.tuples(NAMES, st.integers(0, 2**40)), max_size=3).map(tuple),
}
"""How to make a value of each field type the Raft messages use."""


def instances(cls: type) -> st.SearchStrategy[Any]:
    """Instances of the attrs class ``cls``: plain data for its ``Any`` fields, entries and snapshots nested."""
    if cls is Entry:
        return ENTRIES
    if cls is Snapshot:
        return SNAPSHOTS
    hints = typing.get_type_hints(cls)
    fields = {}
    for field in attrs.fields(cls):
        hint = hints[field.name]
        fields[field.name] = BY_HINT[hint] if hint in BY_HINT else instances(hint)
    return st.builds(cls, **fields)


SENT_TYPES = (*RAFT_MESSAGES, RaftStatus)
"""Everything a node puts on the wire: its RPCs, its answers to clients, its status."""


def test_every_public_raft_data_type_is_one_a_node_can_send() -> None:
    """The public attrs classes of ``genstatem.raft`` that travel between nodes are all in the sent set."""
    public = {getattr(raft, name) for name in raft.__all__}
    local = (RaftConfig, RaftSpec, StorageStatistics)  # what a node is given or keeps, never sends
    travelling = {cls for cls in public if attrs.has(cls) and cls not in local}
    assert travelling <= set(SENT_TYPES), travelling - set(SENT_TYPES)


@pytest.mark.parametrize("cls", SENT_TYPES, ids=lambda cls: cls.__name__)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_each_type_a_node_sends_round_trips_through_the_wire_codec(cls: type, data: st.DataObject) -> None:
    """Encoded by one node's codec and decoded by another's, a value comes back equal."""
    value = data.draw(instances(cls))
    sender, receiver = Codec(), Codec()
    default_registry.install(sender)
    default_registry.install(receiver)
    assert receiver.decode(sender.encode(value)) == value


@pytest.mark.anyio
async def test_a_status_call_from_another_node_is_answered_and_the_node_lives_on() -> None:
    """``call(GetStatus())`` across nodes returns the ``RaftStatus``; bogus remote requests are ignored."""
    network = MemoryNetwork()
    config = RaftConfig(election_timeout=(0.05, 0.1), heartbeat_interval=0.02)
    spec = RaftSpec(("a",), KVMachine, MemoryStorage(), config)
    async with gs.ActorSystem(node="a", network=network) as a, gs.ActorSystem(node="b", network=network) as b:
        node = await a.start(RaftNode, spec, name="raft")
        assert node is not None
        remote = b.remote("a", "raft")
        status = await remote.call(GetStatus(), timeout=2)
        assert isinstance(status, RaftStatus)
        assert status.id == "a"
        for bogus in ("status", ["status"], {"x": 1}, 42, b"\x00"):
            remote.cast(bogus)
            with pytest.raises(gs.CallTimeout):
                await remote.call(bogus, timeout=0.05)
        assert node.alive
        assert (await remote.call(GetStatus(), timeout=2)).id == "a"


# -- Append's compact form -------------------------------------------------------

APPEND = Append(
    3,
    "a",
    7,
    2,
    (Entry(8, 3, b"x", client="c", seq=4), Entry(9, 3, b"", kind="config", config=("a", "b")), Entry(10, 3, b"")),
    8,
    5,
)
GOOD_ENTRY = [8, 3, b"x", "command", "c", 4, 0]


def append_with(entries: list[Entry]) -> Append:
    return attrs.evolve(APPEND, entries=tuple(entries))


class _Raw:
    """Stands for an Append whose wire data is ``data``, whatever it is."""

    def __init__(self, data: Any) -> None:
        self.data = data


def frame_of(data: Any) -> bytes:
    """The bytes of a message whose Append carries ``data`` as its compact form."""
    sender = Codec()
    sender.register_custom(_Raw, APPEND_TYPE_ID, lambda raw: raw.data, lambda data: data)
    return sender.encode(_Raw(data))


def receiver() -> Codec:
    codec = Codec()
    default_registry.install(codec)
    return codec


APPEND_TYPE_ID = FIRST_TYPE_ID + RAFT_MESSAGES.index(Append)


def test_an_append_travels_as_one_flat_array_of_plain_values() -> None:
    """The compact form: the header, then each entry's fields and its members, all in one list, and back."""
    header = [3, "a", 7, 2, 8, 5]
    entries = [8, 3, b"x", "command", "c", 4, 0, 9, 3, b"", "config", None, 0, 2, "a", "b", 10, 3, b"", "command"]
    assert append_to_wire(APPEND) == [*header, *entries, None, 0, 0]
    assert receiver().decode(receiver().encode(APPEND)) == APPEND
    assert receiver().decode(frame_of(append_to_wire(APPEND))) == APPEND


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"term": 3}, "at least 6 values, not dict"),
        ([3, "a", 7, 2, 8], "at least 6 values, not a list of 5"),
        ([3, 4, 7, 2, 8, 5], "header is ints and the leader's name"),
        ([3, "a", 7, True, 8, 5], "header is ints and the leader's name"),
        ([3, "a", 7, 2, 8, 5, 8, 3, b"x"], "cut short"),
        ([3, "a", 7, 2, 8, 5, 8, 3, b"x", "command", 7, 4, 0], "client is a str or None"),
        ([3, "a", 7, 2, 8, 5, 8, 3, b"x", "command", None, "4", 0], "seq and member count ints"),
        ([3, "a", 7, 2, 8, 5, 8, 3, b"x", "command", None, 4, -1], "seq and member count ints"),
        ([3, "a", 7, 2, 8, 5, 8, 3, b"x", "config", None, 4, 2, "a"], "2 members are strs"),
        ([3, "a", 7, 2, 8, 5, 8, 3, b"x", "config", None, 4, 1, 5], "1 members are strs"),
        ([3, "a", 7, 2, 8, 5, 0, 3, b"x", "command", None, 4, 0], "Entry.index must be an int >= 1"),
        ([3, "a", 7, 2, 8, 5, 8, 3, "x", "command", None, 4, 0], "Entry.command must be bytes"),
        ([3, "a", 7, 2, 8, 5, 8, 3, b"x", "nope", None, 4, 0], "Entry.kind must be one of"),
        ([3, "a", 7, 2, 8, 5, *GOOD_ENTRY, 9, -1, b"", "noop", None, 0, 0], "Entry.term must be an int >= 0"),
    ],
)
def test_a_malformed_append_is_a_decode_error_that_says_what_is_wrong(data: Any, says: str) -> None:
    """Bytes from a peer: every wrong type, count or value in an Append is refused, naming it, never a bad entry."""
    with pytest.raises(DecodeError, match=r"decode hook of genstatem\.raft\._rpc\.Append raised") as info:
        receiver().decode(frame_of(data))
    assert says in str(info.value)


@settings(max_examples=300, deadline=None)
@given(data=mutated(st.lists(ENTRIES, max_size=4).map(lambda entries: receiver().encode(append_with(entries)))))
def test_a_damaged_append_decodes_to_an_append_or_a_decode_error(data: bytes) -> None:
    """An encoded Append with bytes flipped, cut or added is either still an Append or refused: nothing else escapes."""
    try:
        value = receiver().decode(data)
    except DecodeError:
        return
    if isinstance(value, Append):
        assert all(isinstance(entry, Entry) for entry in value.entries)


def test_an_append_in_the_record_form_of_older_nodes_is_refused_and_the_handshake_says_so() -> None:
    """Nodes before handshake version 3 sent an Append as a record: the compact form comes with version 3."""
    old = Codec()
    for offset, cls in enumerate(RAFT_MESSAGES):
        old.register(cls, FIRST_TYPE_ID + offset)
    with pytest.raises(DecodeError, match="is a custom type, sent as a record"):
        receiver().decode(old.encode(APPEND))
    assert HANDSHAKE_VERSION >= 3
