"""A node in its own OS process, driven over the network by ``test_tcp.py``.

Usage: ``python tcp_node_process.py NODE SECRET_HEX PARENT PARENT_PORT``.

It listens on a free port of 127.0.0.1, prints ``listening PORT`` on stdout,
then obeys the frames it receives:

- ``peer NAME PORT``: NAME listens on 127.0.0.1:PORT;
- ``send NAME COUNT``: send COUNT frames ``NODE:i`` to NAME;
- ``stop``: leave the network and exit with status 0;
- anything else, from X: report it to PARENT as ``NODE|X|frame``.

It exits with status 2 if not stopped within a minute, so it never lingers.
"""

from __future__ import annotations

import sys

import anyio
import structlog

from genstatem.net import TcpTransport

LIFETIME = 60.0


async def main(node: str, secret: bytes, parent: str, parent_port: int) -> int:
    addresses = {parent: ("127.0.0.1", parent_port)}
    transport = TcpTransport("127.0.0.1", 0, secret=secret, peers=addresses, reconnect_max_delay=0.5)
    stop = anyio.Event()

    def on_frame(peer: str, frame: bytes) -> None:
        words = frame.split()
        if words[:1] == [b"peer"] and len(words) == 3:
            addresses[words[1].decode()] = ("127.0.0.1", int(words[2]))
        elif words[:1] == [b"send"] and len(words) == 3:
            for i in range(int(words[2])):
                transport.send(words[1].decode(), f"{node}:{i}".encode())
        elif frame == b"stop":
            stop.set()
        else:
            transport.send(parent, f"{node}|{peer}|".encode() + frame)

    def on_peer(peer: str) -> None:
        pass

    await transport.start(node, on_frame, on_peer, on_peer)
    try:
        print(f"listening {transport.port}", flush=True)
        with anyio.move_on_after(LIFETIME):
            await stop.wait()
            return 0
        return 2
    finally:
        await transport.stop()


if __name__ == "__main__":
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    node_name, secret_hex, parent_name, port = sys.argv[1:5]
    sys.exit(anyio.run(main, node_name, bytes.fromhex(secret_hex), parent_name, int(port)))
