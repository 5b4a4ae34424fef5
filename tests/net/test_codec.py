"""The wire codec: what round-trips, what the sender refuses, what the receiver rejects."""

from __future__ import annotations

import enum
import math
import struct
from collections import OrderedDict
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genstatem.net import DEFAULT_MAX_DEPTH, MAX_TYPE_ID, Codec, DecodeError, EncodeError

from .strategies import mutated

FUZZ = settings(max_examples=300, deadline=None)


# -- the types the tests send -------------------------------------------------


@attrs.frozen
class Point:
    x: int
    y: int


@attrs.frozen
class Envelope:
    to: str
    body: Any
    tags: frozenset[str] = frozenset()


@attrs.frozen
class Shaped:
    _secret: int
    label: str = attrs.field(kw_only=True, default="")
    doubled: int = attrs.field(init=False)

    @doubled.default
    def _double(self) -> int:
        return self._secret * 2


@attrs.frozen
class Positive:
    n: int = attrs.field(validator=attrs.validators.gt(0))


@attrs.frozen
class Unregistered:
    x: int


@attrs.frozen
class PointSubclass(Point):
    pass


class Ref:
    """Stands for a context-bound handle: only its name travels."""

    def __init__(self, name: str, node: str = "local") -> None:
        self.name = name
        self.node = node

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and (self.name, self.node) == (other.name, other.node)

    def __hash__(self) -> int:
        return hash((self.name, self.node))

    def __repr__(self) -> str:
        return f"Ref({self.name!r}, {self.node!r})"


class Color(enum.IntEnum):
    RED = 1


def make_codec(*, node: str = "local", **limits: int) -> Codec:
    codec = Codec(**limits)
    codec.register(Point, 1)
    codec.register(Envelope, 2)
    codec.register(Shaped, 3)
    codec.register(Positive, 4)
    codec.register_custom(Ref, 100, lambda ref: ref.name, lambda name: Ref(name, node))
    return codec


def shape(value: Any) -> Any:
    """A hashable description of ``value`` that tells types apart (1, True, 1.0; list, tuple)."""
    kind = type(value).__name__
    if isinstance(value, list | tuple):
        return (kind, tuple(shape(item) for item in value))
    if isinstance(value, set | frozenset):
        return (kind, frozenset(shape(item) for item in value))
    if isinstance(value, dict):
        return (kind, tuple((shape(k), shape(v)) for k, v in value.items()))
    if isinstance(value, float):
        return (kind, repr(value))
    if attrs.has(type(value)):
        return (kind, tuple(shape(getattr(value, f.name)) for f in attrs.fields(type(value))))
    return (kind, value)


def round_trip(value: Any, codec: Codec | None = None) -> Any:
    codec = codec or make_codec()
    return codec.decode(codec.encode(value))


# -- strategies ---------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
hashables = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4).map(tuple)
        | st.frozensets(inner, max_size=4)
        | st.builds(Point, st.integers(), st.integers())
    ),
    max_leaves=8,
)
plain_data = st.recursive(
    hashables,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=5).map(tuple)
        | st.dictionaries(hashables, inner, max_size=5)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
        | st.builds(Envelope, st.text(max_size=5), inner, st.frozensets(st.text(max_size=3), max_size=3))
        | st.builds(Ref, st.text(max_size=5))
    ),
    max_leaves=25,
)


def decode_or_decode_error(codec: Codec, data: bytes) -> None:
    """Decode ``data``; a value or a ``DecodeError`` that says what was wrong are the only allowed outcomes."""
    try:
        codec.decode(data)
    except DecodeError as exc:
        assert_says_what_was_wrong(exc)


def assert_says_what_was_wrong(exc: DecodeError) -> None:
    """A decode error's message is more than a prefix: something follows every colon."""
    message = str(exc)
    assert message.strip()
    assert not message.rstrip().endswith(":"), message


# -- round trips --------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        2**64,
        -(2**63) - 1,
        10**100,
        -(10**100),
        0.0,
        -0.0,
        1.5,
        math.inf,
        -math.inf,
        "",
        "plain",
        "é€😀",
        b"",
        b"\x00\xff" * 10,
    ],
)
def test_scalar_round_trips(value: Any) -> None:
    """Every scalar kind comes back with the same type and value."""
    assert shape(round_trip(value)) == shape(value)


def test_nan_round_trips() -> None:
    """NaN survives the trip as a float NaN."""
    result = round_trip(math.nan)
    assert type(result) is float
    assert math.isnan(result)


def test_tuple_and_list_keep_their_types() -> None:
    """A tuple comes back a tuple and a list a list, at every depth."""
    value: tuple[Any, ...] = ([1, (2, [3])], (), [], [()], ([],))
    assert shape(round_trip(value)) == shape(value)


def test_dict_keys_of_any_encodable_type() -> None:
    """Dicts keep composite keys (tuples, frozensets, records, big ints) and their order."""
    value = {(1, "a"): 1, frozenset({2}): 2, Point(1, 2): 3, 2**80: 4, None: 5, b"k": 6, Ref("r"): 7}
    result = round_trip(value)
    assert shape(result) == shape(value)
    assert list(result) == list(value)


def test_sets_and_frozensets_keep_their_types() -> None:
    """A set comes back a set and a frozenset a frozenset."""
    value = [{1, (2, 3)}, frozenset({"a", frozenset({"b"})}), set(), frozenset()]
    assert shape(round_trip(value)) == shape(value)


@FUZZ
@given(plain_data)
def test_nested_data_round_trips(value: Any) -> None:
    """Any nesting of plain data, records and custom types comes back equal and with the same types."""
    assert shape(round_trip(value)) == shape(value)


def test_nested_records_round_trip() -> None:
    """Registered attrs classes nest inside each other and inside plain data."""
    value = Envelope("a", {"points": [Point(1, 2), (Point(3, 4),)]}, frozenset({"x"}))
    assert round_trip(Envelope("b", value)) == Envelope("b", value)


def test_record_private_and_kw_only_fields() -> None:
    """Private-named and keyword-only fields are passed back under their init names."""
    assert round_trip(Shaped(5, label="five")) == Shaped(5, label="five")


def test_record_init_false_field_is_recomputed() -> None:
    """A field with init=False is not sent; the receiving class computes it again."""
    codec = make_codec()
    assert codec.decode(codec.encode(Shaped(4))).doubled == 8
    raw = msgpack.unpackb(codec.encode(Shaped(4)))
    assert len(raw) == 2 + 2  # marker, type id, _secret, label


def test_custom_type_round_trips_with_receiver_context() -> None:
    """A custom type travels through its hooks, which rebuild it with the receiver's context."""
    sender, receiver = make_codec(node="a"), make_codec(node="b")
    result = receiver.decode(sender.encode(Envelope("x", [Ref("worker")])))
    assert result == Envelope("x", [Ref("worker", "b")])


def test_custom_type_can_encode_to_registered_types() -> None:
    """A custom hook may return records and containers; plain classes register as custom too."""
    codec = Codec()
    codec.register(Point, 1)
    codec.register_custom(
        Ref,
        2,
        lambda ref: (Point(0, 0), {"name": ref.name, "node": ref.node}),
        lambda d: Ref(d[1]["name"], d[1]["node"]),
    )
    codec.register_custom(complex, 3, lambda c: (c.real, c.imag), lambda pair: complex(*pair))
    value = [Ref("a", "n1"), 1 + 2j, {3j: Ref("b")}]
    assert codec.decode(codec.encode(value)) == value


def test_accepts_bytearray_and_memoryview() -> None:
    """decode takes any contiguous bytes-like object."""
    codec = make_codec()
    data = codec.encode((1, "two"))
    assert codec.decode(bytearray(data)) == (1, "two")
    assert codec.decode(memoryview(data)) == (1, "two")


def test_max_depth_is_inclusive() -> None:
    """A message nested exactly max_depth containers deep is accepted both ways."""
    codec = make_codec(max_depth=5)
    value: Any = 0
    for _ in range(5):
        value = [value]
    assert codec.decode(codec.encode(value)) == value
    assert Codec().max_depth == DEFAULT_MAX_DEPTH


@pytest.mark.parametrize("wrap", [lambda v: [v], lambda v: (v,), lambda v: {0: v}, lambda v: frozenset([v])])
def test_deepest_allowed_nesting_fits_the_stack(wrap: Any) -> None:
    """At the largest max_depth a codec allows, every container kind nests without hitting the recursion limit."""
    codec = make_codec(max_depth=256)
    value: Any = 0
    for _ in range(256):
        value = wrap(value)
    assert codec.decode(codec.encode(value)) == value


# -- the sender refuses ---------------------------------------------------------


def test_unregistered_type_fails_with_its_path() -> None:
    """An unknown type fails at the sender with a TypeError naming the type and where it sits."""
    with pytest.raises(EncodeError) as info:
        make_codec().encode([1, 2, {"x": object()}])
    assert isinstance(info.value, TypeError)
    assert info.value.path == "message[2]['x']"
    assert info.value.value_type is object
    assert "message[2]['x']" in str(info.value)
    assert "object" in str(info.value)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (object(), "message"),
        (Envelope("a", (1, Unregistered(1))), "message.body[1]"),
        ({(1, Unregistered(1)): 2}, "message<key (1, Unregistered(x=1))>[1]"),
        ({"k": {Unregistered(1)}}, "message['k']<element Unregistered(x=1)>"),
        ((0, Ref(object())), "message[1]<encoded Ref>"),  # type: ignore[arg-type]
    ],
)
def test_paths_through_every_container(value: Any, path: str) -> None:
    """The path names record fields, dict keys and values, set elements and custom encodings."""
    with pytest.raises(EncodeError) as info:
        make_codec().encode(value)
    assert info.value.path == path


@pytest.mark.parametrize(
    "value",
    [Color.RED, bytearray(b"x"), OrderedDict(a=1), PointSubclass(1, 2), Unregistered(1), 1j, memoryview(b"x")],
)
def test_subclasses_and_unregistered_types_are_refused(value: Any) -> None:
    """Types are matched exactly: subclasses of plain or registered types are refused, not coerced."""
    with pytest.raises(EncodeError) as info:
        make_codec().encode({"v": value})
    assert info.value.value_type is type(value)


def test_lone_surrogate_is_refused() -> None:
    """A str that UTF-8 cannot carry fails at the sender, with its path."""
    with pytest.raises(EncodeError, match="surrogate") as info:
        make_codec().encode(["ok", "bad\ud800"])
    assert info.value.path == "message[1]"


def test_lone_surrogate_among_many_plain_items_is_refused_with_its_path() -> None:
    """A surrogate in a long list of plain items, or in a record's field, is found and named all the same."""
    with pytest.raises(EncodeError, match="surrogate") as info:
        make_codec().encode([1, 2, 3, ("a", "b", "c", "bad\udfff")])
    assert info.value.path == "message[3][3]"
    with pytest.raises(EncodeError, match="surrogate") as info:
        make_codec().encode(Envelope("bad\ud800", None))
    assert info.value.path == "message.to"


def test_big_integers_among_many_plain_items_round_trip() -> None:
    """Integers beyond 64 bits inside long plain lists, tuples and records' fields come back as they went."""
    value = [[1, 2, 3, 2**64], (-(2**63) - 1, 0, 0, 0), Point(2**70, 1), "after"]
    assert shape(round_trip(value)) == shape(value)


def test_too_deep_is_refused_at_the_sender() -> None:
    """Nesting beyond max_depth fails at the sender, so the peer never has to reject it."""
    value: Any = 0
    for _ in range(6):
        value = (value,)
    with pytest.raises(EncodeError, match="max_depth 5") as info:
        make_codec(max_depth=5).encode(value)
    assert info.value.path == "message[0][0][0][0][0]"


def test_cycle_is_refused() -> None:
    """A self-containing list fails with EncodeError instead of recursing forever."""
    value: list[Any] = []
    value.append(value)
    with pytest.raises(EncodeError, match="max_depth"):
        make_codec().encode(value)


def test_oversized_message_is_refused_at_the_sender() -> None:
    """A message that encodes to more than max_size fails at the sender."""
    with pytest.raises(EncodeError, match="over max_size 100"):
        make_codec(max_size=100).encode(b"x" * 200)


def test_encode_hook_error_becomes_encode_error() -> None:
    """An exception in a custom encode hook is reported as EncodeError, with the cause kept."""
    codec = Codec()

    def explode(_: Ref) -> Any:
        raise RuntimeError("no route")

    codec.register_custom(Ref, 1, explode, Ref)
    with pytest.raises(EncodeError, match="no route") as info:
        codec.encode({"to": Ref("x")})
    assert info.value.path == "message['to']"
    assert isinstance(info.value.__cause__, RuntimeError)


# -- registration -----------------------------------------------------------


def test_register_refuses_non_attrs_classes() -> None:
    """register takes attrs classes only; other types go through register_custom."""
    with pytest.raises(TypeError, match="register_custom"):
        Codec().register(Ref, 1)


@pytest.mark.parametrize("type_id", [-1, MAX_TYPE_ID + 1])
def test_register_refuses_out_of_range_ids(type_id: int) -> None:
    """Type ids must lie between 0 and MAX_TYPE_ID."""
    with pytest.raises(ValueError, match="type_id"):
        Codec().register(Point, type_id)


def test_register_refuses_non_int_ids() -> None:
    """A bool or str is not a type id."""
    with pytest.raises(TypeError):
        Codec().register(Point, True)
    with pytest.raises(TypeError):
        Codec().register(Point, "1")  # type: ignore[arg-type]


def test_register_refuses_duplicates() -> None:
    """An id or a class can be registered once; the error names the earlier registration."""
    codec = Codec()
    codec.register(Point, 1)
    with pytest.raises(ValueError, match="already registered"):
        codec.register(Envelope, 1)
    with pytest.raises(ValueError, match="already registered"):
        codec.register_custom(Point, 2, lambda p: p.x, lambda x: Point(x, 0))


def test_register_custom_refuses_plain_data() -> None:
    """Plain data types are built in and cannot be overridden."""
    with pytest.raises(ValueError, match="plain data"):
        Codec().register_custom(tuple, 1, list, tuple)


def test_limits_are_validated() -> None:
    """max_size and max_depth must be usable values."""
    with pytest.raises(ValueError, match="max_size"):
        Codec(max_size=0)
    with pytest.raises(ValueError, match="max_depth"):
        Codec(max_depth=0)
    with pytest.raises(ValueError, match="max_depth"):
        Codec(max_depth=10_000)


# -- the receiver rejects -----------------------------------------------------


def marker(code: int) -> msgpack.ExtType:
    return msgpack.ExtType(code, b"")


def pack(raw: Any) -> bytes:
    return bytes(msgpack.packb(raw, use_bin_type=True))


def test_unknown_type_id_is_rejected() -> None:
    """A record whose type id the receiver never registered is a DecodeError."""
    data = make_codec().encode(Point(1, 2))
    with pytest.raises(DecodeError, match="unknown type id 1"):
        Codec().decode(data)


def test_type_id_of_the_wrong_kind_is_rejected() -> None:
    """A custom id sent as a record, or a record id sent as custom, is a DecodeError."""
    codec = make_codec()
    with pytest.raises(DecodeError, match="custom type, sent as a record"):
        codec.decode(pack([marker(5), 100, "x"]))
    with pytest.raises(DecodeError, match="record, sent as a custom type"):
        codec.decode(pack([marker(6), 1, [1, 2]]))


@pytest.mark.parametrize("fields", [[], [1], [1, 2, 3]])
def test_wrong_field_count_is_rejected(fields: list[int]) -> None:
    """A record with too few or too many fields is a DecodeError."""
    with pytest.raises(DecodeError, match="takes 2 fields"):
        make_codec().decode(pack([marker(5), 1, *fields]))


def test_field_values_the_class_rejects_are_a_decode_error() -> None:
    """A validator failing on the receiver turns into DecodeError."""
    with pytest.raises(DecodeError, match="rejected its fields"):
        make_codec().decode(pack([marker(5), 4, -1]))


def test_decode_hook_error_becomes_decode_error() -> None:
    """An exception in a custom decode hook is reported as DecodeError."""
    codec = Codec()
    codec.register_custom(Ref, 1, lambda r: r.name, lambda name: Ref(name.upper()))
    with pytest.raises(DecodeError, match="decode hook"):
        codec.decode(pack([marker(6), 1, 42]))


def test_every_truncation_is_rejected() -> None:
    """Every strict prefix of a valid message is a DecodeError."""
    codec = make_codec()
    data = codec.encode(Envelope("to", [1, 2**70, (Point(1, 2), {"k": b"v"}), Ref("r")], frozenset({"t"})))
    for end in range(len(data)):
        with pytest.raises(DecodeError):
            codec.decode(data[:end])


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "malformed"),
        (b"\xc1", "malformed"),  # never-used msgpack byte
        (b"\x01\x02", "malformed"),  # trailing bytes
        (b"\xa2\xff\xfe", "malformed"),  # str that is not UTF-8
        (b"\xdd\xff\xff\xff\xff", "malformed"),  # array claiming 4 billion items
        (b"\xdf\xff\xff\xff\xff", "malformed"),  # map claiming 4 billion pairs
        (b"\xc6\xff\xff\xff\xff", "malformed"),  # bin claiming 4 GiB
        (b"\xd6\xff\x00\x00\x00\x01", "unsupported msgpack value Timestamp"),
        (pack(msgpack.ExtType(42, b"x")), "unknown ext type 42"),
        (pack([msgpack.ExtType(42, b"")]), "unknown ext type 42"),
        (pack(marker(2)), "outside the head of an array"),
        (pack([1, marker(2)]), "outside the head of an array"),
        (pack([msgpack.ExtType(2, b"x"), 1]), "markers are empty"),
        (pack(msgpack.ExtType(1, b"")), "big integer with no bytes"),
        (pack([marker(5)]), "type id"),
        (pack([marker(5), "1", 1, 2]), "type id"),
        (pack([marker(5), True, 1, 2]), "type id"),
        (pack([marker(6), 100]), "one value"),
        (pack([marker(3), [1]]), "cannot be hashed"),
    ],
)
def test_bad_bytes_raise_decode_error(data: bytes, match: str) -> None:
    """Malformed msgpack, unknown ext codes, misplaced markers and unhashable members are DecodeErrors."""
    with pytest.raises(DecodeError, match=match):
        make_codec().decode(data)


def test_unhashable_map_key_is_rejected() -> None:
    """A map whose key decodes to a list is a DecodeError, not a TypeError."""
    with pytest.raises(DecodeError, match="cannot be a dict key"):
        make_codec().decode(b"\x81\x91\x01\x02")  # {[1]: 2}


def test_too_deep_is_rejected_by_the_receiver() -> None:
    """Bytes nesting beyond max_depth are a DecodeError, however deep they go."""
    codec = make_codec(max_depth=5)
    with pytest.raises(DecodeError, match="max_depth 5"):
        codec.decode(b"\x91" * 6 + b"\x00")
    for depth in (DEFAULT_MAX_DEPTH + 1, 5_000, 100_000):
        with pytest.raises(DecodeError):
            make_codec().decode(b"\x91" * depth + b"\x00")


def test_oversized_input_is_rejected_before_parsing() -> None:
    """More than max_size bytes are refused without being parsed."""
    with pytest.raises(DecodeError, match="exceeds max_size 10"):
        make_codec(max_size=10).decode(b"\xc0" * 11)


def test_decode_requires_bytes() -> None:
    """Passing a str is a programming error, reported as TypeError."""
    with pytest.raises(TypeError):
        make_codec().decode("text")  # type: ignore[arg-type]


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    """Random bytes decode to some value or raise DecodeError, never anything else."""
    decode_or_decode_error(make_codec(), data)


@FUZZ
@given(mutated(plain_data.map(lambda value: make_codec().encode(value))))
def test_mutated_encodings_raise_only_decode_error(data: bytes) -> None:
    """Valid messages with flipped, cut, inserted or deleted bytes never raise anything but DecodeError."""
    decode_or_decode_error(make_codec(), data)


@FUZZ
@given(
    st.recursive(
        st.integers(-2, 200) | st.binary(max_size=3) | st.sampled_from([marker(c) for c in range(0, 8)]),
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.integers(0, 3), inner, max_size=3),
        max_leaves=20,
    ).map(pack)
)
def test_well_formed_msgpack_with_markers_raises_only_decode_error(data: bytes) -> None:
    """Valid msgpack built around the codec's own markers and type ids decodes or raises DecodeError."""
    decode_or_decode_error(make_codec(), data)


def test_ext_length_is_bounded_by_the_message() -> None:
    """A big integer may fill the message, but an ext claiming more than the message holds is refused."""
    codec = make_codec(max_size=64)
    data = b"\xc7" + struct.pack(">B", 50) + b"\x01" + b"\x7f" * 50
    assert codec.decode(data) == int.from_bytes(b"\x7f" * 50, "big")
    with pytest.raises(DecodeError):
        codec.decode(b"\xc8\xff\xff\x01" + b"\x00" * 10)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x91" * 5000 + b"\xc0", "nested too deep"),
        (b"\xc1", "starts no msgpack value"),
        (b"\x92\x01", "incomplete input"),
        (b"\x01\x02", "extra bytes"),
    ],
)
def test_every_malformed_msgpack_error_names_what_was_wrong(data: bytes, words: str) -> None:
    """msgpack's own errors, some of which have no message, become DecodeErrors that say what was wrong."""
    with pytest.raises(DecodeError, match=words) as caught:
        Codec().decode(data)
    assert_says_what_was_wrong(caught.value)
