"""``python -m genstatem`` and ``genstatem-demo``: the command line around the demos."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from genstatem.__main__ import main


@pytest.mark.parametrize(
    ("argv0", "usage"),
    [
        ("/somewhere/bin/genstatem-demo", "usage: genstatem-demo "),
        ("/somewhere/site-packages/genstatem/__main__.py", "usage: python -m genstatem "),
    ],
)
def test_help_names_the_command_as_it_was_invoked(
    argv0: str, usage: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--help`` says ``genstatem-demo`` when run as that script, ``python -m genstatem`` when run with ``-m``."""
    monkeypatch.setattr(sys, "argv", [argv0, "--help"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(usage)


def test_python_m_genstatem_help_says_python_m_genstatem() -> None:
    """Run for real, ``python -m genstatem --help`` shows the command that was typed."""
    done = subprocess.run(
        [sys.executable, "-m", "genstatem", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m genstatem ")


def test_the_demo_stops_quietly_when_its_reader_goes_away() -> None:
    """``python -m genstatem | head -1``: the demo exits 141 (as if killed by SIGPIPE), with no traceback."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "genstatem"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # each line is written at once, so later ones hit the closed pipe
    )
    assert demo.stdout is not None
    assert demo.stderr is not None
    first = demo.stdout.readline()
    demo.stdout.close()
    errors = demo.stderr.read().decode()
    status = demo.wait(timeout=60)
    demo.stderr.close()
    assert first.startswith(b"genstatem: ")
    assert errors == ""
    assert status == 141
