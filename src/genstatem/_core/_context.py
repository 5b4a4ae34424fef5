"""The current ``ActorSystem``: set inside its ``async with`` block and its actors."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._system import ActorSystem

current_system: ContextVar[ActorSystem | None] = ContextVar("genstatem_current_system", default=None)


def get_system() -> ActorSystem:
    """The system of the running code.

    Raises:
        RuntimeError: outside any ``ActorSystem``.
    """
    system = current_system.get()
    if system is None:
        raise RuntimeError("no ActorSystem is running here: use 'async with ActorSystem()'")
    return system
