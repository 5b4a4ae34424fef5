"""Two nodes pinging each other: the same actor code in memory, simulated, or over TCP.

    python examples/ping_pong.py              # two OS processes on 127.0.0.1, over TCP
    python examples/ping_pong.py memory       # two nodes in this process

Each node runs a ``Pinger`` registered as ``"pinger"``. Every ``interval``
seconds it casts a ping to the other node's pinger, which casts a pong back.
It monitors its peer, so when the connection is lost it hears
``"noconnection"`` and watches again once the peer is back.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from typing import Any

import anyio
import structlog

import genstatem as gs
from genstatem.net import MemoryNetwork, TcpNetwork


class Pinger(gs.GenStateMachine):
    """Pings the ``"pinger"`` on node ``peer`` every ``interval`` seconds and counts pongs."""

    async def init(self, arg: tuple[str, float]) -> gs.Init:
        peer, interval = arg
        data = {"peer": peer, "interval": interval, "pings": 0, "pongs": 0, "pinged_by": 0, "downs": []}
        return gs.Init("watching", data, [gs.GenericTimeout("ping", interval), gs.NextEvent(gs.Internal(), "watch")])

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        peer_ref = self.system.remote(data["peer"], "pinger")
        match event_type, content:
            case gs.Internal(), "watch":
                self.monitor(peer_ref)
                return None
            case gs.GenericTimeout("ping"), _:
                peer_ref.cast(("ping", self.ref))
                return gs.KeepState({**data, "pings": data["pings"] + 1}, gs.GenericTimeout("ping", data["interval"]))
            case gs.Cast(), ("ping", sender):
                sender.cast("pong")
                return gs.KeepState({**data, "pinged_by": data["pinged_by"] + 1})
            case gs.Cast(), "pong":
                return gs.KeepState({**data, "pongs": data["pongs"] + 1})
            case gs.Info(), gs.Down(reason=reason):
                # the peer is gone or unreachable: look again in a second
                downs = [*data["downs"], reason if isinstance(reason, str) else repr(reason)]
                return gs.KeepState({**data, "downs": downs}, gs.GenericTimeout("watch", data["interval"]))
            case gs.GenericTimeout("watch"), _:
                return gs.KeepState(actions=gs.NextEvent(gs.Internal(), "watch"))
            case gs.Call(caller), "stats":
                stats = {key: data[key] for key in ("pings", "pongs", "pinged_by", "downs")}
                return gs.KeepState(actions=gs.Reply(caller, stats))
        return None


async def run_in_memory(seconds: float = 2.0) -> dict[str, Any]:
    """Two nodes in this process, on a MemoryNetwork."""
    network = MemoryNetwork()
    async with gs.ActorSystem(node="a", network=network) as a, gs.ActorSystem(node="b", network=network) as b:
        ping_a = await a.start(Pinger, ("b", 0.2), name="pinger")
        ping_b = await b.start(Pinger, ("a", 0.2), name="pinger")
        assert ping_a is not None
        assert ping_b is not None
        await anyio.sleep(seconds)
        return {"a": await ping_a.call("stats"), "b": await ping_b.call("stats")}


async def run_node(name: str, port: int, peer: str, peer_port: int, seconds: float, secret: bytes) -> None:
    """One node of the TCP demo: serve on ``port``, ping ``peer``, print stats as JSON."""
    network = TcpNetwork("127.0.0.1", port, secret=secret, peers={peer: ("127.0.0.1", peer_port)})
    async with gs.ActorSystem(node=name, network=network) as system:
        pinger = await system.start(Pinger, (peer, 0.2), name="pinger")
        assert pinger is not None
        await anyio.sleep(seconds)
        print(json.dumps({"node": name, **await pinger.call("stats")}), flush=True)
        await anyio.sleep(0.5)  # let the peer ask its last questions before this node leaves


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_over_tcp(seconds: float = 2.0) -> list[dict[str, Any]]:
    """Two OS processes, nodes ``a`` and ``b``, on 127.0.0.1."""
    port_a, port_b = free_port(), free_port()
    secret = os.urandom(16).hex()
    commands = [
        [sys.executable, __file__, "node", "a", str(port_a), "b", str(port_b), str(seconds), secret],
        [sys.executable, __file__, "node", "b", str(port_b), "a", str(port_a), str(seconds), secret],
    ]
    nodes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for command in commands]
    results = []
    for node in nodes:
        out, _ = node.communicate(timeout=seconds + 30)
        if node.returncode != 0:
            raise RuntimeError(f"node exited with {node.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def quiet_logs() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def main(argv: list[str]) -> None:
    quiet_logs()
    if argv[:1] == ["node"]:
        name, port, peer, peer_port, seconds, secret = argv[1:]
        anyio.run(run_node, name, int(port), peer, int(peer_port), float(seconds), secret.encode())
    elif argv[:1] == ["memory"]:
        for node, stats in anyio.run(run_in_memory).items():
            print(f"node {node}: {stats}")
    else:
        print("starting nodes a and b as two processes on 127.0.0.1 ...")
        for stats in run_over_tcp():
            print(f"node {stats.pop('node')}: {stats}")


if __name__ == "__main__":
    main(sys.argv[1:])
