"""The message types users allow across nodes, numbered once for every node."""

from __future__ import annotations

from ._codec import Codec

FIRST_USER_TYPE_ID = 1000
"""Type ids below this are genstatem's own; register yours from here up."""


class TypeRegistry:
    """Attrs classes allowed on the wire, each with a type id every node agrees on."""

    def __init__(self) -> None:
        self._types: dict[int, type] = {}

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
        if type_id < FIRST_USER_TYPE_ID and not reserved:
            raise ValueError(f"type_id must be >= {FIRST_USER_TYPE_ID} (lower ids are genstatem's), got {type_id}")
        holder = self._types.get(type_id)
        if holder is not None and holder is not cls:
            raise ValueError(f"type_id {type_id} is already registered to {holder.__qualname__}")
        Codec().register(cls, type_id)  # fails now, here, if cls is not an attrs class
        self._types[type_id] = cls

    def install(self, codec: Codec) -> None:
        """Register every type in ``codec``."""
        for type_id, cls in self._types.items():
            codec.register(cls, type_id)


default_registry = TypeRegistry()
register = default_registry.register
