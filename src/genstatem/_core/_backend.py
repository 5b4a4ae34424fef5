"""The few primitives the runtime needs from the event loop, per backend.

Everything runs on anyio. On asyncio (the default, and the hot path) the
primitives are futures and ``loop.call_later``, which cost a fraction of a
cancel scope; on any other anyio backend (trio) they are built from anyio
events, sleeps and cancel scopes.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup

from ._errors import CallTimeout


class TimerHandle(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None: ...


class Caller:
    """The reply handle of one call, gen_statem's ``From``.

    Replying twice, or after the caller gave up, does nothing.
    """

    __slots__ = ("__weakref__",)

    def __repr__(self) -> str:
        return f"<{type(self).__name__.lstrip('_')}>"  # no address: traces must replay alike

    def resolve(self, value: Any) -> None:
        """Complete the call with ``value`` (first answer wins)."""
        raise NotImplementedError

    def fail(self, error: BaseException) -> None:
        """Complete the call by raising ``error`` in the caller."""
        raise NotImplementedError

    async def wait(self, timeout: float | None) -> Any:
        """Wait for the answer; raise :class:`CallTimeout` after ``timeout``."""
        raise NotImplementedError


class Mailbox:
    """An actor's queue of received messages, oldest first."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: deque[tuple[Any, Any]] = deque()

    def put(self, item: tuple[Any, Any]) -> None:
        """Append ``item`` and wake the owner if it is waiting."""
        raise NotImplementedError

    async def get(self) -> tuple[Any, Any]:
        """Remove and return the oldest item, waiting for one if need be."""
        raise NotImplementedError


class Backend(Protocol):
    """The loop primitives, one implementation per anyio backend."""

    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...

    def new_mailbox(self) -> Mailbox: ...

    def new_caller(self) -> Caller: ...


def _timed_out(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(CallTimeout("call timed out"))


class _AsyncioCaller(Caller):
    __slots__ = ("_fut",)

    def __init__(self, fut: asyncio.Future[Any]) -> None:
        self._fut = fut

    def resolve(self, value: Any) -> None:
        if not self._fut.done():
            self._fut.set_result(value)

    def fail(self, error: BaseException) -> None:
        if not self._fut.done():
            self._fut.set_exception(error)

    async def wait(self, timeout: float | None) -> Any:
        fut = self._fut
        if timeout is None:
            return await fut
        handle = fut.get_loop().call_later(timeout, _timed_out, fut)
        try:
            return await fut
        finally:
            handle.cancel()


class _AsyncioMailbox(Mailbox):
    __slots__ = ("_loop", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: tuple[Any, Any]) -> None:
        self.items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def get(self) -> tuple[Any, Any]:
        items = self.items
        while not items:
            waiter = self._loop.create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        return items.popleft()


class AsyncioBackend:
    """Futures and ``call_later`` on the running asyncio loop."""

    __slots__ = ("_loop",)

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()

    def now(self) -> float:
        return self._loop.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self._loop.call_later(delay, callback)

    def new_mailbox(self) -> Mailbox:
        return _AsyncioMailbox(self._loop)

    def new_caller(self) -> Caller:
        return _AsyncioCaller(self._loop.create_future())


_PENDING = object()


class _EventCaller(Caller):
    __slots__ = ("_event", "_outcome", "_failed")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._outcome: Any = _PENDING
        self._failed = False

    def resolve(self, value: Any) -> None:
        if self._outcome is _PENDING:
            self._outcome = value
            self._event.set()

    def fail(self, error: BaseException) -> None:
        if self._outcome is _PENDING:
            self._outcome = error
            self._failed = True
            self._event.set()

    async def wait(self, timeout: float | None) -> Any:
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            await self._event.wait()
        if self._outcome is _PENDING:
            self.fail(CallTimeout("call timed out"))
        if self._failed:
            raise self._outcome
        return self._outcome


class _EventMailbox(Mailbox):
    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        super().__init__()
        self._waiter: anyio.Event | None = None

    def put(self, item: tuple[Any, Any]) -> None:
        self.items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    async def get(self) -> tuple[Any, Any]:
        items = self.items
        while not items:
            waiter = anyio.Event()
            self._waiter = waiter
            try:
                await waiter.wait()
            finally:
                self._waiter = None
        return items.popleft()


class _ScopeTimer:
    __slots__ = ("scope",)

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()

    def cancel(self) -> None:
        self.scope.cancel()


class AnyioBackend:
    """Events, sleeps and cancel scopes: works on every anyio backend."""

    __slots__ = ("_task_group",)

    def __init__(self, task_group: TaskGroup) -> None:
        self._task_group = task_group

    def now(self) -> float:
        return anyio.current_time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _ScopeTimer()

        async def fire() -> None:
            with timer.scope:
                await anyio.sleep(delay)
                callback()

        self._task_group.start_soon(fire)
        return timer

    def new_mailbox(self) -> Mailbox:
        return _EventMailbox()

    def new_caller(self) -> Caller:
        return _EventCaller()


def running_on_asyncio() -> bool:
    """True when the current task is an asyncio task."""
    try:
        return asyncio.current_task() is not None
    except RuntimeError:
        return False


def current_backend(task_group: TaskGroup) -> Backend:
    """The fastest backend for the running event loop."""
    if running_on_asyncio():
        return AsyncioBackend()
    return AnyioBackend(task_group)
