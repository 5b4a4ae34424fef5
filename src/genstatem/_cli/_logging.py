"""Structured log lines on stderr: ``key=value`` text for people, or one JSON object a line for machines."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog


def configure_logging(*, format: str = "text", level: str = "info") -> None:
    """Send every structlog event at ``level`` or above to stderr, as text or JSON lines.

    Each line carries the time (UTC, ISO 8601), the level, the event and its
    fields: ``node``, ``term``, ``peer`` ... as the library logs them.
    """
    renderer: Any
    if format == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        tracebacks: Any = structlog.processors.dict_tracebacks
    else:
        renderer = structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"], drop_missing=True)
        tracebacks = structlog.processors.format_exc_info
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            tracebacks,
            _plain_values,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def _plain_values(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """Values a JSON encoder cannot take (refs, exceptions, tuples of them) as their text."""
    return {k: v if k == "exception" or isinstance(v, _PLAIN) else str(v) for k, v in event.items()}


_PLAIN = (str, int, float, bool, type(None))


class _Stderr:
    """Whatever ``sys.stderr`` is at each write, not the stream it was when logging was configured."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()
