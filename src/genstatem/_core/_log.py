"""genstatem's loggers: the program's structlog set-up if it has one, else the standard library's.

Like OTP since 21, what a program sees by default is crash reports (errors
and warnings, on stderr), not progress reports (an actor started or stopped,
a node connected: debug and info). Three cases, decided at each log call so
that configuring logging after import works:

* the program configured structlog: genstatem logs through it, as any
  structlog user would (``structlog.get_logger(name)``);
* else, the program configured the standard library's ``logging`` (the root
  logger, or a ``genstatem`` logger, has a handler): genstatem logs to
  ``logging.getLogger(name)``, and its levels and handlers decide;
* else nothing is configured: warnings and errors are written to stderr,
  and so are the ``genstatem.trace`` lines ``ref.trace()`` asked for.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any, Final

import structlog

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
}

_SHOWN_UNCONFIGURED: Final = {"genstatem.trace": logging.INFO}
"""Loggers shown below WARNING when nothing is configured: tracing is asked for explicitly."""


class Logger:
    """A named genstatem logger with structlog's calling style: ``log.info("event", key=value)``."""

    __slots__ = ("_name", "_shown", "_stdlib", "_structlog")

    def __init__(self, name: str) -> None:
        self._name = name
        self._stdlib = logging.getLogger(name)
        self._structlog: Any = structlog.get_logger(name)
        self._shown = _SHOWN_UNCONFIGURED.get(name, logging.WARNING)

    def debug(self, event: str, **values: Any) -> None:
        """A progress detail (an actor started or stopped)."""
        self._log("debug", event, values)

    def info(self, event: str, **values: Any) -> None:
        """A progress report (a node connected, a transport listening)."""
        self._log("info", event, values)

    def warning(self, event: str, **values: Any) -> None:
        """Something went wrong that the runtime handled (a connection lost)."""
        self._log("warning", event, values)

    def error(self, event: str, **values: Any) -> None:
        """A crash report; pass ``exc_info=`` the exception to show its traceback."""
        self._log("error", event, values)

    def exception(self, event: str, **values: Any) -> None:
        """A crash report for the exception being handled."""
        values.setdefault("exc_info", True)
        self._log("exception", event, values)

    def _log(self, method: str, event: str, values: dict[str, Any]) -> None:
        if structlog.is_configured():
            for key, value in values.items():
                if value.__class__ is str:
                    values[key] = _Text(value)
            getattr(self._structlog, method)(event, **values)
            return
        level = _LEVELS[method]
        stdlib = self._stdlib
        if stdlib.hasHandlers():
            if stdlib.isEnabledFor(level):
                exc_info = values.pop("exc_info", None)
                stdlib.log(level, "%s", _render(event, values), exc_info=exc_info)
        elif level >= self._shown:
            _write_stderr(self._name, method, event, values)


class _Text(str):
    """A string value that renderers show as it is: genstatem passes reprs already, not to be quoted twice."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str.__str__(self)


def get_logger(name: str) -> Logger:
    """The logger genstatem's module ``name`` logs through (``"genstatem"``, ``"genstatem.net"``, ...)."""
    return Logger(name)


def _render(event: str, values: dict[str, Any]) -> str:
    """``event key=value ...``: strings as they are (they are often reprs already), the rest by repr."""
    parts = [event]
    for key, value in values.items():
        parts.append(f"{key}={value if isinstance(value, str) else _safe_repr(value)}")
    return " ".join(parts)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ must not hide the report
        return f"<unrepresentable: {type(exc).__name__}>"


def _write_stderr(name: str, method: str, event: str, values: dict[str, Any]) -> None:
    exc_info = values.pop("exc_info", None)
    lines = [f"[{'error' if method == 'exception' else method}] {name}: {_render(event, values)}\n"]
    if exc_info is True:
        exc_info = sys.exc_info()[1]
    if isinstance(exc_info, BaseException):
        lines.extend(traceback.format_exception(exc_info))
    sys.stderr.write("".join(lines))
