"""The commands configure structlog for a process; a test that runs one in-process gets the old configuration back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True, scope="module")
def restore_structlog() -> Iterator[None]:
    """Put back the structlog configuration the commands of a module changed (module fixtures run commands too)."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
