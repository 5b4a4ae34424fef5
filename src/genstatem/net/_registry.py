"""The message types users allow across nodes, numbered once for every node."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._codec import Codec

T = TypeVar("T")

FIRST_USER_TYPE_ID = 1000
"""Type ids below this are genstatem's own; register yours from here up."""

_Hooks = tuple[Callable[[Any], Any], Callable[[Any], object]]


class TypeRegistry:
    """Attrs classes and custom types allowed on the wire, each with a type id every node agrees on."""

    def __init__(self) -> None:
        self._types: dict[int, tuple[type, _Hooks | None]] = {}

    def register(self, cls: type, type_id: int, *, reserved: bool = False) -> None:
        """Allow instances of the attrs class ``cls`` in messages between nodes.

        Args:
            cls: an attrs class; it travels as its fields, so they must be
                encodable too.
            type_id: a number from ``FIRST_USER_TYPE_ID`` (1000) up, the same
                on every node, never reused for another class.

            reserved: for genstatem's own layers only (raft...): allows ids below 1000.

        Raises:
            ValueError: the id is below 1000 or already taken by another class.
        """
        self._check(cls, type_id, reserved)
        Codec().register(cls, type_id)  # fails now, here, if cls is not an attrs class
        self._types[type_id] = (cls, None)

    def register_custom(
        self,
        cls: type[T],
        type_id: int,
        encode: Callable[[T], Any],
        decode: Callable[[Any], object],
        *,
        reserved: bool = False,
    ) -> None:
        """Allow ``cls`` in messages between nodes through a pair of hooks (``Codec.register_custom``).

        For a type whose fields are not the best form on the wire: ``encode``
        turns an instance into encodable data and ``decode`` rebuilds it,
        checking that data as it goes (it comes from the network); whatever
        ``decode`` raises becomes the receiver's ``DecodeError``.

        Args:
            cls: the exact type to send this way.
            type_id: as for ``register``.
            encode: returns encodable data standing for the value.
            decode: rebuilds the value from that data.
            reserved: as for ``register``.

        Raises:
            ValueError: the id is below 1000 or already taken by another class.
            TypeError: ``cls`` is not a class.
        """
        self._check(cls, type_id, reserved)
        Codec().register_custom(cls, type_id, encode, decode)  # fails now, here, if cls cannot be one
        self._types[type_id] = (cls, (encode, decode))

    def _check(self, cls: type, type_id: int, reserved: bool) -> None:
        if type_id < FIRST_USER_TYPE_ID and not reserved:
            raise ValueError(f"type_id must be >= {FIRST_USER_TYPE_ID} (lower ids are genstatem's), got {type_id}")
        holder = self._types.get(type_id)
        if holder is not None and holder[0] is not cls:
            raise ValueError(f"type_id {type_id} is already registered to {holder[0].__qualname__}")

    def install(self, codec: Codec) -> None:
        """Register every type in ``codec``."""
        for type_id, (cls, hooks) in self._types.items():
            if hooks is None:
                codec.register(cls, type_id)
            else:
                codec.register_custom(cls, type_id, *hooks)


default_registry = TypeRegistry()
register = default_registry.register
