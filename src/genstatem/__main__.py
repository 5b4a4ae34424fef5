"""``python -m genstatem`` (and ``genstatem-demo``): run a demo.

``python -m genstatem`` runs the Raft demo: a key-value store replicated on
three nodes in this process, whose leader crashes and comes back.
``python -m genstatem cluster`` runs three Raft nodes as OS processes and
kills the leader with SIGKILL. ``python -m genstatem code-lock`` runs the
code lock of OTP's ``gen_statem`` user's guide. That example ships inside
the wheel as ``genstatem/_examples``; in a source checkout (an editable
install) it is the repository's ``examples/`` folder.
``python -m genstatem raft ...`` and ``... kv ...`` are the ``genstatem``
command line.
"""

from __future__ import annotations

import argparse
import os
import runpy
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

DEMOS = ("raft", "cluster", "code-lock")
CLI_COMMANDS = ("raft", "kv")  # followed by an action: the genstatem command line


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo named on the command line (``raft`` by default); return the exit status.

    When the reader of the output goes away early (``... | head``), it stops
    quietly with 141 (128 + SIGPIPE), as a tool killed by SIGPIPE would.
    """
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # --help's text, or the demo's last lines, may still be buffered
    except* BrokenPipeError:  # bare, or from inside the demo's task group
        pass
    # The reader is gone. The recipe of Python's signal module docs: stdout to
    # devnull, so that the flush at exit cannot fail again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + getattr(signal, "SIGPIPE", 13)


def _run(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 and args[0] in CLI_COMMANDS:
        from ._cli import main as cli_main

        return cli_main(args, prog=_prog())
    parser = argparse.ArgumentParser(prog=_prog(), description="Run one of genstatem's demos.")
    parser.add_argument(
        "demo",
        nargs="?",
        default="raft",
        choices=DEMOS,
        help="raft: a three-node replicated key-value store whose leader crashes (the default); "
        "cluster: the same with three node processes, the leader killed with SIGKILL; "
        "code-lock: the code lock of OTP's gen_statem user's guide",
    )
    demo = parser.parse_args(args).demo
    if demo == "cluster":
        from ._cli._cluster_demo import main as cluster_demo

        return cluster_demo()
    if demo == "code-lock":
        runpy.run_path(str(_code_lock_path()), run_name="__main__")
        return 0
    from ._demo_raft import main as raft_demo

    return raft_demo()


if __name__ == "__main__":
    sys.exit(main())
