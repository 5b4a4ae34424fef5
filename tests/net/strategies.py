"""Hypothesis strategies shared by the wire tests."""

from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def mutated(draw: st.DrawFn, encoded: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding with a few bytes flipped, cut off, inserted or deleted."""
    data = bytearray(draw(encoded))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        op = draw(st.sampled_from(["flip", "truncate", "extend", "insert", "delete"]))
        at = draw(st.integers(min_value=0, max_value=len(data)))
        if op == "flip" and data:
            index = min(at, len(data) - 1)
            data[index] ^= draw(st.integers(min_value=1, max_value=255))
        elif op == "truncate":
            del data[at:]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=8))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(min_value=1, max_value=8))]
    return bytes(data)
