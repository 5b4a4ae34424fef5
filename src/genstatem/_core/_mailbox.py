"""An actor's mailbox: its queue of received messages, and how its owner waits on it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from typing import Any

import anyio

_NO_ITEMS: Any = ()
"""An idle mailbox's items: empty and falsy; the deque (760 bytes) comes with the first message."""


class Mailbox:
    """An actor's queue of received messages, oldest first.

    ``items`` is falsy when empty; read it afresh each time (it is replaced
    by a deque when the first message arrives).
    """

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: deque[tuple[Any, Any]] = _NO_ITEMS

    def put(self, item: tuple[Any, Any]) -> None:
        """Append ``item`` and wake the owner if it is waiting."""
        items = self.items
        if items is _NO_ITEMS:
            items = self.items = deque()
        items.append(item)
        self._wake()

    def _wake(self) -> None:
        """Wake the owner if it waits (``wait``)."""
        raise NotImplementedError

    def wait(self) -> Awaitable[Any]:
        """Something to await until a message may have arrived (check ``items`` again after)."""
        raise NotImplementedError


class _AsyncioMailbox(Mailbox):
    __slots__ = ("_loop", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def wait(self) -> asyncio.Future[None]:
        waiter = self._waiter = self._loop.create_future()
        return waiter


class _EventMailbox(Mailbox):
    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        super().__init__()
        self._waiter: anyio.Event | None = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def wait(self) -> Awaitable[Any]:
        waiter = self._waiter = anyio.Event()
        return waiter.wait()
