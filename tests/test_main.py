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


@pytest.mark.parametrize("arguments", [[], ["code-lock"]])
def test_output_into_a_pipe_whose_reader_is_gone_ends_quietly_with_141(arguments: list[str]) -> None:
    """``python -m genstatem | head -0``: exit 141 (as if killed by SIGPIPE) and no traceback, for each demo."""
    reader, writer = os.pipe()
    os.close(reader)  # gone before the first line: every write fails, whatever the timing
    try:
        done = subprocess.run(
            [sys.executable, "-m", "genstatem", *arguments],
            stdout=writer,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # the first line fails at once, before any timer runs
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (141, "")
