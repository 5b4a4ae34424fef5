"""The few primitives the runtime needs from the event loop, per backend.

The mailbox (``_mailbox.py``) and the reply handle (``_caller.py``) live in
their own modules; this one holds the backends that make them, with the
timers, cancel scopes and task spawning.

Everything runs on anyio. On asyncio (the default, and the hot path) the
primitives are futures and ``loop.call_later``, which cost a fraction of a
cancel scope; on any other anyio backend (trio) they are built from anyio
events, sleeps and cancel scopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup

from ._caller import Caller, _AsyncioCaller, _EventCaller
from ._mailbox import Mailbox, Overflow, _AsyncioMailbox, _BoundedAsyncioMailbox, _BoundedEventMailbox, _EventMailbox


class TimerHandle(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None: ...


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


class Backend(Protocol):
    """The loop primitives, one implementation per anyio backend."""

    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...

    def new_mailbox(self, limit: int | None = None, owner: Any = None) -> Mailbox:
        """A mailbox, bounded to ``limit`` items of what others send (``None``: unbounded).

        ``owner`` (the actor's ref) names the actor when the limit turns messages away.
        """
        ...

    def new_caller(self) -> Caller: ...

    def cancel_scope(self) -> CancelScope: ...

    async def open(self) -> None:
        """Get ready to ``spawn``: called once, from the system's ``__aenter__``."""
        ...

    def spawn(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        """Run ``function(*args)`` as a task of its own; it must catch its own errors."""
        ...

    async def wait_tasks(self, timeout: float) -> bool:
        """Wait until every spawned task has finished, for ``timeout`` seconds at most.

        Returns:
            ``False`` when some are still running: they are abandoned.
        """
        ...


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

    async def open(self) -> None:
        return None

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

    async def wait_tasks(self, timeout: float) -> bool:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        if self._failures:  # the system is leaving before its task group could raise them
            failures, self._failures = self._failures, []
            raise BaseExceptionGroup("an actor's task failed", failures)
        return not self._tasks

    def now(self) -> float:
        return self._loop.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self._loop.call_later(delay, callback)

    def new_mailbox(self, limit: int | None = None, owner: Any = None) -> Mailbox:
        if limit is None:
            return _AsyncioMailbox(self._loop)
        return _BoundedAsyncioMailbox(self._loop, Overflow(limit, owner, self.now))

    def new_caller(self) -> Caller:
        return _AsyncioCaller(self._loop.create_future())


class _ScopeTimer:
    __slots__ = ("scope",)

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()

    def cancel(self) -> None:
        self.scope.cancel()


class AnyioBackend:
    """Events, sleeps and cancel scopes: works on every anyio backend (trio is the other one).

    Actor tasks run in a task group of their own, hosted by a trio *system
    task* rather than by the system's task group: a task stuck in a shielded
    cancel scope cannot be cancelled, and a task group cannot be left while
    one of its tasks runs. Hosted apart, such a task can be abandoned, so the
    system's exit always ends. A task that fails (a runtime bug: actors catch
    their own errors) fails the system's task group, as a failing child would.
    """

    __slots__ = ("_actors", "_closed", "_done", "_failures", "_task_group")

    def __init__(self, task_group: TaskGroup) -> None:
        self._task_group = task_group
        self._actors: TaskGroup | None = None
        self._closed = anyio.Event()
        self._done = anyio.Event()
        self._failures: list[BaseException] = []

    async def open(self) -> None:
        import trio  # the only other anyio backend: we run on it

        ready = anyio.Event()
        trio.lowlevel.spawn_system_task(self._host, ready, context=contextvars.copy_context())
        await ready.wait()

    async def _host(self, ready: anyio.Event) -> None:
        try:
            async with anyio.create_task_group() as actors:
                self._actors = actors
                ready.set()
                await self._closed.wait()
        except anyio.get_cancelled_exc_class():
            raise  # the run itself is ending
        except BaseException as error:
            self._failures.append(error)
            with contextlib.suppress(RuntimeError):  # the system's task group is gone: wait_tasks raises it
                self._task_group.start_soon(self._reraise, error)
        finally:
            ready.set()
            self._done.set()

    async def _reraise(self, error: BaseException) -> None:
        if error in self._failures:
            self._failures.remove(error)
            raise error

    def spawn(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        if self._actors is None:
            raise RuntimeError("the ActorSystem is not running")
        self._actors.start_soon(function, *args)

    def cancel_scope(self) -> CancelScope:
        return anyio.CancelScope()

    async def wait_tasks(self, timeout: float) -> bool:
        self._closed.set()
        with anyio.move_on_after(timeout):
            await self._done.wait()
        if self._failures:
            failures, self._failures = self._failures, []
            raise BaseExceptionGroup("an actor's task failed", failures)
        return self._done.is_set()

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

    def new_mailbox(self, limit: int | None = None, owner: Any = None) -> Mailbox:
        if limit is None:
            return _EventMailbox()
        return _BoundedEventMailbox(Overflow(limit, owner, self.now))

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
