"""A node's log: structured lines on stderr, as text or JSON."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from genstatem._cli._logging import configure_logging


def test_json_lines_go_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each event is one JSON object on whatever ``sys.stderr`` is when it is logged, not when logging was set up."""
    configure_logging(format="json", level="info")
    later = io.StringIO()
    monkeypatch.setattr("sys.stderr", later)
    structlog.get_logger("test").info("elected leader", node="a", term=3, ref=object)
    structlog.get_logger("test").debug("not shown")
    [line] = later.getvalue().splitlines()
    record = json.loads(line)
    assert (record["event"], record["level"], record["node"], record["term"]) == ("elected leader", "info", "a", 3)
    assert record["ref"] == "<class 'object'>"
    assert record["timestamp"].endswith("Z")


def test_text_lines_are_key_value_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The text format puts the time, level and event first, then the event's fields as key=value."""
    configure_logging(format="text", level="warning")
    later = io.StringIO()
    monkeypatch.setattr("sys.stderr", later)
    structlog.get_logger("test").warning("tcp handshake failed", peer="b")
    assert later.getvalue().startswith("timestamp=")
    assert "level='warning' event='tcp handshake failed' peer='b'" in later.getvalue()
