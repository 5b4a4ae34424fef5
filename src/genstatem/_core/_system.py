"""``ActorSystem``: owns the actors, their names and their task group."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from contextvars import Token
from types import TracebackType
from typing import Any, Protocol, overload

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from ._backend import Backend, TimerHandle, current_backend
from ._behaviour import Behaviour
from ._context import current_system
from ._distribution import Distribution, Network
from ._errors import AlreadyStarted, CallTimeout, NoProcess
from ._log import get_logger
from ._process import Peer, Process, Status
from ._ref import ActorRef, LocalRef
from ._trace import Tracer

log = get_logger("genstatem")


class _Started(Protocol):
    """What ``init`` returns to start the actor (``Init``): it has an initial state."""

    @property
    def state(self) -> Any: ...


class _Refused(Protocol):
    """What ``init`` returns to refuse to start (``Stop``): it has a reason."""

    @property
    def reason(self) -> Any: ...


class NeverIgnores(Protocol):
    """An actor class whose ``init`` is annotated to return ``Init`` or ``Stop``, never ``Ignore``.

    ``start`` of such a class is typed to return ``ActorRef``, not
    ``ActorRef | None``: there is no ``None`` to check for. Matched by
    structure (``Init`` has a state, ``Stop`` a reason, ``Ignore`` neither),
    so the core need not import the state machine layer.
    """

    def init(self, arg: Any, /) -> Awaitable[_Started | _Refused] | _Started | _Refused: ...


KILL_GRACE = 1.0
"""Seconds a killed actor gets to be gone on exit, after ``shutdown_timeout``; then it is abandoned."""


class ActorSystem:
    """Runs actors; leaving the ``async with`` block stops every one still alive.

    Actors stop concurrently, each with ``terminate(reason="shutdown")``,
    begun newest first; those not gone within ``shutdown_timeout`` seconds
    in all are killed, so a ``terminate`` that hangs cannot hang the exit.
    One that does not end even when killed (on trio: a ``terminate`` stuck
    in a shielded cancel scope) is abandoned a second later, with an error
    logged. An actor started by another actor (``start_link``, supervisors)
    is stopped by its parent, not directly.

    Args:
        node: this system's node name, as other nodes address it.
        network: a network to join as ``node`` (``genstatem.net``); actors on
            other nodes are then reached with ``remote``.
        shutdown_timeout: seconds the actors get, together, to stop on exit.
        tracer: a tracer every actor started here gets (see ``ActorRef.trace``).
    """

    def __init__(
        self,
        *,
        node: str = "local",
        network: Network | None = None,
        shutdown_timeout: float = 5.0,
        tracer: Tracer | None = None,
    ) -> None:
        self.node = node
        self.network = network
        self.shutdown_timeout = shutdown_timeout
        self.tracer = tracer
        self._distribution: Distribution | None = None
        self._processes: dict[int, Process] = {}
        self._names: dict[Any, Process] = {}
        self._task_group: TaskGroup | None = None
        self._backend: Backend | None = None
        self._context_token: Token[ActorSystem | None] | None = None
        self._closing = False
        self._last_actor_id = 0

    @property
    def _loop(self) -> Backend:
        """The running backend's loop primitives."""
        if self._backend is None:
            raise RuntimeError("the ActorSystem is not running: use 'async with ActorSystem()'")
        return self._backend

    @property
    def closing(self) -> bool:
        """``True`` once the system has begun to stop its actors."""
        return self._closing

    async def __aenter__(self) -> ActorSystem:
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._backend = current_backend(task_group)
        self._context_token = current_system.set(self)
        try:
            await self._backend.open()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        if self.network is not None:
            try:
                self._distribution = await self.network.attach(self)
            except BaseException:
                await self.__aexit__(None, None, None)
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._task_group is not None
        try:
            with anyio.CancelScope(shield=True):
                stopped = await self._stop_all()
                if not await self._loop.wait_tasks(KILL_GRACE if stopped else 0):
                    log.error("actor tasks still running on exit: abandoned")
            if self._distribution is not None:
                # outside the shield: the network's own task groups were entered outside it too
                distribution, self._distribution = self._distribution, None
                await distribution.stop()
        finally:
            self._task_group.cancel_scope.cancel()
            await self._task_group.__aexit__(None, None, None)
            if self._context_token is not None:
                current_system.reset(self._context_token)
                self._context_token = None
        return False

    @overload
    async def start(
        self, cls: type[NeverIgnores], arg: Any = None, *, name: Any = None, mailbox_limit: int | None = None
    ) -> ActorRef: ...

    @overload
    async def start(
        self, cls: type[Any], arg: Any = None, *, name: Any = None, mailbox_limit: int | None = None
    ) -> ActorRef | None: ...

    async def start(
        self, cls: type[Any], arg: Any = None, *, name: Any = None, mailbox_limit: int | None = None
    ) -> ActorRef | None:
        """Start an actor of ``cls``; return once its ``init`` has returned.

        For type checkers, the result is ``ActorRef`` when the class's ``init``
        is annotated to return ``Init`` or ``Stop`` only (it cannot ignore),
        and ``ActorRef | None`` when its annotation allows ``Ignore``.

        Args:
            cls: the actor's class.
            arg: what its ``init`` gets.
            name: a name to register it under.
            mailbox_limit: the most messages its mailbox holds (``None``:
                unbounded). Over it, a cast or a send is dropped and counted,
                with a warning logged at most once a second, and a call raises
                ``MailboxFull`` at once; exit signals, monitors' ``Down``,
                system messages and timers always get in.

        Returns:
            its ref, or ``None`` when ``init`` returned ``Ignore()``.

        Raises:
            AlreadyStarted: ``name`` is registered to a live actor.
            StartError: ``init`` returned ``Stop``, a bad value, or raised.
            ValueError: ``mailbox_limit`` is not a positive integer.
        """
        process = self._spawn(cls, name=name, mailbox_limit=mailbox_limit)
        return await self._run_init(process, arg)

    def now(self) -> float:
        """The system's clock, in seconds: the event loop's (virtual time in the simulator).

        Raises:
            RuntimeError: the system is not running.
        """
        return self._loop.now()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` after ``delay`` seconds of the system's clock.

        Returns:
            A handle whose ``cancel()`` stops the callback if it has not run yet.

        Raises:
            RuntimeError: the system is not running.
        """
        return self._loop.call_later(delay, callback)

    def exit(self, target: ActorRef | Any, reason: Any) -> None:
        """Stop the actor ``target`` (a ref or a registered name) at once, as its parent would.

        Like ``erlang:exit/2`` from a supervisor: the exit takes effect at the
        actor's next await, ahead of what its mailbox holds, and
        ``terminate(reason)`` runs even if it traps exits. ``reason="kill"``
        kills it: no ``terminate``, and its exit reason is ``"killed"``. An
        actor already gone is left alone; ``wait_exit`` waits until it is.

        Raises:
            NoProcess: no actor is registered under that name, or the actor
                lives on another node.
        """
        process = self._resolve(target)
        if reason == "kill":
            process.kill()
        else:
            process.stop_now(reason)

    def _spawn(self, cls: type[Any], *, name: Any = None, mailbox_limit: int | None = None) -> Process:
        """Create an actor's process and take its name; ``_run_init`` starts it.

        Split in two so a parent can link to the process before it runs.
        """
        if self._task_group is None or self._closing:
            raise RuntimeError("the ActorSystem is not running (or is shutting down)")
        if mailbox_limit is not None and (
            not isinstance(mailbox_limit, int) or isinstance(mailbox_limit, bool) or mailbox_limit < 1
        ):
            raise ValueError(f"mailbox_limit must be a positive integer or None, not {mailbox_limit!r}")
        if name is not None:
            holder = self._names.get(name)
            if holder is not None:
                raise AlreadyStarted(name, holder.ref)
        behaviour: Behaviour = cls()
        process = Process(self, behaviour, name, mailbox_limit)
        self._processes[process.id] = process
        if name is not None:
            self._names[name] = process
        return process

    async def _run_init(self, process: Process, arg: Any) -> ActorRef | None:
        """Run a spawned process's task and wait for its ``init`` to return."""
        assert self._task_group is not None
        started = self._loop.new_caller()
        self._loop.spawn(process.main, arg, started)
        result: ActorRef | None = await started.wait(None)
        return result

    def next_actor_id(self) -> int:
        """A fresh actor id, unique in this system (and the same from run to run)."""
        self._last_actor_id += 1
        return self._last_actor_id

    def whereis(self, name: Any) -> LocalRef | None:
        """The live actor registered under ``name``, or ``None``."""
        process = self._names.get(name)
        return None if process is None else process.ref

    def _resolve(self, target: ActorRef | Any) -> Process:
        """The process behind a ref or a registered name.

        Raises:
            NoProcess: no actor is registered under that name, or the ref is
                to an actor of another node.
        """
        if isinstance(target, LocalRef):
            return target._process
        if isinstance(target, ActorRef):
            raise NoProcess(f"{target!r} is on another node")
        process = self._names.get(target)
        if process is None:
            raise NoProcess(f"no actor is registered as {target!r}")
        return process

    def peer(self, ref: ActorRef) -> Peer:
        """What links and monitors talk to for ``ref``: its process, or the network's proxy.

        Raises:
            NoProcess: ``ref`` is to an actor of another node and this system
                is not on a network.
        """
        if isinstance(ref, LocalRef):
            return ref._process
        if self._distribution is None:
            raise NoProcess(f"{ref!r} is on another node, and {self!r} is not on a network")
        return self._distribution.peer(ref)

    def _process_by_id(self, actor_id: int) -> Process | None:
        """The live process with this id, if any."""
        return self._processes.get(actor_id)

    def remote(self, node: str, name: Any) -> ActorRef:
        """A ref to the actor registered as ``name`` on ``node``.

        Raises:
            RuntimeError: this system is not on a network.
        """
        if node == self.node:
            process = self._names.get(name)
            if process is not None:
                return process.ref
        if self._distribution is None:
            raise RuntimeError(f"ActorSystem(node={self.node!r}) is not on a network: pass network=")
        return self._distribution.remote_ref(node, name)

    def actors(self) -> list[ActorRef]:
        """Every live actor, oldest first."""
        return [process.ref for process in self._processes.values()]

    def _forget(self, process: Process) -> None:
        self._processes.pop(process.id, None)
        if process.name is not None and self._names.get(process.name) is process:
            del self._names[process.name]

    async def _stop_all(self) -> bool:
        """Stop every actor, within ``shutdown_timeout`` (plus ``KILL_GRACE`` for the stubborn).

        Returns ``False`` when some actor had to be abandoned.

        The roots (actors with no live parent) stop concurrently, like the
        children of a supervisor with ``brutal_kill`` after a timeout; each
        parent stops its own children. What is left at the deadline is killed,
        and what survives even that is abandoned, with an error logged.
        """
        self._closing = True
        loop = self._loop
        deadline = loop.now() + self.shutdown_timeout
        while self._processes and loop.now() < deadline:
            live = list(self._processes.values())
            roots = [p for p in live if p.parent is None or not p.parent.alive]
            stopping = list(reversed(roots or live))
            for process in stopping:
                if process.alive:
                    process.stop_now("shutdown")
                    await anyio.lowlevel.checkpoint()  # its terminate begins before the next one's
            await self._wait_gone(stopping, deadline)
        left = list(self._processes.values())
        if not left:
            return True
        for process in reversed(left):
            log.warning("actor did not stop in time; killed", actor=repr(process.ref))
            process.kill()
        await self._wait_gone(left, loop.now() + KILL_GRACE)
        abandoned = [process for process in left if process.alive]
        for process in abandoned:
            log.error("actor did not stop when killed; abandoned", actor=repr(process.ref))
            self._forget(process)
        return not abandoned

    async def _wait_gone(self, processes: Iterable[Process], deadline: float) -> None:
        for process in processes:
            remaining = deadline - self._loop.now()
            if process.alive and remaining > 0:
                with contextlib.suppress(CallTimeout):  # a timer on the wait: cheaper than a cancel scope
                    await process.wait_exit(remaining)


def behaviour_of(system: ActorSystem, target: ActorRef | Any) -> Any:
    """The behaviour object (the ``GenStateMachine``, say) of a running local actor, or ``None``.

    For test harnesses that inspect a machine from outside; ``None`` while
    the actor is starting, terminating or gone, or when nothing is
    registered under the name.
    """
    try:
        process = system._resolve(target)
    except NoProcess:
        return None
    return process.behaviour if process.status is Status.RUNNING else None
