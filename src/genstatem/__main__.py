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
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

DEMOS = ("raft", "code-lock")


def _code_lock_path() -> Path:
    here = Path(__file__).resolve()
    for examples in (here.parent / "_examples", here.parents[2] / "examples"):
        demo = examples / "code_lock.py"
        if demo.is_file():
            return demo
    raise SystemExit("genstatem: the code lock example (code_lock.py) is not installed")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo named on the command line (``raft`` by default); return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m genstatem", description="Run one of genstatem's demos.")
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
        runpy.run_path(str(_code_lock_path()), run_name="__main__")
        return 0
    from ._demo_raft import main as raft_demo

    return raft_demo()


if __name__ == "__main__":
    sys.exit(main())
