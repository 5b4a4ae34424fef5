"""The wire codec: Python values to msgpack bytes and back, for an explicit set of types.

A message that crosses nodes is data, never code. The receiver rebuilds only
plain data and the classes registered with it, by number, so bytes from a peer
cannot name anything else; nothing here pickles. Everything the receiver would
refuse is refused at the sender instead, where the error can say which part of
the message is at fault.

On the wire, plain data is plain msgpack (``list`` is an array, ``dict`` a
map). The other kinds are arrays headed by an empty ext *marker*:
``[marker, *items]`` for tuple, set and frozenset, ``[marker, type_id,
*fields]`` for a registered attrs class, ``[marker, type_id, value]`` for a
custom type. Keeping the contents inline, rather than packing them into ext
payloads, makes a message one msgpack value, encoded and decoded in one pass
at any depth. Integers beyond 64 bits are an ext of their two's-complement
bytes.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from typing import Any, Final, TypeVar

import attrs
import msgpack  # type: ignore[import-untyped]

T = TypeVar("T")

DEFAULT_MAX_SIZE: Final = 1 << 20
"""Largest encoded message, in bytes, that a codec accepts by default (1 MiB)."""

DEFAULT_MAX_DEPTH: Final = 64
"""Deepest nesting of containers that a codec accepts by default."""

MAX_TYPE_ID: Final = 2**32 - 1
"""Largest type id a class can be registered under."""

# The deepest nesting allowed at all: the encoder and decoder recurse once per
# level, and must stay far from Python's recursion limit and msgpack's
# 1024-level parse stack.
_DEPTH_CEILING: Final = 256

# Ext type codes. BIGINT is a value on its own; the rest are markers, valid
# only as the first element of an array, and carry no data.
_EXT_BIGINT: Final = 1
_EXT_TUPLE: Final = 2
_EXT_SET: Final = 3
_EXT_FROZENSET: Final = 4
_EXT_RECORD: Final = 5
_EXT_CUSTOM: Final = 6

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1

_SCALARS: Final = frozenset({type(None), bool, int, float, str, bytes})
_NATIVE: Final = _SCALARS | {list, tuple, dict, set, frozenset}
# What the encoder's first attempt hands to msgpack a container at a time; the careful retry, none.
_PACKED_WHOLE: Final = _SCALARS
_ONE_BY_ONE: Final[frozenset[type]] = frozenset()

_WHOLE_FROM: Final = 4  # below this many items, checking that they can go whole costs more than it saves
_TUPLE_MARKER: Final = msgpack.ExtType(_EXT_TUPLE, b"")
# Every empty ext the decoder meets is one of these (a marker, or a malformed value it then refuses).
_EMPTY_EXTS: Final = {code: msgpack.ExtType(code, b"") for code in range(128)}

_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40


class EncodeError(TypeError):
    """A value cannot be sent: its type is not registered, or it breaks a limit.

    Raised at the sender, so that a bad message never reaches the wire.

    Attributes:
        path: where the value sits in the message, e.g. ``message[2]['x']``.
        value_type: the type of the value that could not be encoded.
        reason: why it could not be encoded.
    """

    def __init__(self, path: str, value_type: type, reason: str) -> None:
        super().__init__(f"cannot encode {_type_name(value_type)} at {path}: {reason}")
        self.path = path
        self.value_type = value_type
        self.reason = reason


class DecodeError(ValueError):
    """Bytes from a peer are not a message this codec accepts.

    Malformed msgpack, unknown ext codes or type ids, wrong field counts,
    nesting too deep and values a registered class rejects all end here, so a
    caller reading from the network handles one exception type.
    """


class _Unencodable(Exception):
    """Internal: unwinds from a bad value, collecting its path on the way out."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(reason)
        self.value_type = type(value)
        self.reason = reason
        self.segments: list[str] = []


@attrs.frozen
class _Record:
    """A registered attrs class: its ``init`` fields travel in order.

    ``positional``: the class can be rebuilt from them by position (it has no
    keyword-only field), which is quicker than by name.
    """

    cls: type
    type_id: int
    names: tuple[str, ...]
    aliases: tuple[str, ...]
    positional: bool


@attrs.frozen
class _Custom:
    """A type sent through its own hooks (refs and reply handles need context)."""

    cls: type
    type_id: int
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


class _RawMap:
    """A msgpack map as parsed: its pairs, before any key has to be hashable."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        self.pairs = pairs


class Codec:
    """Encodes messages to msgpack bytes and decodes them, for registered types only.

    Plain data needs no registration: ``None``, ``bool``, ``int`` of any size,
    ``float``, ``str``, ``bytes``, ``list``, ``tuple``, ``dict`` (keys of any
    encodable type), ``set`` and ``frozenset``. Types are matched exactly, so
    a subclass (an ``IntEnum``, a ``bytearray``) is refused rather than
    silently arriving as its base. Both ends of a connection must register
    the same classes under the same ids.

    Args:
        max_size: the largest encoded message, in bytes; the same bound
            applies to what ``encode`` produces and what ``decode`` accepts.
        max_depth: how many containers may nest inside each other (a flat
            list is depth 1); bounds the work and stack a message can cost.
    """

    __slots__ = ("_by_class", "_by_id", "_max_depth", "_max_size")

    def __init__(self, *, max_size: int = DEFAULT_MAX_SIZE, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be positive, not {max_size}")
        if not 1 <= max_depth <= _DEPTH_CEILING:
            raise ValueError(f"max_depth must be between 1 and {_DEPTH_CEILING}, not {max_depth}")
        self._max_size = max_size
        self._max_depth = max_depth
        self._by_class: dict[type, _Record | _Custom] = {}
        self._by_id: dict[int, _Record | _Custom] = {}

    @property
    def max_size(self) -> int:
        """The largest encoded message, in bytes."""
        return self._max_size

    @property
    def max_depth(self) -> int:
        """How many containers may nest inside each other."""
        return self._max_depth

    def register(self, cls: type, type_id: int) -> None:
        """Allow instances of the attrs class ``cls`` on the wire, under ``type_id``.

        An instance travels as its ``init`` fields, in declaration order, and
        is rebuilt by calling ``cls`` with them, so validators and converters
        run on the receiver too. Fields with ``init=False`` are not sent; the
        class recomputes them.

        Args:
            cls: an attrs class.
            type_id: its number on the wire, from 0 to ``MAX_TYPE_ID``; unique
                among this codec's registrations.

        Raises:
            TypeError: ``cls`` is not an attrs class.
            ValueError: ``cls`` or ``type_id`` is already registered, or the id
                is out of range.
        """
        if not (isinstance(cls, type) and attrs.has(cls)):
            raise TypeError(f"{cls!r} is not an attrs class; use register_custom for other types")
        fields = [field for field in attrs.fields(cls) if field.init]
        names = tuple(field.name for field in fields)
        aliases = tuple(field.alias or field.name.lstrip("_") for field in fields)
        positional = not any(field.kw_only for field in fields)
        self._add(_Record(cls, type_id, names, aliases, positional))

    def register_custom(
        self,
        cls: type[T],
        type_id: int,
        encode: Callable[[T], Any],
        decode: Callable[[Any], object],
    ) -> None:
        """Allow ``cls`` on the wire through a pair of hooks.

        For values that only make sense with context, such as actor refs and
        reply handles: ``encode`` turns one into encodable data (which may
        itself hold registered types) and ``decode`` rebuilds it on the
        receiver. An exception from ``encode`` becomes an ``EncodeError`` and
        one from ``decode`` a ``DecodeError``.

        Args:
            cls: the exact type to send this way.
            type_id: its number on the wire, from 0 to ``MAX_TYPE_ID``; unique
                among this codec's registrations.
            encode: returns encodable data standing for the value.
            decode: rebuilds the value from that data; it may return another
                type, such as a local ref for a ref that has come home.

        Raises:
            TypeError: ``cls`` is not a class.
            ValueError: ``cls`` or ``type_id`` is already registered, the id is
                out of range, or ``cls`` is plain data.
        """
        if not isinstance(cls, type):
            raise TypeError(f"{cls!r} is not a class")
        self._add(_Custom(cls=cls, type_id=type_id, encode=encode, decode=decode))

    def _add(self, entry: _Record | _Custom) -> None:
        cls, type_id = entry.cls, entry.type_id
        if type(type_id) is not int:
            raise TypeError(f"type_id must be an int, not {type(type_id).__name__}")
        if not 0 <= type_id <= MAX_TYPE_ID:
            raise ValueError(f"type_id must be between 0 and {MAX_TYPE_ID}, not {type_id}")
        if cls in _NATIVE:
            raise ValueError(f"{cls.__name__} is plain data and is encoded without registration")
        if cls in self._by_class:
            raise ValueError(f"{_type_name(cls)} is already registered as type id {self._by_class[cls].type_id}")
        if type_id in self._by_id:
            raise ValueError(f"type id {type_id} is already registered to {_type_name(self._by_id[type_id].cls)}")
        self._by_class[cls] = entry
        self._by_id[type_id] = entry

    # -- encoding ----------------------------------------------------------

    def encode(self, value: object) -> bytes:
        """Encode ``value`` to bytes that ``decode`` on a like-minded codec rebuilds.

        Args:
            value: plain data and registered types, nested up to ``max_depth``.

        Returns:
            The msgpack encoding, at most ``max_size`` bytes.

        Raises:
            EncodeError: some part of ``value`` has a type this codec does not
                know, a ``str`` is not valid Unicode, a custom ``encode`` hook
                failed, or a limit is exceeded; the error names the path.
        """
        packer = msgpack.Packer(autoreset=False, use_bin_type=True)
        try:
            try:
                self._pack(packer, value, 0, _PACKED_WHOLE)
            except (UnicodeEncodeError, OverflowError):
                # A container handed to msgpack whole held a lone surrogate or a big int, and msgpack
                # dropped what it had packed: pack again value by value, which encodes the big int or
                # says where the surrogate is.
                packer = msgpack.Packer(autoreset=False, use_bin_type=True)
                self._pack(packer, value, 0, _ONE_BY_ONE)
        except _Unencodable as failure:
            path = "message" + "".join(reversed(failure.segments))
            raise EncodeError(path, failure.value_type, failure.reason) from failure.__cause__
        data: bytes = packer.bytes()
        if len(data) > self._max_size:
            reason = f"it encodes to {len(data)} bytes, over max_size {self._max_size}"
            raise EncodeError("message", type(value), reason)
        return data

    def _pack(self, packer: Any, value: Any, depth: int, whole: frozenset[type]) -> None:
        # One frame per level of nesting, and scalars first: they are most of
        # any message. Whole on purpose: it is the encoder's hot path. Items
        # whose type is in ``whole`` go to msgpack without a frame of their
        # own, and a list or tuple of nothing else goes in one call; msgpack
        # checks no surrogates and no int ranges, hence the careful retry in
        # ``encode``.
        kind = type(value)
        if kind is str:
            try:
                packer.pack(value)
            except UnicodeEncodeError as exc:
                raise _Unencodable(value, "it holds a lone surrogate, which UTF-8 cannot carry") from exc
            return
        if kind is int:
            if _INT_MIN <= value <= _INT_MAX:
                packer.pack(value)
            else:
                packer.pack_ext_type(_EXT_BIGINT, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))
            return
        if value is None or kind is bool or kind is float or kind is bytes:
            packer.pack(value)
            return
        if depth >= self._max_depth:
            raise _Unencodable(value, f"it is nested deeper than max_depth {self._max_depth}")
        # The child being packed is where(label): when it fails, that is the
        # failure's next path segment. One handler for every kind of container,
        # and no extra frame per child (a helper call per child costs ~30%).
        where: Callable[[Any], str] | None = None
        label: Any = None
        try:
            if kind is list or kind is tuple:
                if len(value) >= _WHOLE_FROM and whole.issuperset(map(type, value)):
                    packer.pack(value if kind is list else [_TUPLE_MARKER, *value])
                    return
                if kind is list:
                    packer.pack_array_header(len(value))
                else:
                    packer.pack_array_header(len(value) + 1)
                    packer.pack_ext_type(_EXT_TUPLE, b"")
                where = _at_index
                for label, item in enumerate(value):  # noqa: B007 (read by the handler below)
                    if type(item) in whole:
                        packer.pack(item)
                    else:
                        self._pack(packer, item, depth + 1, whole)
                return
            if kind is dict:
                packer.pack_map_header(len(value))
                for label, item in value.items():
                    where = _at_key
                    self._pack(packer, label, depth + 1, whole)
                    where = _at_value
                    self._pack(packer, item, depth + 1, whole)
                return
            if kind is set or kind is frozenset:
                packer.pack_array_header(len(value) + 1)
                packer.pack_ext_type(_EXT_SET if kind is set else _EXT_FROZENSET, b"")
                where = _at_element
                for label in value:
                    self._pack(packer, label, depth + 1, whole)
                return
            entry = self._by_class.get(kind)
            if entry is None:
                raise _Unencodable(value, "its type is not registered with the codec")
            if isinstance(entry, _Record):
                packer.pack_array_header(len(entry.names) + 2)
                packer.pack_ext_type(_EXT_RECORD, b"")
                packer.pack(entry.type_id)
                where = _at_field
                for label in entry.names:
                    item = getattr(value, label)
                    if type(item) in whole:
                        packer.pack(item)
                    else:
                        self._pack(packer, item, depth + 1, whole)
                return
            try:
                data = entry.encode(value)
            except Exception as exc:
                raise _Unencodable(value, f"its encode hook raised {exc!r}") from exc
            packer.pack_array_header(3)
            packer.pack_ext_type(_EXT_CUSTOM, b"")
            packer.pack(entry.type_id)
            where, label = _at_encoded, kind
            self._pack(packer, data, depth + 1, whole)
        except _Unencodable as failure:
            if where is not None:
                failure.segments.append(where(label))
            raise

    # -- decoding ----------------------------------------------------------

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """Rebuild the value that ``encode`` turned into ``data``.

        Safe on bytes from an untrusted peer: it builds only plain data and
        registered types, and its memory and work are bounded by ``max_size``
        and ``max_depth``.

        Args:
            data: one encoded message.

        Returns:
            The decoded value.

        Raises:
            DecodeError: ``data`` is not a message this codec accepts; no
                other exception comes from the bytes' content.
            TypeError: ``data`` is not bytes-like.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"decode takes bytes, not {type(data).__name__}")
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if size > self._max_size:
            raise DecodeError(f"message of {size} bytes exceeds max_size {self._max_size}")
        try:
            raw = msgpack.unpackb(
                data,
                raw=False,
                use_list=True,
                strict_map_key=False,
                object_pairs_hook=_RawMap,
                max_str_len=size,
                max_bin_len=size,
                max_array_len=size,
                max_map_len=size // 2,
                max_ext_len=size,
                ext_hook=_ext,
            )
        except Exception as exc:
            # Untrusted bytes: whatever msgpack objects to (ValueError,
            # TypeError, its own exceptions) means the same thing here.
            raise DecodeError(f"malformed msgpack: {_msgpack_failure(exc)}") from exc
        return self._unpack(raw, 0)

    def _unpack(self, raw: Any, depth: int) -> Any:
        kind = type(raw)
        if kind in _SCALARS:
            return raw
        if kind is list:
            if depth >= self._max_depth:
                raise DecodeError(f"message nests deeper than max_depth {self._max_depth}")
            if raw and type(raw[0]) is msgpack.ExtType and raw[0].code != _EXT_BIGINT:
                return self._unpack_tagged(raw, depth)
            if _SCALARS.issuperset(map(type, raw)):
                return raw  # msgpack's own new list, plain already
            return [item if type(item) in _SCALARS else self._unpack(item, depth + 1) for item in raw]
        if kind is _RawMap:
            if depth >= self._max_depth:
                raise DecodeError(f"message nests deeper than max_depth {self._max_depth}")
            result: dict[Any, Any] = {}
            for raw_key, raw_item in raw.pairs:
                key = self._unpack(raw_key, depth + 1)
                item = self._unpack(raw_item, depth + 1)
                try:
                    result[key] = item
                except Exception as exc:
                    raise DecodeError(f"map key {_describe(key)} cannot be a dict key: {exc!r}") from exc
            return result
        if kind is msgpack.ExtType:
            if raw.code == _EXT_BIGINT:
                if not raw.data:
                    raise DecodeError("big integer with no bytes")
                return int.from_bytes(raw.data, "big", signed=True)
            if _EXT_TUPLE <= raw.code <= _EXT_CUSTOM:
                raise DecodeError(f"ext marker {raw.code} outside the head of an array")
            raise DecodeError(f"unknown ext type {raw.code}")
        raise DecodeError(f"unsupported msgpack value {kind.__name__}")

    def _unpack_tagged(self, raw: list[Any], depth: int) -> Any:
        marker = raw[0]
        code = marker.code
        if marker.data:
            raise DecodeError(f"ext marker {code} carries {len(marker.data)} bytes; markers are empty")
        # Items decoded inline, not in a helper (a frame less per level); plain ones taken in one check.
        if code != _EXT_RECORD and code in (_EXT_TUPLE, _EXT_SET, _EXT_FROZENSET):  # records first: most messages
            items = raw[1:]
            if not _SCALARS.issuperset(map(type, items)):
                items = [item if type(item) in _SCALARS else self._unpack(item, depth + 1) for item in items]
            if code == _EXT_TUPLE:
                return tuple(items)
            try:
                return set(items) if code == _EXT_SET else frozenset(items)
            except Exception as exc:
                raise DecodeError(f"set element cannot be hashed: {exc!r}") from exc
        if code != _EXT_RECORD and code != _EXT_CUSTOM:
            raise DecodeError(f"unknown ext type {code}")
        if len(raw) < 2 or type(raw[1]) is not int:
            raise DecodeError("registered type without an integer type id")
        type_id = raw[1]
        entry = self._by_id.get(type_id)
        if entry is None:
            raise DecodeError(f"unknown type id {type_id}")
        if code == _EXT_RECORD:
            if not isinstance(entry, _Record):
                raise DecodeError(f"type id {type_id} ({_type_name(entry.cls)}) is a custom type, sent as a record")
            if len(raw) - 2 != len(entry.aliases):
                raise DecodeError(f"{_type_name(entry.cls)} takes {len(entry.aliases)} fields, got {len(raw) - 2}")
            fields = raw[2:]
            if not _SCALARS.issuperset(map(type, fields)):
                for at, item in enumerate(fields):  # in place, in the slice: no comprehension's frame
                    fields[at] = item if type(item) in _SCALARS else self._unpack(item, depth + 1)
            try:
                if entry.positional:
                    return entry.cls(*fields)
                return entry.cls(**dict(zip(entry.aliases, fields, strict=True)))
            except Exception as exc:
                raise DecodeError(f"{_type_name(entry.cls)} rejected its fields: {exc!r}") from exc
        name = _type_name(entry.cls)
        if not isinstance(entry, _Custom):
            raise DecodeError(f"type id {type_id} ({name}) is a record, sent as a custom type")
        if len(raw) != 3:
            raise DecodeError(f"custom type {name} carries one value, got {len(raw) - 2}")
        data = self._unpack(raw[2], depth + 1)
        try:
            return entry.decode(data)
        except Exception as exc:
            raise DecodeError(f"decode hook of {name} raised {exc!r}") from exc


def _ext(code: int, data: bytes) -> msgpack.ExtType:
    """msgpack's ``ext_hook``: an empty ext (a marker) is a shared value, not a new one each time."""
    marker = None if data else _EMPTY_EXTS.get(code)
    return marker if marker is not None else msgpack.ExtType(code, data)


def _type_name(cls: type) -> str:
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _at_index(index: int) -> str:
    return f"[{index}]"


def _at_key(key: object) -> str:
    return f"<key {_describe(key)}>"


def _at_value(key: object) -> str:
    return f"[{_describe(key)}]"


def _at_element(item: object) -> str:
    return f"<element {_describe(item)}>"


def _at_field(name: str) -> str:
    return f".{name}"


def _at_encoded(kind: type) -> str:
    return f"<encoded {kind.__qualname__}>"


def _describe(value: object) -> str:
    """A short repr for error paths; never raises, since it runs while reporting."""
    try:
        return _short.repr(value)
    except Exception:
        return f"<{_type_name(type(value))}>"


def _msgpack_failure(exc: Exception) -> str:
    """What msgpack objected to, in words: some of its exceptions carry no message at all."""
    if isinstance(exc, msgpack.StackError):
        return "nested too deep for the msgpack decoder"
    if isinstance(exc, msgpack.FormatError):
        return "a byte that starts no msgpack value"
    if isinstance(exc, msgpack.ExtraData):
        return "extra bytes after the message"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
