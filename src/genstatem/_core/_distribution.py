"""How an ActorSystem joins a network, seen from the core.

The core knows only these two protocols; ``genstatem.net`` implements them
(in memory, simulated, TCP), so the runtime stays free of any network code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._ref import ActorRef
    from ._system import ActorSystem


class Distribution(Protocol):
    """A running system's connection to other nodes."""

    def remote_ref(self, node: str, name: Any) -> ActorRef:
        """A ref to the actor registered as ``name`` on ``node``."""
        ...

    async def stop(self) -> None:
        """Leave the network."""
        ...


class Network(Protocol):
    """Something an ``ActorSystem(node=..., network=...)`` can join."""

    async def attach(self, system: ActorSystem) -> Distribution:
        """Join ``system`` (named ``system.node``) to this network."""
        ...
