"""Workers for the supervisor tests: they record what happens to them in a shared journal."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import attrs

import genstatem as gs


class Crash(Exception):
    """What a worker raises when told to crash."""


class Journal:
    """Every worker's ``("init", id)`` and ``("terminate", id, reason)``, in order.

    ``plan(id, *outcomes)`` queues what the next inits of ``id`` do:
    ``"ok"``, ``"fail"`` (raise), ``"ignore"`` or ``"stop"``; after the
    queue runs out they succeed, unless ``always(id, outcome)`` says otherwise.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[Any, ...]] = []
        self._plans: dict[Any, deque[str]] = {}
        self._always: dict[Any, str] = {}
        self._changed: anyio.Event | None = None

    def add(self, *entry: Any) -> None:
        self.entries.append(entry)
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def plan(self, id: Any, *outcomes: str) -> None:
        self._plans.setdefault(id, deque()).extend(outcomes)

    def always(self, id: Any, outcome: str) -> None:
        self._always[id] = outcome

    def next_init(self, id: Any) -> str:
        queued = self._plans.get(id)
        if queued:
            return queued.popleft()
        return self._always.get(id, "ok")

    async def wait_for(self, done: Callable[[list[tuple[Any, ...]]], bool]) -> None:
        """Return once ``done(entries)`` holds (checked after every entry; no sleeping)."""
        while not done(self.entries):
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    def inits(self, id: Any) -> int:
        return sum(1 for entry in self.entries if entry[:2] == ("init", id))

    def events(self) -> list[tuple[Any, ...]]:
        """Entries with exception reasons replaced by their class name, for comparing."""
        return [
            tuple(type(part).__name__ if isinstance(part, BaseException) else part for part in entry)
            for entry in self.entries
        ]

    def clear(self) -> None:
        self.entries.clear()


@attrs.frozen
class Job:
    """A worker's start argument."""

    id: Any
    journal: Journal


class Worker(gs.GenStateMachine):
    """Answers ``"ping"`` with ``("pong", id)``; casts ``"crash"`` and ``("exit", reason)`` end it."""

    async def init(self, job: Job) -> Any:
        self.job = job
        outcome = job.journal.next_init(job.id)
        job.journal.add("init", job.id, outcome)
        if outcome == "fail":
            raise Crash(f"init of {job.id!r} failed")
        if outcome == "ignore":
            return gs.Ignore()
        if outcome == "stop":
            return gs.Stop("no")
        return gs.Init("working", job)

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Call(caller), "ping":
                return gs.KeepState(actions=gs.Reply(caller, ("pong", self.job.id)))
            case gs.Cast(), "crash":
                raise Crash(f"{self.job.id!r} crashed")
            case gs.Cast(), ("exit", reason):
                return gs.Stop(reason)
        return None

    async def terminate(self, reason: Any, state: Any, data: Any) -> None:
        self.job.journal.add("terminate", self.job.id, reason)


class HangingWorker(Worker):
    """A worker whose ``terminate`` never returns."""

    async def terminate(self, reason: Any, state: Any, data: Any) -> None:
        self.job.journal.add("terminate", self.job.id, reason)
        await anyio.sleep_forever()


class RaisingWorker(Worker):
    """A worker whose ``terminate`` raises."""

    async def terminate(self, reason: Any, state: Any, data: Any) -> None:
        self.job.journal.add("terminate", self.job.id, reason)
        raise RuntimeError("terminate failed")


class SlowWorker(Worker):
    """A worker whose ``terminate`` takes an hour (meant for virtual time); it records ``("stopping", id)`` first."""

    async def terminate(self, reason: Any, state: Any, data: Any) -> None:
        self.job.journal.add("stopping", self.job.id)
        await anyio.sleep(3600)
        self.job.journal.add("terminate", self.job.id, reason)


class TrappingWorker(Worker):
    """A worker that traps exits."""

    trap_exits = True


def worker(journal: Journal, id: Any, cls: type[Worker] = Worker, **options: Any) -> gs.ChildSpec:
    """A child spec for a worker ``id`` of ``cls``."""
    return gs.ChildSpec(id, (cls, Job(id, journal)), **options)


async def children(sup: Any) -> dict[Any, gs.ActorRef | None]:
    """The supervisor's children as ``{id: ref}``, in order."""
    return {info.id: info.ref for info in await gs.Supervisor.which_children(sup)}


async def child(sup: Any, id: Any) -> gs.ActorRef:
    """The running child ``id`` of ``sup``."""
    ref = (await children(sup))[id]
    assert ref is not None, f"child {id!r} is not running"
    return ref


async def crash(sup: Any, id: Any) -> Any:
    """Crash the child ``id`` and wait until its supervisor has handled the exit; return its reason."""
    ref = await child(sup, id)
    ref.cast("crash")
    reason = await ref.wait_exit()
    await gs.Supervisor.count_children(sup)  # queued after the Exit: the restart is done
    return reason
