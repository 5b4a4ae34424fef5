"""``ActorRef``: the handle every caller uses to reach an actor, and ``LocalRef``, its local kind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from ._context import current_task
from ._errors import CallingSelf, CallTimeout, MailboxFull, NoProcess, call_timed_out
from ._messages import CAST, INFO, SYSTEM, Call, GetState, StopRequest
from ._trace import Tracer, log_trace

if TYPE_CHECKING:
    from ._process import Process


class ActorRef:
    """A hashable handle to one actor, alive or not: the base of local and remote refs.

    Messages to a dead actor are dropped silently (``cast``, ``send``) or raise
    :class:`NoProcess` (``call``, ``stop``, ``get_state``), as in Erlang.
    A ref to an actor of this system is a ``LocalRef``; a network's refs to
    actors elsewhere subclass this class too (``genstatem.lowlevel``).
    """

    __slots__ = ("__weakref__",)

    @property
    def node(self) -> str:
        """The node the actor lives on."""
        raise NotImplementedError

    @property
    def alive(self) -> bool:
        """``True`` while the actor runs (``terminate`` included)."""
        raise NotImplementedError

    @property
    def name(self) -> Any:
        """The name the actor was started with, or ``None``."""
        raise NotImplementedError

    def cast(self, msg: Any) -> None:
        """Deliver ``(Cast(), msg)``; never blocks, never raises."""
        raise NotImplementedError

    def send(self, msg: Any) -> None:
        """Deliver ``(Info(), msg)``; never blocks, never raises."""
        raise NotImplementedError

    async def call(self, request: Any, timeout: float | None = 5.0) -> Any:
        """Deliver ``(Call(caller), request)`` and return the value replied.

        Raises:
            CallTimeout: no reply within ``timeout`` seconds (``None``: wait forever).
            NoProcess: the actor is not alive.
            ActorExited: the actor exited before replying.
        """
        raise NotImplementedError

    async def stop(self, reason: Any = "normal", timeout: float | None = None) -> None:
        """Stop the actor as if it had returned ``Stop(reason)``; wait until it is gone.

        Raises:
            NoProcess: the actor is not alive.
            TimeoutError: it was not gone within ``timeout`` seconds.
        """
        raise NotImplementedError

    async def get_state(self, timeout: float | None = 5.0) -> tuple[Any, Any]:
        """``(state, data)``, answered between events in mailbox order, like ``sys:get_state``."""
        raise NotImplementedError

    async def wait_exit(self) -> Any:
        """Wait until the actor has exited and return its reason (at once if it has)."""
        raise NotImplementedError

    def trace(self, enabled: bool = True, *, tracer: Tracer | None = None) -> None:
        """Turn tracing of every event and transition on or off, like ``sys:trace``.

        Args:
            enabled: ``False`` turns tracing off.
            tracer: called with each :class:`TraceEvent`; by default each is
                logged as a structlog ``trace`` event.
        """
        raise NotImplementedError


class LocalRef(ActorRef):
    """A ref to an actor of this process's own ``ActorSystem``.

    Equal only to itself: each actor has exactly one.
    """

    __slots__ = ("_process",)

    def __init__(self, process: Process) -> None:
        self._process = process

    @property
    def id(self) -> int:
        """The actor's number: unique in its system, and the same from run to run."""
        return self._process.id

    @property
    def node(self) -> str:
        """The node the actor lives on."""
        return self._process.system.node

    @property
    def alive(self) -> bool:
        """``True`` while the actor runs (``terminate`` included)."""
        return self._process.alive

    @property
    def name(self) -> Any:
        """The name the actor was started with, or ``None``."""
        return self._process.name

    def __repr__(self) -> str:
        process = self._process
        named = "" if process.name is None else f" {process.name!r}"
        return f"<ActorRef {type(process.behaviour).__name__}#{process.id}{named}>"

    def cast(self, msg: Any) -> None:
        """Deliver ``(Cast(), msg)``; never blocks, never raises."""
        process = self._process
        if process.alive:
            process.mailbox.post((CAST, msg))

    def send(self, msg: Any) -> None:
        """Deliver ``(Info(), msg)``; never blocks, never raises."""
        process = self._process
        if process.alive:
            process.mailbox.post((INFO, msg))

    async def call(self, request: Any, timeout: float | None = 5.0) -> Any:
        """Deliver ``(Call(caller), request)`` and return the value replied.

        Raises:
            CallTimeout: no reply within ``timeout`` seconds (``None``: wait forever).
            NoProcess: the actor is not alive.
            ActorExited: the actor exited before replying.
            CallingSelf: an actor called itself (it would wait on its own reply).
            MailboxFull: the actor's mailbox is at its ``mailbox_limit``.
        """
        process = self._process
        if not process.alive:
            raise NoProcess(f"{self!r} is not alive")
        if process.task is not None and process.task is current_task():
            raise _calling_self(self, "call")
        caller = process.system._loop.new_caller()
        mailbox = process.mailbox
        if not mailbox.offer((Call(caller), request)):
            raise MailboxFull(self, mailbox.limit or 0)
        callers = process.callers
        callers[caller] = None
        try:
            return await caller.wait(timeout)
        except CallTimeout:
            raise call_timed_out(self, request, timeout) from None
        finally:
            callers.pop(caller, None)

    async def stop(self, reason: Any = "normal", timeout: float | None = None) -> None:
        """Stop the actor as if it had returned ``Stop(reason)``; wait until it is gone.

        Raises:
            NoProcess: the actor is not alive.
            TimeoutError: it was not gone within ``timeout`` seconds.
            CallingSelf: an actor stopped itself this way (return ``Stop`` instead).
        """
        process = self._process
        if not process.alive:
            raise NoProcess(f"{self!r} is not alive")
        if process.task is not None and process.task is current_task():
            raise _calling_self(self, "stop")
        process.mailbox.put((SYSTEM, StopRequest(reason)))
        if timeout is None:
            await process.wait_exit()
            return
        with anyio.move_on_after(timeout):
            await process.wait_exit()
            return
        raise TimeoutError(f"{self!r} did not stop within {timeout}s")

    async def get_state(self, timeout: float | None = 5.0) -> tuple[Any, Any]:
        """``(state, data)``, answered between events in mailbox order, like ``sys:get_state``."""
        process = self._process
        if not process.alive:
            raise NoProcess(f"{self!r} is not alive")
        if process.task is not None and process.task is current_task():
            raise _calling_self(self, "get_state")
        caller = process.system._loop.new_caller()
        process.callers[caller] = None
        process.mailbox.put((SYSTEM, GetState(caller)))
        try:
            result: tuple[Any, Any] = await caller.wait(timeout)
            return result
        finally:
            process.callers.pop(caller, None)

    async def wait_exit(self) -> Any:
        """Wait until the actor has exited and return its reason (at once if it has)."""
        return await self._process.wait_exit()

    def trace(self, enabled: bool = True, *, tracer: Tracer | None = None) -> None:
        """Turn tracing of every event and transition on or off, like ``sys:trace``.

        Args:
            enabled: ``False`` turns tracing off.
            tracer: called with each :class:`TraceEvent`; by default each is
                logged as a structlog ``trace`` event.
        """
        self._process.tracer = (tracer or log_trace) if enabled else None


def _calling_self(ref: ActorRef, what: str) -> CallingSelf:
    return CallingSelf(f"{ref!r} used {what} on itself: it would wait for ever on its own answer (OTP's calling_self)")
