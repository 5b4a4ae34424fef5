"""The current ``ActorSystem``: set inside its ``async with`` block and its actors."""

from __future__ import annotations

import asyncio
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


def current_task() -> object:
    """The running task (asyncio's or trio's): how a process knows a call comes from itself.

    Cheaper per actor than a context variable set in each actor's task.
    """
    try:
        return asyncio.current_task()
    except RuntimeError:  # no asyncio loop here: anyio's other backend, trio
        import trio.lowlevel

        return trio.lowlevel.current_task()
