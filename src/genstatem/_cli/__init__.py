"""``genstatem``: run Raft nodes as OS processes and work with a running cluster.

    genstatem raft serve -c a.toml           one node, until SIGTERM
    genstatem kv put colour red -c a.toml    write, read, delete, compare-and-set
    genstatem raft status -c a.toml          who leads, and how far behind each member is
    genstatem raft add/remove/transfer NODE  change the membership and the leadership

Each command group is a module: ``_raft`` (with ``_serve`` and ``_status``)
and ``_kv``; ``_config`` reads the node files and flags, ``_connect``
reaches a cluster. Every command exits 0 when it did its job, and otherwise
prints one line on stderr and exits non-zero: 1 when it cannot do its job,
2 for a usage error, 3 for a "no" (``kv get`` of an absent key, a ``kv cas``
that found another value).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import anyio

from . import _kv, _raft
from ._config import CliError, find_cli_error


def parser(prog: str = "genstatem") -> argparse.ArgumentParser:
    """The ``genstatem`` command line."""
    root = argparse.ArgumentParser(
        prog=prog, allow_abbrev=False, description="Run Raft nodes and work with a running cluster."
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _raft.add_parser(commands)
    _kv.add_parser(commands)
    return root


def main(argv: Sequence[str] | None = None, *, prog: str = "genstatem") -> int:
    """Run one command; return its exit status (errors as one line on stderr)."""
    args = parser(prog).parse_args(argv)
    try:
        status: int = anyio.run(args.run, args)
    except (CliError, BaseExceptionGroup) as error:
        reason = find_cli_error(error)
        if reason is None:
            raise
        print(f"{prog}: {reason}", file=sys.stderr)
        return reason.status
    except KeyboardInterrupt:
        return 130
    return status


def console_main() -> int:
    """The ``genstatem`` console script."""
    return main()
