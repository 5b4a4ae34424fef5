"""The few primitives the runtime needs from the event loop, per backend.

Everything runs on anyio. On asyncio (the default, and the hot path) the
primitives are futures and ``loop.call_later``, which cost a fraction of a
cancel scope; on any other anyio backend (trio) they are built from anyio
events, sleeps and cancel scopes.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
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


_NO_ITEMS: Any = ()
"""An idle mailbox's items: empty and falsy; the deque (760 bytes) comes with the first message."""


class CancelScope(Protocol):
    """What a process needs of a cancel scope: enter it, and cancel what runs in it."""

    @property
    def cancel_called(self) -> bool: ...

    def cancel(self) -> None: ...

    def __enter__(self) -> CancelScope: ...

    def __exit__(self, *exc_info: Any) -> bool | None: ...


class _TaskScope:
    """A cancel scope for one asyncio task: ``cancel`` cancels the task, the scope absorbs it.

    The same ``cancel``/``uncancel`` pattern as ``asyncio.timeout``, and all a
    process needs: anyio's scope keeps a task state, two sets and a weak
    reference per actor, which is most of an idle actor's garbage-collector work.
    """

    __slots__ = ("_cancel_called", "_task")

    def __init__(self) -> None:
        self._task: asyncio.Task[Any] | None = None
        self._cancel_called = False

    @property
    def cancel_called(self) -> bool:
        return self._cancel_called

    def cancel(self) -> None:
        if not self._cancel_called:
            self._cancel_called = True
            if self._task is not None:
                self._task.cancel()

    def __enter__(self) -> _TaskScope:
        self._task = asyncio.current_task()
        if self._cancel_called and self._task is not None:
            self._task.cancel()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        task, self._task = self._task, None
        if self._cancel_called and task is not None and task.uncancel() == 0:
            return exc_type is asyncio.CancelledError  # ours: absorbed here
        return False


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


class Backend(Protocol):
    """The loop primitives, one implementation per anyio backend."""

    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...

    def new_mailbox(self) -> Mailbox: ...

    def new_caller(self) -> Caller: ...

    def cancel_scope(self) -> CancelScope: ...

    def spawn(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        """Run ``function(*args)`` as a task of its own; it must catch its own errors."""
        ...

    async def wait_tasks(self) -> None:
        """Wait until every spawned task has finished."""
        ...


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
        loop = fut.get_loop()
        handle = loop.call_at(loop.time() + timeout, _timed_out, fut)
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

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def wait(self) -> asyncio.Future[None]:
        waiter = self._waiter = self._loop.create_future()
        return waiter


class AsyncioBackend:
    """Futures and ``call_later`` on the running asyncio loop.

    Actor tasks are plain asyncio tasks: an anyio task group wraps each task
    in a handle with a cancel scope and an event of its own, which is most of
    the cost of an idle actor. The runtime tracks its processes itself, and a
    process's task returns in the same step in which it is marked dead. A
    task that fails all the same (a runtime bug: actors catch their own
    errors) fails the system's task group, as a failing child would.
    """

    __slots__ = ("_context", "_failures", "_loop", "_on_done", "_task_group", "_tasks")

    def __init__(self, task_group: TaskGroup) -> None:
        self._loop = asyncio.get_running_loop()
        self._task_group = task_group
        self._tasks: set[asyncio.Task[None]] = set()  # asyncio itself keeps only weak references
        # one callback and one context for every task, rather than one of each per task
        self._on_done = self._task_done
        self._context = contextvars.copy_context()
        self._failures: list[BaseException] = []  # raised from the task group, or at the latest on exit

    def spawn(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        task = self._loop.create_task(function(*args))
        self._tasks.add(task)
        task.add_done_callback(self._on_done, context=self._context)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            self._failures.append(error)
            self._task_group.start_soon(self._reraise, error)

    async def _reraise(self, error: BaseException) -> None:
        self._failures.remove(error)
        raise error

    def cancel_scope(self) -> CancelScope:
        return _TaskScope()

    async def wait_tasks(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._failures:  # the system is leaving before its task group could raise them
            failures, self._failures = self._failures, []
            raise BaseExceptionGroup("an actor's task failed", failures)

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

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def wait(self) -> Awaitable[Any]:
        waiter = self._waiter = anyio.Event()
        return waiter.wait()


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

    def spawn(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        self._task_group.start_soon(function, *args)

    def cancel_scope(self) -> CancelScope:
        return anyio.CancelScope()

    async def wait_tasks(self) -> None:
        return None  # the task group waits for them when the system exits

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
        return AsyncioBackend(task_group)
    return AnyioBackend(task_group)
