"""``genstatem raft serve/status/add/remove/promote/transfer``: run a node, look at the cluster, change it."""

from __future__ import annotations

import argparse
import json
from typing import Any

import anyio

from ..raft import RaftStatus
from ._config import CliError, add_connection_arguments, add_node_arguments, parse_address, settings_from
from ._connect import Cluster, open_cluster
from ._serve import PEERS, serve
from ._status import leader_of, rows, table


def add_parser(commands: Any) -> None:
    """Add ``raft`` and its subcommands to ``commands``."""
    raft = commands.add_parser("raft", allow_abbrev=False, help="run a Raft node; show and change a running cluster")
    actions = raft.add_subparsers(dest="action", required=True, metavar="ACTION")

    parser = actions.add_parser("serve", allow_abbrev=False, help="run one Raft node in this process, until SIGTERM")
    add_connection_arguments(parser)
    add_node_arguments(parser)
    parser.set_defaults(run=run_serve)

    parser = actions.add_parser(
        "status", allow_abbrev=False, help="each member's role, term, indexes, and its lag behind the leader"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_connection_arguments(parser)
    parser.set_defaults(run=run_status)

    parser = actions.add_parser("add", allow_abbrev=False, help="add a member (start its `raft serve --join` first)")
    parser.add_argument("member", metavar="NODE")  # not "node": that is the --node field of a file
    parser.add_argument(
        "--learner", action="store_true", help="add it as a learner: it votes once `raft promote`d (as etcd does)"
    )
    parser.add_argument("--address", metavar="HOST:PORT", help="where it listens, if the members do not know yet")
    add_connection_arguments(parser)
    parser.set_defaults(run=run_add)

    for name, help_text in (
        ("remove", "remove a member (a leader removed steps down)"),
        ("transfer", "hand leadership to a member, and wait until it leads"),
        ("promote", "make a learner a voting member, once it has caught up"),
    ):
        parser = actions.add_parser(name, allow_abbrev=False, help=help_text)
        parser.add_argument("member", metavar="NODE")  # not "node": that is the --node field of a file
        add_connection_arguments(parser)
        parser.set_defaults(run={"remove": run_remove, "transfer": run_transfer, "promote": run_promote}[name])


async def run_serve(args: argparse.Namespace) -> int:
    """``raft serve``."""
    return await serve(settings_from(args))


async def run_status(args: argparse.Namespace) -> int:
    """``raft status``: exit 1 if no member answers, or none leads."""
    async with open_cluster(settings_from(args)) as cluster:
        statuses = await cluster.statuses()
    if not any(isinstance(status, RaftStatus) for status in statuses.values()):
        raise CliError(str(cluster.no_quorum()))
    leader = leader_of(statuses)
    if args.json:
        print(json.dumps({"leader": leader.id if leader else None, "members": rows(statuses)}, indent=2))
    else:
        print(table(statuses))
    if leader is None:
        raise CliError("no leader among the members that answered")
    return 0


async def run_add(args: argparse.Namespace) -> int:
    """``raft add NODE [--learner] [--address HOST:PORT]``."""
    async with open_cluster(settings_from(args)) as cluster:
        leader = await cluster.leader_status()
        if args.member in leader.members + leader.learners:
            raise CliError(
                f"{args.member} is already a member" + (" (a learner)" if args.member in leader.learners else "")
            )
        if args.address is not None:
            host, port = parse_address(args.address, "--address")
            for member in leader.members:
                cluster.system.remote(member, PEERS).cast(("learn", args.member, host, port))
        client = cluster.client()
        await cluster.run(client.add_learner(args.member) if args.learner else client.add_member(args.member))
    print(f"added {args.member}" + (" as a learner" if args.learner else ""))
    return 0


async def run_remove(args: argparse.Namespace) -> int:
    """``raft remove NODE``."""
    async with open_cluster(settings_from(args)) as cluster:
        leader = await cluster.leader_status()
        _known(leader, args.member)
        await cluster.run(cluster.client().remove_member(args.member))
    print(f"removed {args.member}")
    return 0


async def run_transfer(args: argparse.Namespace) -> int:
    """``raft transfer NODE``: returns once ``NODE`` leads."""
    async with open_cluster(settings_from(args)) as cluster:
        leader = await cluster.leader_status()
        _known(leader, args.member)
        if leader.id != args.member:
            await cluster.run(cluster.client().transfer_leadership(args.member))
            await _wait_leads(cluster, args.member)
    print(f"{args.member} leads")
    return 0


async def run_promote(args: argparse.Namespace) -> int:
    """``raft promote NODE``: refused, with how far behind it is, while the learner has not caught up."""
    async with open_cluster(settings_from(args)) as cluster:
        leader = await cluster.leader_status()
        if args.member not in leader.learners:
            _known(leader, args.member)
            raise CliError(f"{args.member} is a voter already")
        await cluster.run(cluster.client().promote(args.member))
    print(f"promoted {args.member}")
    return 0


def _known(leader: RaftStatus, node: str) -> None:
    if node not in leader.members + leader.learners:
        names = ",".join(leader.members) + (f" and the learners {','.join(leader.learners)}" if leader.learners else "")
        raise CliError(f"unknown member {node}: the members are {names}")


async def _wait_leads(cluster: Cluster, node: str) -> None:
    with anyio.move_on_after(cluster.timeout):
        while True:
            status = await cluster.status(node)
            if isinstance(status, RaftStatus) and status.role == "leader":
                return
            await anyio.sleep(0.05)
    raise CliError(f"{node} did not take the leadership within {cluster.timeout:g}s")
