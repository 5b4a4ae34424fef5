"""ListMachine and KVMachine: deterministic commands, reads, snapshots, and ValueError for bad input."""

from __future__ import annotations

import contextlib
import random

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from genstatem.raft._state_machine import KVMachine, ListMachine, StateMachine

keys = st.one_of(st.text(max_size=3), st.binary(max_size=3))
values = st.one_of(st.text(max_size=3), st.binary(max_size=3))
commands = st.one_of(
    st.builds(KVMachine.put, keys, values),
    st.builds(KVMachine.get, keys),
    st.builds(KVMachine.delete, keys),
    st.builds(KVMachine.cas, keys, st.none() | values, values),
)

MALFORMED = [
    b"",
    b"\xc1",  # a byte msgpack never uses
    b"\x92\xa3put",  # truncated array
    msgpack.packb(["put", "k", "v"]) + b"\x00",  # trailing data
    msgpack.packb({"put": "k"}),
    msgpack.packb("put"),
    msgpack.packb(["put", "k"]),
    msgpack.packb(["put", "k", "v", "extra"]),
    msgpack.packb(["put", 1, "v"]),
    msgpack.packb(["put", "k", None]),
    msgpack.packb(["get", ["k"]]),
    msgpack.packb(["cas", "k", 1, "v"]),
    msgpack.packb(["cas", "k", None, None]),
    msgpack.packb(["drop", "k"]),
    msgpack.packb([b"put", "k", "v"], use_bin_type=True),
    b"\xa2\xff\xfe",  # a str that is not UTF-8
    msgpack.packb(msgpack.ExtType(7, b"x")),  # an ext type
]


def test_machines_satisfy_the_protocol() -> None:
    """Both shipped machines are StateMachines (the protocol is runtime-checkable)."""
    assert isinstance(ListMachine(), StateMachine)
    assert isinstance(KVMachine(), StateMachine)
    assert not isinstance(object(), StateMachine)


# -- ListMachine --------------------------------------------------------------------


def test_list_apply_returns_position() -> None:
    """apply records the command and returns its 1-based position."""
    machine = ListMachine()
    assert [machine.apply(b"a"), machine.apply(b""), machine.apply(b"a")] == [1, 2, 3]
    assert machine.entries == [b"a", b"", b"a"]


def test_list_queries() -> None:
    """query(b"") is the count and query(b"all") a copy of the entries."""
    machine = ListMachine()
    machine.apply(b"x")
    machine.apply(b"y")
    assert machine.query(b"") == 2
    everything = machine.query(b"all")
    assert everything == [b"x", b"y"]
    assert isinstance(everything, list)
    everything.append(b"z")
    assert machine.entries == [b"x", b"y"]


def test_list_unknown_query_refused() -> None:
    """An unknown query raises ValueError naming the queries there are."""
    with pytest.raises(ValueError, match="unknown ListMachine query"):
        ListMachine().query(b"count")


def test_list_non_bytes_command_refused() -> None:
    """A command that is not bytes raises ValueError and is not recorded."""
    machine = ListMachine()
    with pytest.raises(ValueError, match="must be bytes"):
        machine.apply("text")  # type: ignore[arg-type]
    assert machine.entries == []


def test_list_snapshot_round_trip() -> None:
    """restore(snapshot()) on a fresh machine gives the same entries and the same snapshot."""
    machine = ListMachine()
    for command in (b"a", b"", b"\x00\xff"):
        machine.apply(command)
    copy = ListMachine()
    copy.apply(b"old")
    copy.restore(machine.snapshot())
    assert copy.entries == machine.entries
    assert copy.snapshot() == machine.snapshot()
    assert copy.apply(b"next") == 4


@pytest.mark.parametrize("snapshot", [b"\xc1", msgpack.packb({"a": 1}), msgpack.packb(["text"]), "x"])
def test_list_bad_snapshot_refused(snapshot: bytes) -> None:
    """A snapshot that is not a msgpack array of bytes raises ValueError and changes nothing."""
    machine = ListMachine()
    machine.apply(b"kept")
    with pytest.raises(ValueError, match="ListMachine snapshot"):
        machine.restore(snapshot)
    assert machine.entries == [b"kept"]


# -- KVMachine ----------------------------------------------------------------------


def test_kv_put_get_delete() -> None:
    """put answers "ok", get the value or None, delete "ok" whether or not the key was there."""
    machine = KVMachine()
    assert machine.apply(KVMachine.get("k")) is None
    assert machine.apply(KVMachine.put("k", "v")) == "ok"
    assert machine.apply(KVMachine.get("k")) == "v"
    assert machine.apply(KVMachine.put("k", b"w")) == "ok"
    assert machine.apply(KVMachine.get("k")) == b"w"
    assert machine.apply(KVMachine.delete("k")) == "ok"
    assert machine.apply(KVMachine.get("k")) is None
    assert machine.apply(KVMachine.delete("k")) == "ok"
    assert machine.data == {}


def test_kv_str_and_bytes_keys_differ() -> None:
    """ "a" and b"a" are different keys."""
    machine = KVMachine()
    machine.apply(KVMachine.put("a", "text"))
    machine.apply(KVMachine.put(b"a", b"bytes"))
    assert machine.data == {"a": "text", b"a": b"bytes"}


def test_kv_cas() -> None:
    """cas sets and returns True only when the value is the expected one, None meaning absent."""
    machine = KVMachine()
    assert machine.apply(KVMachine.cas("k", "v", "w")) is False
    assert "k" not in machine.data
    assert machine.apply(KVMachine.cas("k", None, "v")) is True
    assert machine.apply(KVMachine.cas("k", None, "x")) is False
    assert machine.apply(KVMachine.cas("k", "other", "x")) is False
    assert machine.apply(KVMachine.cas("k", b"v", "x")) is False
    assert machine.data == {"k": "v"}
    assert machine.apply(KVMachine.cas("k", "v", "w")) is True
    assert machine.data == {"k": "w"}


def test_kv_query_reads_without_changing() -> None:
    """query(get(k)) returns the value or None; it accepts nothing but a get."""
    machine = KVMachine()
    machine.apply(KVMachine.put("k", "v"))
    assert machine.query(KVMachine.get("k")) == "v"
    assert machine.query(KVMachine.get("other")) is None
    with pytest.raises(ValueError, match=r"only KVMachine\.get"):
        machine.query(KVMachine.put("k", "changed"))
    assert machine.data == {"k": "v"}


def test_kv_decode() -> None:
    """decode gives the operation as a tuple, as the linearizability checker's KVModel takes it."""
    assert KVMachine.decode(KVMachine.put("k", b"v")) == ("put", "k", b"v")
    assert KVMachine.decode(KVMachine.get(b"k")) == ("get", b"k")
    assert KVMachine.decode(KVMachine.delete("k")) == ("delete", "k")
    assert KVMachine.decode(KVMachine.cas("k", None, "v")) == ("cas", "k", None, "v")


@pytest.mark.parametrize("command", MALFORMED)
def test_kv_malformed_command_is_value_error(command: bytes) -> None:
    """A malformed command raises ValueError from apply and query, and changes nothing."""
    machine = KVMachine()
    machine.apply(KVMachine.put("k", "v"))
    with pytest.raises(ValueError, match="KVMachine command"):
        machine.apply(command)
    with pytest.raises(ValueError, match="KVMachine command"):
        machine.query(command)
    assert machine.data == {"k": "v"}


def test_kv_non_bytes_command_is_value_error() -> None:
    """A command that is not bytes at all is a ValueError too, not a TypeError."""
    with pytest.raises(ValueError, match="must be bytes"):
        KVMachine().apply(["put", "k", "v"])  # type: ignore[arg-type]


@given(st.binary(max_size=40))
def test_kv_random_bytes_never_crash_otherwise(command: bytes) -> None:
    """Any bytes either decode to a valid command or raise ValueError; nothing else escapes."""
    with contextlib.suppress(ValueError):
        KVMachine().apply(command)


@pytest.mark.parametrize(
    "encode",
    [
        lambda: KVMachine.put(1, "v"),  # type: ignore[arg-type]
        lambda: KVMachine.put("k", None),  # type: ignore[arg-type]
        lambda: KVMachine.get(None),  # type: ignore[arg-type]
        lambda: KVMachine.delete(3.0),  # type: ignore[arg-type]
        lambda: KVMachine.cas("k", 1, "v"),  # type: ignore[arg-type]
        lambda: KVMachine.cas("k", None, None),  # type: ignore[arg-type]
    ],
)
def test_kv_encoders_check_types(encode: object) -> None:
    """The encoders raise TypeError for a key or value that is not str or bytes, at the client."""
    with pytest.raises(TypeError, match="must be str or bytes"):
        encode()  # type: ignore[operator]


def test_kv_snapshot_is_sorted_msgpack() -> None:
    """The snapshot is a msgpack map with str keys first, then bytes keys, each sorted."""
    machine = KVMachine()
    for key in (b"b", "b", b"a", "a"):
        machine.apply(KVMachine.put(key, "v"))
    decoded = msgpack.unpackb(machine.snapshot(), raw=False)
    assert list(decoded) == ["a", "b", b"a", b"b"]


@given(st.lists(commands, max_size=30))
def test_kv_snapshot_round_trip(history: list[bytes]) -> None:
    """restore(snapshot()) rebuilds the same contents, which then answer every command the same way."""
    machine = KVMachine()
    for command in history:
        machine.apply(command)
    copy = KVMachine()
    copy.apply(KVMachine.put("stale", "gone"))
    copy.restore(machine.snapshot())
    assert copy.data == machine.data
    assert copy.snapshot() == machine.snapshot()
    for command in history:
        assert copy.apply(command) == machine.apply(command)


@given(st.dictionaries(keys, values, max_size=10), st.randoms(use_true_random=False))
def test_kv_snapshot_is_deterministic(contents: dict[str | bytes, str | bytes], rng: random.Random) -> None:
    """Equal contents give equal snapshot bytes, whatever order the keys were written in."""
    items = list(contents.items())
    shuffled = items[:]
    rng.shuffle(shuffled)
    first, second = KVMachine(), KVMachine()
    for key, value in items:
        first.apply(KVMachine.put(key, value))
    for key, value in shuffled:
        second.apply(KVMachine.put(key, value))
    assert first.snapshot() == second.snapshot()


@given(st.lists(commands, max_size=30))
def test_kv_replicas_agree(history: list[bytes]) -> None:
    """Two machines given the same commands return the same results and end in the same state."""
    first, second = KVMachine(), KVMachine()
    assert [first.apply(c) for c in history] == [second.apply(c) for c in history]
    assert first.snapshot() == second.snapshot()


@pytest.mark.parametrize(
    "snapshot",
    [b"\xc1", msgpack.packb(["k", "v"]), msgpack.packb({"k": 1}), msgpack.packb({1: "v"}, strict_types=False)],
)
def test_kv_bad_snapshot_refused(snapshot: bytes) -> None:
    """A snapshot that is not a map of str/bytes to str/bytes raises ValueError and changes nothing."""
    machine = KVMachine()
    machine.apply(KVMachine.put("k", "v"))
    with pytest.raises(ValueError, match="KVMachine snapshot"):
        machine.restore(snapshot)
    assert machine.data == {"k": "v"}
