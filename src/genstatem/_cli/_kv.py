"""``genstatem kv get/put/delete/cas``: the key-value machine of a running cluster.

``get`` is a linearizable read: it reflects every write acknowledged before
it began. ``put``, ``delete`` and ``cas`` return once the write is committed
on a majority and applied. Exit status 3 says "no": the key is absent, or
the compare-and-set found another value.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..raft import KVMachine
from ._config import CliError, add_connection_arguments, settings_from
from ._connect import open_cluster

NO = 3
"""The exit status of a ``get`` of an absent key and of a ``cas`` that found another value."""


def add_parser(commands: Any) -> None:
    """Add ``kv`` and its subcommands to ``commands``."""
    kv = commands.add_parser("kv", allow_abbrev=False, help="read and write the key-value machine of a running cluster")
    actions = kv.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help_text, arguments in (
        ("get", "print a key's value (a linearizable read); exit 3 if absent", ("key",)),
        ("put", "set a key", ("key", "value")),
        ("delete", "remove a key (whether or not it is there)", ("key",)),
        ("cas", "set KEY to NEW if it is EXPECTED; exit 3 if it is not", ("key", "expected", "new")),
    ):
        parser = actions.add_parser(name, allow_abbrev=False, help=help_text, description=help_text)
        for argument in arguments:
            if name == "cas" and argument == "expected":
                parser.add_argument("expected", nargs="?", help="the value the key must have")
                continue
            parser.add_argument(argument)
        if name == "cas":
            parser.add_argument("--absent", action="store_true", help="the key must be absent (give no EXPECTED)")
        add_connection_arguments(parser)
        parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    """Run one ``kv`` action; print its answer on stdout."""
    command = _command(args)
    async with open_cluster(settings_from(args)) as cluster:
        client = cluster.client()
        if args.action == "get":
            value = await cluster.run(client.read(command))
            if value is None:
                raise CliError(f"key {args.key!r} not found", NO)
            _print(value)
            return 0
        result = await cluster.run(client.propose(command))
        if args.action == "cas" and result is not True:
            raise CliError(f"key {args.key!r} does not hold the expected value; unchanged", NO)
        print("ok")
        return 0


def _command(args: argparse.Namespace) -> bytes:
    match args.action:
        case "get":
            return KVMachine.get(args.key)
        case "put":
            return KVMachine.put(args.key, args.value)
        case "delete":
            return KVMachine.delete(args.key)
    if args.absent == (args.expected is not None):
        raise CliError("kv cas: give KEY EXPECTED NEW, or --absent KEY NEW", 2)
    return KVMachine.cas(args.key, args.expected, args.new)


def _print(value: Any) -> None:
    if isinstance(value, bytes):
        sys.stdout.buffer.write(value + b"\n")
        sys.stdout.flush()
    else:
        print(value)
