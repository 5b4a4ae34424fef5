"""An asyncio event loop on virtual time: sleeping costs nothing.

When the loop has nothing ready to run, instead of blocking until the next
timer it jumps its clock straight to that timer. Real I/O still works (it
is polled without waiting), so a test of minutes of timeouts runs in
milliseconds, and the order in which timers fire is exactly what it would
be on a real clock.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any


class _JumpingSelector(selectors.DefaultSelector):
    """Polls real I/O without waiting and jumps the loop's clock instead."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeEventLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:  # nothing scheduled: only real I/O can wake us
            return super().select(None)
        ready = super().select(0)
        if not ready and timeout > 0 and self.loop is not None:
            self.loop.advance(timeout)
        return ready


class VirtualTimeEventLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose ``time()`` only moves when it would otherwise wait.

    Use it as a loop factory: ``asyncio.Runner(loop_factory=VirtualTimeEventLoop)``,
    or ``anyio.run(main, backend_options={"loop_factory": VirtualTimeEventLoop})``.
    """

    def __init__(self, start: float = 0.0) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = start

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (timers due by then become ready)."""
        self._virtual_now += seconds


def virtual_time_loop(**kwargs: Any) -> VirtualTimeEventLoop:
    """Build a :class:`VirtualTimeEventLoop` (a ``loop_factory``)."""
    return VirtualTimeEventLoop(**kwargs)
