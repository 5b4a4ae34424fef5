"""The type registry: classes every node's codec allows, by id, as records or through hooks."""

from __future__ import annotations

import attrs
import pytest

from genstatem.net import FIRST_USER_TYPE_ID, Codec, DecodeError, TypeRegistry


@attrs.frozen
class Point:
    x: int
    y: int


class Celsius:
    """Not an attrs class: it travels through hooks."""

    def __init__(self, degrees: float) -> None:
        self.degrees = degrees

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Celsius) and other.degrees == self.degrees

    def __hash__(self) -> int:
        return hash(self.degrees)


def from_wire(degrees: object) -> Celsius:
    if type(degrees) is not float:
        raise ValueError(f"degrees are a float, not {degrees!r}")
    return Celsius(degrees)


def test_installed_codecs_send_records_and_custom_types_alike() -> None:
    """What a registry holds, records and hooked types, every codec it is installed in encodes and decodes."""
    registry = TypeRegistry()
    registry.register(Point, FIRST_USER_TYPE_ID)
    registry.register_custom(Celsius, FIRST_USER_TYPE_ID + 1, lambda c: c.degrees, from_wire)
    sender, receiver = Codec(), Codec()
    registry.install(sender)
    registry.install(receiver)
    value = [Point(1, 2), Celsius(21.5)]
    assert receiver.decode(sender.encode(value)) == value


def test_a_custom_decode_hook_refusing_its_data_is_a_decode_error() -> None:
    """The hook checks data from a peer: what it raises reaches the receiver as a DecodeError."""
    registry = TypeRegistry()
    registry.register_custom(Celsius, FIRST_USER_TYPE_ID, lambda c: c.degrees, from_wire)
    codec = Codec()
    registry.install(codec)
    with pytest.raises(DecodeError, match="degrees are a float"):
        codec.decode(codec.encode(Celsius(3)))  # an int, not a float


def test_custom_types_follow_the_id_rules_of_records() -> None:
    """Ids below FIRST_USER_TYPE_ID are reserved, and an id taken by another class is refused."""
    registry = TypeRegistry()
    with pytest.raises(ValueError, match="must be >= 1000"):
        registry.register_custom(Celsius, 5, lambda c: c.degrees, from_wire)
    registry.register_custom(Celsius, 5, lambda c: c.degrees, from_wire, reserved=True)
    with pytest.raises(ValueError, match="already registered to Celsius"):
        registry.register(Point, 5, reserved=True)
    with pytest.raises(TypeError, match="is not a class"):
        registry.register_custom(Celsius(1.0), FIRST_USER_TYPE_ID, lambda c: c, from_wire)  # type: ignore[arg-type]
