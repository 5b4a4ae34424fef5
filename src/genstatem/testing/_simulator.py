"""The simulator: many nodes in one process, on virtual time, with a hostile network.

A seeded random generator decides every delay, drop, duplicate and
reordering, and virtual time makes minutes of timeouts take milliseconds, so
a run is a pure function of its seed: the same seed gives the same trace,
event for event. A failing seed is therefore a bug report that replays.

    async def scenario(sim: Simulation) -> None:
        await sim.start_node("a", setup_a)
        await sim.start_node("b", setup_b)
        sim.partition(["a"], ["b"])
        await sim.sleep(10)
        sim.heal()

    trace = Simulation.run(scenario, seed=7)

Nodes run on the asyncio backend only (the virtual clock is an asyncio loop).
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import anyio
import attrs
from anyio.abc import TaskGroup

from .._core import ActorSystem, TraceEvent
from ..net import DEFAULT_TICK_TIME, Codec, FrameHandler, Node, PeerHandler, ignore_frame, ignore_peer, register
from ..statem import EventTimeout, GenericTimeout, StateTimeout
from ._records import MessageRecord
from ._virtual_time import VirtualTimeEventLoop

T = TypeVar("T")
Setup = Callable[[ActorSystem], Awaitable[None]]

__all__ = ["Faults", "SimRecord", "Simulation", "register"]


@attrs.define
class Faults:
    """What the network does to each message; change it at any time during a run.

    Attributes:
        drop: probability a message is lost.
        duplicate: probability a message is delivered twice.
        reorder: probability a message may overtake earlier ones on its link
            (otherwise messages between two nodes keep their order).
        delay: ``(min, max)`` seconds a delivery takes, drawn uniformly.
    """

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: tuple[float, float] = (0.001, 0.005)


@attrs.frozen
class SimRecord:
    """One line of a simulation's trace.

    ``kind`` is one of ``"deliver"``, ``"drop"`` (``detail`` says why),
    ``"event"``, ``"timeout"``, ``"transition"``, ``"node"`` (start, crash,
    restart, stop) and ``"network"`` (partition, heal, disconnect).
    """

    time: float
    kind: str
    node: str
    detail: str
    peer: str = ""


class _SimNode:
    __slots__ = ("crashed", "done", "name", "setup", "stop", "system", "transport")

    def __init__(self, name: str, setup: Setup) -> None:
        self.name = name
        self.setup = setup
        self.system: ActorSystem | None = None
        self.transport: _SimTransport | None = None
        self.stop = anyio.Event()
        self.done = anyio.Event()
        self.crashed = False


class Simulation:
    """Runs nodes on one virtual-time loop and decides the fate of every message.

    Use ``Simulation.run(scenario, seed=...)`` from a plain test, or
    ``async with Simulation(seed) as sim:`` inside a coroutine already running
    on a :class:`VirtualTimeEventLoop`.

    Args:
        seed: seeds every random choice of the run.
        faults: the network's initial behaviour (reliable, small delays by default).
        trace_actors: also record every actor event and transition.
        tick_time: seconds of virtual time a connected node may be silent
            before it is declared down, as on every network; ``None`` never.
    """

    def __init__(
        self,
        seed: int,
        *,
        faults: Faults | None = None,
        trace_actors: bool = True,
        tick_time: float | None = DEFAULT_TICK_TIME,
    ) -> None:
        self.seed = seed
        self.tick_time = tick_time
        self.random = random.Random(seed)
        self.faults = faults or Faults()
        self.trace: list[SimRecord] = []
        self.trace_actors = trace_actors
        self.delivered = 0
        self._nodes: dict[str, _SimNode] = {}
        self._endpoints: dict[str, _SimTransport] = {}
        self._blocked: dict[tuple[str, str], None] = {}
        self._epochs: dict[tuple[str, str], int] = {}
        self._last_delivery: dict[tuple[str, str], float] = {}
        self._creations: dict[str, int] = {}
        self._task_group: TaskGroup | None = None
        self._observers: list[Callable[[SimRecord], None]] = []
        self.failure: Exception | None = None
        self._failed: anyio.Event | None = None

    def _next_creation(self, node: str) -> int:
        """The incarnation number of ``node`` starting now: counted, not drawn, so runs replay alike."""
        self._creations[node] = self._creations.get(node, 0) + 1
        return self._creations[node]

    def observe(self, observer: Callable[[SimRecord], None]) -> None:
        """Call ``observer(record)`` after every step of the run (each trace record).

        For checking invariants on every step rather than only at the end: the
        first exception an observer raises is kept as ``failure``; the
        scenario's current ``sleep`` ends at that step and raises it, and so
        does leaving the simulation.
        """
        self._observers.append(observer)

    # -- running -------------------------------------------------------------------

    @classmethod
    def run(
        cls, scenario: Callable[[Simulation], Awaitable[T]], seed: int, **options: Any
    ) -> tuple[T, list[SimRecord]]:
        """Run ``scenario`` on a fresh virtual-time loop; return its result and the trace."""

        async def main() -> tuple[T, list[SimRecord]]:
            async with cls(seed, **options) as sim:
                result = await scenario(sim)
            return result, sim.trace

        return anyio.run(main, backend_options={"loop_factory": VirtualTimeEventLoop})

    async def __aenter__(self) -> Simulation:
        self._failed = anyio.Event()
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        for node in reversed(list(self._nodes.values())):
            node.stop.set()
        for node in list(self._nodes.values()):
            await node.done.wait()
        assert self._task_group is not None
        await self._task_group.__aexit__(None, None, None)
        if self.failure is not None and exc_info[0] is None:
            raise self.failure

    def now(self) -> float:
        """The virtual time."""
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (instantly); raises an observer's failure at once."""
        assert self._failed is not None
        with anyio.move_on_after(seconds):
            await self._failed.wait()
        if self.failure is not None:
            raise self.failure

    # -- nodes -----------------------------------------------------------------

    async def start_node(self, name: str, setup: Setup) -> ActorSystem:
        """Start node ``name`` and run ``setup(system)`` on it; ``restart`` runs ``setup`` again."""
        if name in self._nodes and not self._nodes[name].done.is_set():
            raise ValueError(f"node {name!r} is already running")
        node = _SimNode(name, setup)
        self._nodes[name] = node
        started = anyio.Event()
        assert self._task_group is not None, "use 'async with Simulation(seed)' or Simulation.run"
        self._task_group.start_soon(self._host, node, started)
        await started.wait()
        assert node.system is not None
        self._record("node", name, "start")
        return node.system

    async def _host(self, node: _SimNode, started: anyio.Event) -> None:
        tracer = (lambda event: self._on_trace(node.name, event)) if self.trace_actors else None
        try:
            async with ActorSystem(node=node.name, network=_SimNetwork(self), tracer=tracer) as system:
                node.system = system
                await node.setup(system)
                started.set()
                await node.stop.wait()
                if node.crashed:
                    for ref in reversed(system.actors()):
                        system.exit(ref, "kill")
                    for ref in system.actors():
                        await ref.wait_exit()
        finally:
            started.set()
            node.done.set()

    def system(self, name: str) -> ActorSystem:
        """The running ActorSystem of node ``name``."""
        node = self._nodes[name]
        if node.system is None or node.done.is_set():
            raise LookupError(f"node {name!r} is not running")
        return node.system

    async def crash(self, name: str) -> None:
        """Crash node ``name``: every actor dies at once, with no ``terminate`` and no last words.

        Peers see the connection lost (``"noconnection"``); messages in flight
        to and from the node are lost.
        """
        node = self._nodes[name]
        self._record("node", name, "crash")
        if node.transport is not None:
            node.transport.crashed = True
            self._leave(node.transport)
        node.crashed = True
        node.stop.set()
        await node.done.wait()

    async def restart(self, name: str) -> ActorSystem:
        """Start a crashed or stopped node again with its setup (what it persisted is the caller's)."""
        node = self._nodes[name]
        if not node.done.is_set():
            raise ValueError(f"node {name!r} is still running: crash or stop it first")
        system = await self.start_node(name, node.setup)
        self._record("node", name, "restart")
        return system

    async def stop_node(self, name: str) -> None:
        """Stop node ``name`` cleanly (its actors terminate with ``"shutdown"``)."""
        node = self._nodes[name]
        self._record("node", name, "stop")
        node.stop.set()
        await node.done.wait()

    # -- faults ----------------------------------------------------------------------

    def partition(self, *groups: Iterable[str], one_way: bool = False, silent: bool = False) -> None:
        """Cut the network between groups of nodes.

        Symmetric by default: no message crosses between groups, and both
        sides see their connections lost. With ``one_way=True`` (two groups),
        only messages from the first group to the second are lost, silently.
        With ``silent=True``, no message crosses and no side is told:
        connections stay up with nothing flowing, until the nodes' ticks find
        the silence (within ``tick_time``) and drop them.
        """
        sides = [list(group) for group in groups]
        how = (" one-way" if one_way else "") + (" silent" if silent else "")
        self._record("network", "", f"partition {sides}{how}")
        for i, left in enumerate(sides):
            for right in sides[i + 1 :]:
                for a in left:
                    for b in right:
                        self._blocked[(a, b)] = None
                        if not one_way:
                            self._blocked[(b, a)] = None
                            if not silent:
                                self._cut(a, b)
                if one_way:
                    return

    def heal(self) -> None:
        """Remove every partition."""
        self._record("network", "", "heal")
        self._blocked.clear()

    def disconnect(self, a: str, b: str) -> None:
        """Drop the connection between ``a`` and ``b``: in-flight messages are lost, both see it.

        Recorded in the trace as a ``"network"`` record, like every fault.
        """
        self._record("network", a, "disconnect", b)
        self._cut(a, b)

    def _cut(self, a: str, b: str) -> None:
        """Drop the connection between ``a`` and ``b`` as part of a fault already recorded."""
        pair = (min(a, b), max(a, b))
        self._epochs[pair] = self._epochs.get(pair, 0) + 1
        for here, there in ((a, b), (b, a)):
            endpoint = self._endpoints.get(here)
            if endpoint is not None and there in endpoint.connected:
                del endpoint.connected[there]
                endpoint.on_peer_down(there)

    # -- the network -------------------------------------------------------------

    def _join(self, endpoint: _SimTransport) -> None:
        self._endpoints[endpoint.node] = endpoint

    def _leave(self, endpoint: _SimTransport) -> None:
        if self._endpoints.get(endpoint.node) is endpoint:
            del self._endpoints[endpoint.node]
        for other in list(self._endpoints.values()):
            if endpoint.node in other.connected:
                self._cut(other.node, endpoint.node)

    def _route(self, sender: _SimTransport, receiver: str, frame: bytes) -> None:
        target = self._endpoints.get(receiver)
        if target is None:
            self._record("drop", sender.node, "no such node", receiver)
            _running_loop().call_soon(sender.on_peer_down, receiver)  # the connect fails
            return
        if receiver not in sender.connected:
            sender.connected[receiver] = None
            target.connected[sender.node] = None
            sender.on_peer_up(receiver)
            target.on_peer_up(sender.node)
        if (sender.node, receiver) in self._blocked:
            self._record("drop", sender.node, "partitioned: " + self._label(target, sender.node, frame), receiver)
            return
        faults, rnd = self.faults, self.random
        if faults.drop and rnd.random() < faults.drop:
            self._record("drop", sender.node, "lost: " + self._label(target, sender.node, frame), receiver)
            return
        copies = 2 if faults.duplicate and rnd.random() < faults.duplicate else 1
        pair = (min(sender.node, receiver), max(sender.node, receiver))
        epoch = self._epochs.get(pair, 0)
        link = (sender.node, receiver)
        loop = _running_loop()
        for _ in range(copies):
            at = loop.time() + rnd.uniform(*faults.delay)
            if not (faults.reorder and rnd.random() < faults.reorder):
                # strictly later than the link's last delivery: the loop's timer heap
                # does not keep the order of timers due at the same instant
                last = self._last_delivery.get(link, -math.inf)
                at = max(at, math.nextafter(last, math.inf))
                self._last_delivery[link] = at
            loop.call_at(at, self._deliver, sender.node, receiver, epoch, frame)

    def _deliver(self, sender: str, receiver: str, epoch: int, frame: bytes) -> None:
        target = self._endpoints.get(receiver)
        pair = (min(sender, receiver), max(sender, receiver))
        if target is None or self._epochs.get(pair, 0) != epoch:
            self._record("drop", sender, "connection lost in flight", receiver)
            return
        self.delivered += 1
        self._record("deliver", sender, self._label(target, sender, frame), receiver)
        target.on_frame(sender, frame)

    def _label(self, target: _SimTransport, sender: str, frame: bytes) -> str:
        try:
            return repr(target.codec.decode(frame))
        except Exception as exc:  # a bad frame is still recorded, then refused by the node
            return f"<undecodable {len(frame)} bytes: {exc}>"

    # -- the trace ---------------------------------------------------------------

    def _record(self, kind: str, node: str, detail: str, peer: str = "") -> None:
        record = SimRecord(round(self.now(), 9), kind, node, detail, peer)
        self.trace.append(record)
        for observer in self._observers:
            try:
                observer(record)
            except Exception as exc:
                if self.failure is None:
                    self.failure = exc
                    if self._failed is not None:
                        self._failed.set()

    def _on_trace(self, node: str, event: TraceEvent) -> None:
        kind = event.kind
        if kind == "event" and isinstance(event.event_type, EventTimeout | StateTimeout | GenericTimeout):
            kind = "timeout"
        detail = f"{event.actor!r} {event.state!r} {event.event_type!r} {event.content!r}"
        if event.kind in ("transition", "postpone"):
            detail += f" -> {event.next_state!r}"
        self._record(kind, node, detail)

    def records(self, *kinds: str) -> list[SimRecord]:
        """The trace, only the given kinds (all without arguments)."""
        return [record for record in self.trace if not kinds or record.kind in kinds]

    def messages(self) -> list[MessageRecord]:
        """Deliveries and drops between nodes, for ``sequence_diagram``."""
        return [
            MessageRecord(record.time, record.node, record.peer, record.detail, dropped=record.kind == "drop")
            for record in self.trace
            if record.kind in ("deliver", "drop")
        ]


class _SimNetwork:
    """Joins one node to a simulation (the core's ``Network`` protocol)."""

    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation

    async def attach(self, system: ActorSystem) -> Node:
        transport = _SimTransport(self.simulation)
        node = await Node.join(
            system,
            transport,
            creation=self.simulation._next_creation(system.node),
            tick_time=self.simulation.tick_time,
        )
        transport.codec = node.codec  # before any frame arrives: deliveries are later loop callbacks
        sim_node = self.simulation._nodes.get(system.node)
        if sim_node is not None:
            sim_node.transport = transport
        return node


class _SimTransport:
    """One node's end of the simulated network (the ``Transport`` protocol)."""

    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation
        self.codec = Codec()  # replaced by the node's own once it has joined
        self.node = ""
        self.crashed = False
        self.connected: dict[str, None] = {}
        self.on_frame: FrameHandler = ignore_frame
        self.on_peer_up: PeerHandler = ignore_peer
        self.on_peer_down: PeerHandler = ignore_peer

    async def start(
        self, node: str, on_frame: FrameHandler, on_peer_up: PeerHandler, on_peer_down: PeerHandler
    ) -> None:
        if node in self.simulation._endpoints:
            raise ValueError(f"a node named {node!r} is already on this network")
        self.node = node
        self.on_frame, self.on_peer_up, self.on_peer_down = on_frame, on_peer_up, on_peer_down
        self.simulation._join(self)

    def send(self, peer: str, frame: bytes) -> bool:
        if not self.crashed:
            self.simulation._route(self, peer, frame)
        return True

    async def drain(self, peer: str) -> None:
        return None

    def disconnect(self, peer: str) -> None:
        self.simulation.disconnect(self.node, peer)

    async def stop(self) -> None:
        self.simulation._leave(self)


def _running_loop() -> Any:
    import asyncio

    return asyncio.get_running_loop()
