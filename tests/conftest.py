"""Shared fixtures: core tests run on every anyio backend."""

from __future__ import annotations

from typing import Any

import pytest

from genstatem.testing import VirtualTimeEventLoop


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test on asyncio and on trio."""
    return str(request.param)


@pytest.fixture(params=["asyncio", "trio"])
def virtual_anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """asyncio and trio on virtual time: timers fire at once, in real order.

    A module opts in with ``anyio_backend = virtual_anyio_backend`` style:
    ``@pytest.fixture def anyio_backend(virtual_anyio_backend): return virtual_anyio_backend``.
    """
    if request.param == "asyncio":
        return "asyncio", {"loop_factory": VirtualTimeEventLoop}
    from trio.testing import MockClock

    return "trio", {"clock": MockClock(autojump_threshold=0)}
