"""The current ``ActorSystem``: set inside its ``async with`` block and its actors."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._process import Process
    from ._system import ActorSystem

current_system: ContextVar[ActorSystem | None] = ContextVar("genstatem_current_system", default=None)

current_process: ContextVar[Process | None] = ContextVar("genstatem_current_process", default=None)
"""The process whose task is running: set once in each actor's task, so a call to oneself is caught."""


def get_system() -> ActorSystem:
    """The system of the running code.

    Raises:
        RuntimeError: outside any ``ActorSystem``.
    """
    system = current_system.get()
    if system is None:
        raise RuntimeError("no ActorSystem is running here: use 'async with ActorSystem()'")
    return system
