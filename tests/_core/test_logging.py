"""Logging: crash reports by default, progress reports only when asked for, through stdlib logging per logger."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

import genstatem as gs

pytestmark = pytest.mark.anyio


class Crasher(gs.GenStateMachine):
    """Crashes on the cast "crash"."""

    async def init(self, arg: Any) -> gs.Init:
        return gs.Init("calm", None)

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "crash":
            raise ValueError("boom")
        return None


@pytest.fixture
def unconfigured_structlog() -> Iterator[None]:
    """structlog as a program that never configured it sees it; restored afterwards."""
    saved = structlog.get_config()
    was_configured = structlog.is_configured()
    structlog.reset_defaults()
    try:
        yield
    finally:
        if was_configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()


async def crash_one() -> None:
    async with gs.ActorSystem() as system:
        calm = await system.start(Crasher, name="calm")
        await calm.stop()
        ref = await system.start(Crasher, name="crasher")
        ref.cast("crash")
        await ref.wait_exit()


@pytest.mark.usefixtures("unconfigured_structlog")
async def test_unconfigured_a_crash_report_goes_to_stderr_and_progress_nowhere(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing configured, starts and stops print nothing; a crash prints one report and traceback on stderr."""
    monkeypatch.setattr(logging.root, "handlers", [])  # pytest's own, added for the test's call
    await crash_one()
    out, err = capsys.readouterr()
    assert out == ""
    assert "actor started" not in err
    assert "Crasher#1" not in err
    assert err.count("actor crashed") == 1
    assert "[error] genstatem: actor crashed actor=<ActorRef Crasher#2 'crasher'>" in err
    assert "reason=ValueError('boom')" in err
    assert "Traceback (most recent call last)" in err


@pytest.mark.usefixtures("unconfigured_structlog")
async def test_through_stdlib_logging_each_logger_has_its_level(caplog: pytest.LogCaptureFixture) -> None:
    """Through stdlib logging, progress reports are DEBUG records of "genstatem", shown when its level allows."""
    await crash_one()
    assert [record.getMessage().split(" ")[:2] for record in caplog.records] == [["actor", "crashed"]]
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="genstatem")
    await crash_one()
    messages = [(record.name, record.levelname, record.getMessage()) for record in caplog.records]
    assert ("genstatem", "DEBUG", "actor started actor=<ActorRef Crasher#1 'calm'>") in messages
    assert ("genstatem", "DEBUG", "actor stopped actor=<ActorRef Crasher#1 'calm'> reason=normal") in messages
    crashed = [record for record in caplog.records if record.getMessage().startswith("actor crashed")]
    assert len(crashed) == 1
    assert crashed[0].levelno == logging.ERROR
    assert crashed[0].exc_info is not None


async def test_a_program_that_configured_structlog_gets_genstatems_events_there() -> None:
    """When structlog is configured, genstatem logs through it, with the values as structured fields."""
    with structlog.testing.capture_logs() as logs:
        await crash_one()
    crashed = [entry for entry in logs if entry["event"] == "actor crashed"]
    assert len(crashed) == 1
    assert crashed[0]["log_level"] == "error"
    assert isinstance(crashed[0]["exc_info"], ValueError)


@pytest.mark.usefixtures("unconfigured_structlog")
async def test_values_are_rendered_once_not_as_the_repr_of_a_repr() -> None:
    """A structlog renderer shows genstatem's values once: reason=ValueError('boom'), not quoted again."""
    out = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
        logger_factory=structlog.PrintLoggerFactory(file=out),
    )
    await crash_one()
    (line,) = [line for line in out.getvalue().splitlines() if "actor crashed" in line]
    assert "actor=<ActorRef Crasher#2 'crasher'>" in line
    assert "state='calm'" in line
    assert "reason=ValueError('boom')" in line
