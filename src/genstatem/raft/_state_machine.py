"""The replicated state machine: the user's code that Raft keeps in step on every node.

Raft orders commands; what they mean is up to the ``StateMachine`` it is given.
Every node applies the same committed commands in the same order, so ``apply``
must be deterministic: no clocks, no randomness, no iteration over unordered
sets, or the replicas drift apart. Two machines ship with genstatem:
``ListMachine``, which only records commands (for testing the protocol), and
``KVMachine``, a key-value store with its own command encoders.

Commands, queries and snapshots are bytes, because that is what crosses the
network and what a log keeps; the machines here use msgpack (never pickle), so
bytes from a peer can never name code to run.
"""

from __future__ import annotations

from typing import Any, Final, Protocol, runtime_checkable

import msgpack  # type: ignore[import-untyped]

Key = str | bytes
"""A ``KVMachine`` key: ``"a"`` and ``b"a"`` are different keys."""

Value = str | bytes
"""A ``KVMachine`` value."""


@runtime_checkable
class StateMachine(Protocol):
    """What Raft needs from the code it replicates.

    An exception raised by ``apply`` or ``query`` becomes an error reply to the
    client, and the node goes on; so raise (``ValueError`` for a malformed
    command) rather than half-apply a command, and raise the same way on every
    node, since every node applies it.
    """

    def apply(self, command: bytes) -> Any:
        """Apply one committed command.

        Args:
            command: the bytes the client proposed.

        Returns:
            The result sent back to the proposer; plain data that msgpack can
            encode (``None``, bools, numbers, str, bytes, lists, dicts).
        """
        ...

    def query(self, query: bytes) -> Any:
        """Answer a read without changing state, for linearizable reads that skip the log.

        Args:
            query: the bytes the client sent.

        Returns:
            The answer, plain data as for ``apply``.
        """
        ...

    def snapshot(self) -> bytes:
        """Return the whole state as bytes, so the log before it can be dropped.

        Equal states must give equal bytes, so that snapshots of different
        nodes can be compared.
        """
        ...

    def restore(self, snapshot: bytes) -> None:
        """Replace the whole state with one that ``snapshot`` returned, here or on another node."""
        ...


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def _unpack(data: bytes, what: str) -> Any:
    """Decode msgpack from a peer or a client, turning every way it can fail into ``ValueError``."""
    if not isinstance(data, bytes):
        raise ValueError(f"{what} must be bytes, got {type(data).__name__}")
    try:
        return msgpack.unpackb(data, raw=False)
    except Exception as error:  # msgpack raises several types (ExtraData, FormatError, ...) for bad input
        raise ValueError(f"{what} is not valid msgpack: {error}") from error


class ListMachine:
    """A state machine that keeps every command it applies, for debugging and testing the protocol.

    Commands are any bytes. Queries: ``b""`` returns the number of entries,
    ``b"all"`` the list of them; anything else raises ``ValueError``.

    Attributes:
        entries: the commands applied so far, in order.
    """

    def __init__(self) -> None:
        self.entries: list[bytes] = []

    def __repr__(self) -> str:
        return f"ListMachine(<{len(self.entries)} entries>)"

    def apply(self, command: bytes) -> int:
        """Record ``command``.

        Returns:
            Its 1-based position in ``entries``.

        Raises:
            ValueError: if ``command`` is not bytes.
        """
        if not isinstance(command, bytes):
            raise ValueError(f"ListMachine command must be bytes, got {type(command).__name__}")
        self.entries.append(command)
        return len(self.entries)

    def query(self, query: bytes) -> int | list[bytes]:
        """Answer ``b""`` with the number of entries and ``b"all"`` with a copy of them.

        Raises:
            ValueError: for any other query.
        """
        if query == b"":
            return len(self.entries)
        if query == b"all":
            return list(self.entries)
        raise ValueError(f"unknown ListMachine query {query!r}: use b'' (count) or b'all' (entries)")

    def snapshot(self) -> bytes:
        """Return the entries as a msgpack array."""
        return _pack(self.entries)

    def restore(self, snapshot: bytes) -> None:
        """Replace the entries with those of ``snapshot``.

        Raises:
            ValueError: if ``snapshot`` is not a msgpack array of bytes; the
                machine is left as it was.
        """
        entries = _unpack(snapshot, "ListMachine snapshot")
        if not isinstance(entries, list) or not all(isinstance(entry, bytes) for entry in entries):
            raise ValueError("ListMachine snapshot must be a msgpack array of bytes")
        self.entries = entries


_KV_TYPES: Final = (str, bytes)  # a tuple: isinstance takes it faster than the union ``str | bytes``


def _check_key(key: Any) -> None:
    if not isinstance(key, _KV_TYPES):
        raise TypeError(f"KVMachine key must be str or bytes, got {type(key).__name__}")


def _check_value(value: Any, what: str = "value") -> None:
    if not isinstance(value, _KV_TYPES):
        raise TypeError(f"KVMachine {what} must be str or bytes, got {type(value).__name__}")


def _is_kv(value: Any) -> bool:
    return isinstance(value, _KV_TYPES)


def _sort_key(key: Key) -> tuple[bool, Key]:
    # str and bytes do not compare, so str keys sort first, then bytes keys.
    return isinstance(key, bytes), key


class KVMachine:
    """A key-value store whose keys and values are ``str`` or ``bytes``.

    Build commands with the static encoders, so a client never hand-crafts bytes:

    - ``apply(KVMachine.put(k, v))`` sets ``k`` and returns ``"ok"``;
    - ``apply(KVMachine.get(k))`` returns the value, or ``None`` if ``k`` is
      absent (a read through the log);
    - ``apply(KVMachine.delete(k))`` removes ``k`` and returns ``"ok"``, whether
      or not it was there, so that a retried delete answers like the first;
    - ``apply(KVMachine.cas(k, expected, new))`` sets ``new`` and returns
      ``True`` if the value is ``expected`` (``None`` meaning absent), else
      changes nothing and returns ``False``;
    - ``query(KVMachine.get(k))`` reads without going through the log.

    These are the inputs and outputs of the linearizability checker's ``KVModel``, one key
    at a time (``decode`` gives the operation), so histories of a ``KVMachine``
    cluster can be checked for linearizability.

    Attributes:
        data: the current contents.
    """

    def __init__(self) -> None:
        self.data: dict[Key, Value] = {}

    def __repr__(self) -> str:
        return f"KVMachine(<{len(self.data)} keys>)"

    @staticmethod
    def put(key: Key, value: Value) -> bytes:
        """Encode a command that sets ``key`` to ``value``.

        Raises:
            TypeError: if the key or value is not ``str`` or ``bytes``.
        """
        _check_key(key)
        _check_value(value)
        return _pack(["put", key, value])

    @staticmethod
    def get(key: Key) -> bytes:
        """Encode a command (or query) that reads ``key``.

        Raises:
            TypeError: if the key is not ``str`` or ``bytes``.
        """
        _check_key(key)
        return _pack(["get", key])

    @staticmethod
    def delete(key: Key) -> bytes:
        """Encode a command that removes ``key``.

        Raises:
            TypeError: if the key is not ``str`` or ``bytes``.
        """
        _check_key(key)
        return _pack(["delete", key])

    @staticmethod
    def cas(key: Key, expected: Value | None, new: Value) -> bytes:
        """Encode a compare-and-set: set ``key`` to ``new`` only if its value is ``expected``.

        Args:
            key: the key.
            expected: the value it must have, or ``None`` for "absent".
            new: the value to set.

        Raises:
            TypeError: if the key, ``expected`` (other than ``None``) or ``new``
                is not ``str`` or ``bytes``.
        """
        _check_key(key)
        if expected is not None:
            _check_value(expected, "expected value")
        _check_value(new, "new value")
        return _pack(["cas", key, expected, new])

    @staticmethod
    def decode(command: bytes) -> tuple[Any, ...]:
        """Decode a command built by the encoders, checking its shape.

        Returns:
            ``("put", key, value)``, ``("get", key)``, ``("delete", key)`` or
            ``("cas", key, expected, new)``.

        Raises:
            ValueError: if ``command`` is not one of those, naming what is wrong.
        """
        decoded = _unpack(command, "KVMachine command")
        match decoded:
            case ["put", key, value] if _is_kv(key) and _is_kv(value):
                return ("put", key, value)
            case ["get", key] if _is_kv(key):
                return ("get", key)
            case ["delete", key] if _is_kv(key):
                return ("delete", key)
            case ["cas", key, expected, new] if _is_kv(key) and (expected is None or _is_kv(expected)) and _is_kv(new):
                return ("cas", key, expected, new)
        raise ValueError(
            f"malformed KVMachine command {decoded!r}: expected one built by KVMachine.put, get, delete or cas"
        )

    def apply(self, command: bytes) -> Any:
        """Apply a command built by ``put``, ``get``, ``delete`` or ``cas`` (see the class docstring).

        Raises:
            ValueError: if the command is malformed; nothing changes.
        """
        operation = self.decode(command)
        verb, key = operation[0], operation[1]  # decode checked the operation's shape: one test per verb is enough
        if verb == "put":
            self.data[key] = operation[2]
            return "ok"
        if verb == "get":
            return self.data.get(key)
        if verb == "delete":
            self.data.pop(key, None)
            return "ok"
        if verb == "cas":
            if self.data.get(key) != operation[2]:
                return False
            self.data[key] = operation[3]
            return True
        raise AssertionError("unreachable: decode returns only the four operations")  # pragma: no cover

    def query(self, query: bytes) -> Value | None:
        """Read a key without changing anything: ``query(KVMachine.get(k))``.

        Returns:
            The value, or ``None`` if the key is absent.

        Raises:
            ValueError: if ``query`` is not a ``get``.
        """
        decoded = self.decode(query)
        if decoded[0] != "get":
            raise ValueError(f"KVMachine.query takes only KVMachine.get(key), got a {decoded[0]!r} command")
        return self.data.get(decoded[1])

    def snapshot(self) -> bytes:
        """Return the contents as a msgpack map with sorted keys, so equal stores give equal bytes."""
        return _pack({key: self.data[key] for key in sorted(self.data, key=_sort_key)})

    def restore(self, snapshot: bytes) -> None:
        """Replace the contents with those of ``snapshot``.

        Raises:
            ValueError: if ``snapshot`` is not a msgpack map of ``str``/``bytes``
                to ``str``/``bytes``; the store is left as it was.
        """
        data = _unpack(snapshot, "KVMachine snapshot")
        if not isinstance(data, dict) or not all(_is_kv(key) and _is_kv(value) for key, value in data.items()):
            raise ValueError("KVMachine snapshot must be a msgpack map of str/bytes keys to str/bytes values")
        self.data = data
