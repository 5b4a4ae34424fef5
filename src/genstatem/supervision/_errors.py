"""The errors the supervisor API raises in its callers."""

from __future__ import annotations

from typing import Any

from .._core import ActorError


class NoSuchChild(ActorError, LookupError):
    """The supervisor has no child with that id (or, for a ``DynamicSupervisor``, that ref).

    Attributes:
        child: the id or ref asked for.
    """

    def __init__(self, child: Any) -> None:
        super().__init__(f"no such child: {child!r}")
        self.child = child


class ChildRunning(ActorError):
    """The operation needs a stopped child, and this one is running (or being restarted)."""


class MaxChildren(ActorError):
    """The ``DynamicSupervisor`` already runs ``max_children`` children."""
