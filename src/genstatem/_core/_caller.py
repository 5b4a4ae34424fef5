"""The reply handle of a call (gen_statem's ``From``), one implementation per backend.

On asyncio a call's answer is a future; on any other anyio backend (trio)
it is an anyio event and the outcome beside it.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import anyio

from ._errors import CallTimeout


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


CALLER_TYPES: tuple[type[Caller], ...] = (_AsyncioCaller, _EventCaller)
"""The runtime's own reply handle classes, in a fixed order: a codec numbers them alike on every node."""
