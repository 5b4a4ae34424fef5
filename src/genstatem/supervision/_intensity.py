"""Restart intensity: how many restarts a supervisor allows in a window of time."""

from __future__ import annotations

from collections import deque


class Intensity:
    """The restarts within the last ``period`` seconds, against the ``intensity`` allowed."""

    __slots__ = ("intensity", "period", "_times")

    def __init__(self, intensity: int, period: float) -> None:
        self.intensity = intensity
        self.period = period
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Count a restart at ``now``; ``False`` when that makes more than ``intensity`` in ``period``."""
        times = self._times
        times.append(now)
        horizon = now - self.period
        while times[0] < horizon:
            times.popleft()
        return len(times) <= self.intensity
