"""``python -m genstatem`` (and ``genstatem-demo``): run a demo.

``python -m genstatem`` runs the Raft demo: a key-value store replicated on
three nodes in this process, whose leader crashes and comes back.
``python -m genstatem code-lock`` runs the code lock of OTP's ``gen_statem``
user's guide. That example ships inside the wheel as ``genstatem/_examples``;
in a source checkout (an editable install) it is the repository's
``examples/`` folder.
"""

from __future__ import annotations

import argparse
import os
import runpy
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

DEMOS = ("raft", "code-lock")


def _code_lock_path() -> Path:
    here = Path(__file__).resolve()
    for examples in (here.parent / "_examples", here.parents[2] / "examples"):
        demo = examples / "code_lock.py"
        if demo.is_file():
            return demo
    raise SystemExit("genstatem: the code lock example (code_lock.py) is not installed")


def _prog() -> str:
    """The command as the user typed it: ``genstatem-demo``, or ``python -m genstatem``."""
    invoked = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if invoked in ("", "-c", "__main__.py"):
        return "python -m genstatem"
    return invoked


def _quiet_on_broken_pipe(demo: Callable[[], int]) -> int:
    """Run ``demo``; if its reader went away (``... | head``), stop quietly as a SIGPIPE-killed tool would.

    This is the recipe of Python's ``signal`` module documentation: point
    stdout at devnull so that the flush at exit does not fail again.
    """
    status = 0
    reader_gone = False
    try:
        status = demo()
        sys.stdout.flush()
    except* BrokenPipeError:
        reader_gone = True
    if reader_gone:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + getattr(signal, "SIGPIPE", 13)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo named on the command line (``raft`` by default); return the exit status.

    Exits with 141 (128 + SIGPIPE), and no traceback, when the reader of its
    output closes the pipe early.
    """
    parser = argparse.ArgumentParser(prog=_prog(), description="Run one of genstatem's demos.")
    parser.add_argument(
        "demo",
        nargs="?",
        default="raft",
        choices=DEMOS,
        help="raft: a three-node replicated key-value store whose leader crashes (the default); "
        "code-lock: the code lock of OTP's gen_statem user's guide",
    )
    demo = parser.parse_args(argv).demo
    if demo == "code-lock":
        return _quiet_on_broken_pipe(_code_lock)
    from ._demo_raft import main as raft_demo

    return _quiet_on_broken_pipe(raft_demo)


def _code_lock() -> int:
    runpy.run_path(str(_code_lock_path()), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
