"""Entry: a frozen, checked value whose size counts toward batching limits."""

from __future__ import annotations

import attrs
import pytest

from genstatem.raft._log import ENTRY_OVERHEAD, Entry


def test_defaults() -> None:
    """A bare entry is a sessionless command with no config."""
    entry = Entry(1, 1, b"x")
    assert (entry.kind, entry.client, entry.seq, entry.config) == ("command", None, 0, ())


def test_size_counts_command_and_overhead() -> None:
    """size() is len(command) + 72 for a sessionless command, so even an empty entry counts."""
    assert Entry(1, 1, b"abc").size() == 3 + ENTRY_OVERHEAD == 75
    assert Entry(2, 1, b"", kind="noop").size() == ENTRY_OVERHEAD


def test_size_once_asked_leaves_equality_and_repr_alone() -> None:
    """An entry whose size() was asked is equal to, hashes as and prints as one whose size was not."""
    asked, fresh = Entry(1, 2, b"xyz", client="c", seq=3), Entry(1, 2, b"xyz", client="c", seq=3)
    assert asked.size() == asked.size() == 3 + ENTRY_OVERHEAD + 1 + 5
    assert asked == fresh
    assert hash(asked) == hash(fresh)
    assert repr(asked) == repr(fresh)
    assert "size" not in repr(asked)


def test_frozen_and_hashable() -> None:
    """An entry cannot be changed after it is built, and equal entries hash equal."""
    entry = Entry(1, 2, b"x", client="c", seq=3)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        entry.term = 3  # type: ignore[misc]
    assert hash(entry) == hash(Entry(1, 2, b"x", client="c", seq=3))


def test_config_becomes_a_tuple() -> None:
    """A member list given as a list (as a codec may deliver it) is kept as a tuple."""
    entry = Entry(3, 1, b"", kind="config", config=["a", "b"])
    assert entry.config == ("a", "b")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"index": 0, "term": 1, "command": b""}, "index"),
        ({"index": True, "term": 1, "command": b""}, "index"),
        ({"index": 1, "term": -1, "command": b""}, "term"),
        ({"index": 1, "term": 1, "command": "text"}, "command"),
        ({"index": 1, "term": 1, "command": b"", "kind": "other"}, "kind"),
    ],
)
def test_bad_fields_refused(kwargs: dict[str, object], message: str) -> None:
    """An entry with a bad index, term, command or kind raises ValueError naming the field."""
    with pytest.raises(ValueError, match=message):
        Entry(**kwargs)  # type: ignore[arg-type]
