"""``python -m genstatem`` (and ``genstatem-demo``): run the code lock demo.

The example ships inside the wheel as ``genstatem/_examples``; in a source
checkout (an editable install) it is the repository's ``examples/`` folder.
"""

from __future__ import annotations

import runpy
from pathlib import Path


def _demo_path() -> Path:
    here = Path(__file__).resolve()
    for examples in (here.parent / "_examples", here.parents[2] / "examples"):
        demo = examples / "code_lock.py"
        if demo.is_file():
            return demo
    raise SystemExit("genstatem: the code lock example (code_lock.py) is not installed")


def main() -> None:
    """Run ``code_lock.py`` as a script: it prints a short story of a code lock."""
    runpy.run_path(str(_demo_path()), run_name="__main__")


if __name__ == "__main__":
    main()
