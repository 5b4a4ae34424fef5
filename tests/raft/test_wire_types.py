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
from genstatem.net import Codec, MemoryNetwork, default_registry
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
from genstatem.raft._rpc import RAFT_MESSAGES

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
