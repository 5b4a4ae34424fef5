"""An actor's mailbox: its queue of received messages, and how its owner waits on it.

A mailbox is unbounded unless its actor was started with a
``mailbox_limit``. The limit applies to what other actors send, through
``post`` (casts and sends) and ``offer`` (calls); the runtime's own notices
(``Exit``, ``Down``, system messages, the actor's timers) always go in,
through ``put``: each is bounded by the links, monitors and timers the
actor has, and dropping one would break a promise (exactly one ``Down``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from ._log import get_logger

log = get_logger("genstatem")

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
        """Append ``item`` and wake the owner if it is waiting; the limit does not apply."""
        items = self.items
        if items is _NO_ITEMS:
            items = self.items = deque()
        items.append(item)
        self._wake()

    post = put
    """Append a cast or a send, unless the mailbox is at its limit: then it is dropped and counted."""

    def offer(self, item: tuple[Any, Any]) -> bool:
        """Append a call; ``False`` (and nothing appended) when the mailbox is at its limit."""
        self.put(item)
        return True

    @property
    def limit(self) -> int | None:
        """The most items ``post`` and ``offer`` let in; ``None``: unbounded."""
        return None

    @property
    def dropped(self) -> int:
        """How many casts, sends and calls the limit has turned away so far."""
        return 0

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


WARN_INTERVAL = 1.0
"""Seconds of the system clock between two warnings about one actor's full mailbox."""


class Overflow:
    """A bounded mailbox's limit, and its count of what it turned away."""

    __slots__ = ("limit", "dropped", "owner", "_now", "_warned_at", "_warned_count")

    def __init__(self, limit: int, owner: Any, now: Callable[[], float]) -> None:
        self.limit = limit
        self.dropped = 0
        self.owner = owner  # the actor's ref, for the warning
        self._now = now
        self._warned_at = -WARN_INTERVAL
        self._warned_count = 0

    def refuse(self, item: tuple[Any, Any]) -> None:
        """Count ``item`` as turned away; warn, at most once per ``WARN_INTERVAL``."""
        self.dropped += 1
        now = self._now()
        if now - self._warned_at >= WARN_INTERVAL:
            log.warning(
                "mailbox full: messages turned away",
                actor=repr(self.owner),
                limit=self.limit,
                since_last_warning=self.dropped - self._warned_count,
                total=self.dropped,
            )
            self._warned_at = now
            self._warned_count = self.dropped


class _Bounded:
    """What a bounded mailbox adds to either backend's: ``post`` and ``offer`` turn items away past the limit.

    Put first among the bases, so that its ``post`` and ``offer`` are the ones used.
    """

    __slots__ = ()
    overflow: Overflow
    items: Any
    put: Callable[[tuple[Any, Any]], None]

    def post(self, item: tuple[Any, Any]) -> None:
        overflow = self.overflow
        if len(self.items) >= overflow.limit:
            overflow.refuse(item)
        else:
            self.put(item)

    def offer(self, item: tuple[Any, Any]) -> bool:
        overflow = self.overflow
        if len(self.items) >= overflow.limit:
            overflow.refuse(item)
            return False
        self.put(item)
        return True

    @property
    def limit(self) -> int | None:
        return self.overflow.limit

    @property
    def dropped(self) -> int:
        return self.overflow.dropped


class _BoundedAsyncioMailbox(_Bounded, _AsyncioMailbox):
    __slots__ = ("overflow",)

    def __init__(self, loop: asyncio.AbstractEventLoop, overflow: Overflow) -> None:
        super().__init__(loop)
        self.overflow = overflow


class _BoundedEventMailbox(_Bounded, _EventMailbox):
    __slots__ = ("overflow",)

    def __init__(self, overflow: Overflow) -> None:
        super().__init__()
        self.overflow = overflow
