"""``TcpNetwork``: join an ActorSystem to other OS processes over TCP."""

from __future__ import annotations

from typing import Any

from .._core import ActorSystem
from ._frames import DEFAULT_MAX_FRAME_SIZE
from ._node import Node
from ._tcp import TcpTransport


class TcpNetwork:
    """Joins one ActorSystem to a TCP network of nodes that share a secret.

    ``ActorSystem(node="a", network=TcpNetwork(port=9001, secret=s, peers={"b": ("127.0.0.1", 9002)}))``.
    Its keyword arguments are :class:`TcpTransport`'s (listen address, the
    secret, where the peers listen, TLS contexts, buffer limits, backoff).
    One ``TcpNetwork`` serves one system.

    Attributes:
        transport: the TCP endpoint (its ``port`` is known once the system runs).
        node: the system's ``Node`` once it joined (for its ``statistics``), else ``None``.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, **options: Any
    ) -> None:
        self.transport = TcpTransport(host, port, max_frame_size=max_frame_size, **options)
        self._max_message_size = max_frame_size
        self._attached = False
        self.node: Node | None = None

    async def attach(self, system: ActorSystem) -> Node:
        """Join ``system`` as ``system.node``; used by ``ActorSystem(network=...)``."""
        if self._attached:
            raise ValueError("a TcpNetwork serves one ActorSystem; make one per system")
        self._attached = True
        self.node = await Node.join(
            system, self.transport, max_size=self._max_message_size, tick_time=self.transport.options.tick_time
        )
        self.transport.on_connect_failed = self.node.on_connect_failed
        return self.node
