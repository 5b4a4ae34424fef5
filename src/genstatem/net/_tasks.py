"""Tasks that outlive the call that starts them, on asyncio or trio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from ..lowlevel import running_on_asyncio


def spawn_system_task(function: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``function`` in a new task that belongs to no task group of the caller's.

    A transport outlives the call that starts it, and transports stop in
    any order, which a task group entered by ``start`` could not allow.
    """
    if running_on_asyncio():
        task = asyncio.get_running_loop().create_task(function())
        _system_tasks.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(_system_tasks.discard)
    else:
        import trio

        trio.lowlevel.spawn_system_task(function)


_system_tasks: set[asyncio.Task[None]] = set()
