"""A probe actor for the link and monitor tests: it does what it is told and records what it hears."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

import genstatem as gs


class Record:
    """What a probe heard, in order: every ``Info`` content, ``("terminate", reason)``, and marks.

    ``wait_for`` waits, without sleeping, until an entry matches.
    """

    def __init__(self) -> None:
        self.entries: list[Any] = []
        self._changed: anyio.Event | None = None

    def add(self, entry: Any) -> None:
        self.entries.append(entry)
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_for(self, matches: Callable[[Any], bool]) -> Any:
        """The first entry that ``matches``, once there is one."""
        while True:
            for entry in self.entries:
                if matches(entry):
                    return entry
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    def exits(self) -> list[gs.Exit]:
        return [entry for entry in self.entries if isinstance(entry, gs.Exit)]

    def downs(self) -> list[gs.Down]:
        return [entry for entry in self.entries if isinstance(entry, gs.Down)]

    def terminated(self) -> list[Any]:
        return [entry[1] for entry in self.entries if isinstance(entry, tuple) and entry[:1] == ("terminate",)]


class Probe(gs.GenStateMachine):
    """Runs the link and monitor operations it is called with; records infos and terminate.

    ``init`` takes a :class:`Record` and, optionally, ``(record, "fail")`` to
    fail its ``init``. Calls: ``("link", ref)``, ``("unlink", ref)``,
    ``("monitor", ref)`` (replies the monitor), ``("demonitor", monitor)``,
    ``("start_link", cls, arg)`` (replies the ref, or the ``StartError``),
    ``("send", ref, msg)``, ``"ping"``. Casts: ``"crash"``, ``("stop", reason)``,
    ``("block", event)`` (waits for ``event``), ``("block_then", event, call)``
    (waits, then runs ``call`` as if called), and ``"hang"`` (records
    ``"hanging"`` and waits forever).
    """

    async def init(self, arg: Any) -> gs.Init:
        if isinstance(arg, tuple):
            arg, how = arg
            if how == "fail":
                raise RuntimeError("init failed")
        self.record: Record = arg
        return gs.Init("up", None)

    def _do(self, request: Any) -> Any:
        match request:
            case ("link", ref):
                self.link(ref)
            case ("unlink", ref):
                self.unlink(ref)
            case ("monitor", ref):
                return self.monitor(ref)
            case ("demonitor", monitor):
                self.demonitor(monitor)
            case ("send", ref, msg):
                ref.send(msg)
            case "ping":
                return "pong"
            case _:
                raise ValueError(f"probe: unknown request {request!r}")
        return None

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Call(caller), ("start_link", cls, arg):
                try:
                    ref = await self.start_link(cls, arg)
                except gs.StartError as exc:
                    return gs.KeepState(actions=gs.Reply(caller, exc))
                return gs.KeepState(actions=gs.Reply(caller, ref))
            case gs.Call(caller), request:
                return gs.KeepState(actions=gs.Reply(caller, self._do(request)))
            case gs.Info(), message:
                self.record.add(message)
            case gs.Cast(), "crash":
                raise RuntimeError("probe crashed")
            case gs.Cast(), ("stop", reason):
                return gs.Stop(reason)
            case gs.Cast(), ("block", event):
                await event.wait()
            case gs.Cast(), ("block_then", event, request):
                await event.wait()
                self._do(request)
            case gs.Cast(), "hang":
                self.record.add("hanging")
                await anyio.sleep_forever()
        return None

    async def terminate(self, reason: Any, state: Any, data: Any) -> None:
        self.record.add(("terminate", reason))


class TrappingProbe(Probe):
    """A probe that traps exits."""

    trap_exits = True


async def start_probe(system: gs.ActorSystem, cls: type[Probe] = Probe) -> tuple[gs.ActorRef, Record]:
    """A started probe of ``cls`` and its record."""
    record = Record()
    ref = await system.start(cls, record)
    assert ref is not None
    return ref, record
