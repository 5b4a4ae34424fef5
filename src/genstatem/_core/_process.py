"""A process: one actor's task, mailbox, lifecycle, links and monitors.

The runtime knows nothing of state machines. It runs a *behaviour* (the
object built from the class given to ``start``) through three stages:
``actor_init``, ``actor_run`` and ``actor_terminate``, and turns whatever
ends ``actor_run`` into an exit reason that links, monitors, waiting
callers and the registry all hear about.

An exit signal that stops a process takes effect at once: the process's
cancel scope is cancelled, so a callback that is awaiting stops there.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import structlog

from ._backend import Caller, Mailbox
from ._errors import ActorExited, StartError, is_clean_exit
from ._messages import INFO, Down, Exit, Monitor

if TYPE_CHECKING:
    from ._system import ActorSystem
    from ._trace import TraceEvent

log = structlog.get_logger("genstatem")

_ids = itertools.count(1)


class InitIgnored:
    """What ``actor_init`` returns for ``Ignore()``: no actor, no error."""


class InitStopped:
    """What ``actor_init`` returns for ``Stop(reason)``."""

    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason


IGNORED = InitIgnored()


class Behaviour(Protocol):
    """What the runtime needs from an actor class's instances."""

    trap_exits: bool

    async def actor_init(self, process: Process, arg: Any) -> InitIgnored | InitStopped | None:
        """Run the user's ``init``; ``None`` when the actor is up."""
        ...

    async def actor_run(self) -> Any:
        """Handle events until the actor stops; return the exit reason."""
        ...

    async def actor_terminate(self, reason: Any) -> None:
        """Run the user's ``terminate`` with ``reason``."""
        ...

    def actor_state(self) -> Any:
        """The current state, for logs."""
        ...


class Status(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    TERMINATING = "terminating"
    DEAD = "dead"


_NO_EXIT = object()


class Process:
    """The runtime's record of one actor."""

    __slots__ = (
        "id",
        "name",
        "system",
        "behaviour",
        "mailbox",
        "ref",
        "status",
        "exit_reason",
        "callers",
        "links",
        "parent",
        "monitored_by",
        "monitoring",
        "exit_waiters",
        "tracer",
        "_scope",
        "_exit_request",
        "_killed",
    )

    def __init__(self, system: ActorSystem, behaviour: Behaviour, name: Any) -> None:
        from ._ref import ActorRef

        self.id = next(_ids)
        self.name = name
        self.system = system
        self.behaviour = behaviour
        self.mailbox: Mailbox = system.backend.new_mailbox()
        self.ref = ActorRef(self)
        self.status = Status.STARTING
        self.exit_reason: Any = None
        self.callers: set[Caller] = set()
        self.links: set[Process] | None = None
        self.parent: Process | None = None
        # monitor -> the watcher: a process, or a callback for remote watchers
        self.monitored_by: dict[Monitor, Process] | None = None
        self.monitoring: dict[Monitor, Process] | None = None
        self.exit_waiters: list[Caller] | None = None
        self.tracer: Callable[[TraceEvent], None] | None = system.tracer
        self._scope: anyio.CancelScope | None = None
        self._exit_request: Any = _NO_EXIT
        self._killed = False

    @property
    def alive(self) -> bool:
        return self.status is not Status.DEAD

    def __repr__(self) -> str:
        return f"<Process {self.ref!r} {self.status.value}>"

    # -- lifecycle ---------------------------------------------------------

    async def main(self, arg: Any, started: Caller) -> None:
        """The actor's task: init, run, terminate, then tell everyone."""
        reason: Any = "normal"
        try:
            outcome: Any
            with anyio.CancelScope() as self._scope:
                try:
                    outcome = await self.behaviour.actor_init(self, arg)
                except Exception as exc:
                    outcome = InitStopped(exc)
            if self._exit_request is not _NO_EXIT:
                outcome = InitStopped(self._exit_request)
            if outcome is not None:
                reason = "normal" if outcome is IGNORED else outcome.reason
                self._finish(reason, notify_links=False)
                if outcome is IGNORED:
                    started.resolve(None)
                else:
                    started.fail(StartError(reason))
                return
            self.status = Status.RUNNING
            log.debug("actor started", actor=repr(self.ref))
            started.resolve(self.ref)
            await self._run_and_terminate()
        finally:
            if self.status is not Status.DEAD:  # cancelled from outside the runtime
                self._finish("killed")

    async def _run_and_terminate(self) -> None:
        crashed = False
        reason: Any
        with anyio.CancelScope() as self._scope:
            try:
                reason = await self.behaviour.actor_run()
            except Exception as exc:
                reason = exc
                crashed = True
        if self._exit_request is not _NO_EXIT and self._scope.cancel_called:
            reason = self._exit_request
            crashed = False
        self.status = Status.TERMINATING
        if not self._killed:
            with anyio.CancelScope() as self._scope:
                try:
                    await self.behaviour.actor_terminate(reason)
                except Exception as exc:
                    log.error("terminate raised", actor=repr(self.ref), reason=repr(reason), exc_info=exc)
            if self._killed:
                reason = "killed"
        if crashed:
            log.error(
                "actor crashed",
                actor=repr(self.ref),
                state=_safe_repr(self.behaviour.actor_state),
                reason=repr(reason),
                exc_info=reason,
            )
        self._finish(reason)

    def stop_now(self, reason: Any) -> None:
        """Stop at once with ``reason``, running ``terminate``: a parent's or the system's stop."""
        running = self.status is Status.STARTING or self.status is Status.RUNNING
        if running and self._exit_request is _NO_EXIT:
            self._exit_request = reason
            if self._scope is not None:
                self._scope.cancel()

    def kill(self) -> None:
        """Stop at once with ``"killed"``; no ``terminate`` runs (or the running one is cut short)."""
        if self.status is Status.DEAD or self._killed:
            return
        self._killed = True
        self._exit_request = "killed"
        if self._scope is not None:
            self._scope.cancel()

    def exit_signal(self, sender: Process, reason: Any) -> None:
        """An exit signal through a link, with Erlang's rules for trapping."""
        if self.status is Status.DEAD:
            return
        from_parent = sender is self.parent
        trapping = self.behaviour.trap_exits
        if trapping and not from_parent:
            self.mailbox.put((INFO, Exit(sender.ref, reason)))
        elif reason == "normal" and not trapping:
            return
        elif reason == "killed":
            self.kill()
        else:
            self.stop_now(reason)

    def _finish(self, reason: Any, *, notify_links: bool = True) -> None:
        self.status = Status.DEAD
        self.exit_reason = reason
        self.system._forget(self)
        if self.callers:
            error = ActorExited(reason)
            for caller in self.callers:
                caller.fail(error)
            self.callers.clear()
        if self.links:
            links, self.links = self.links, None
            for other in links:
                if other.links is not None:
                    other.links.discard(self)
                if notify_links:
                    other.exit_signal(self, reason)
        if self.monitoring:
            for monitor, target in self.monitoring.items():
                if target.monitored_by is not None:
                    target.monitored_by.pop(monitor, None)
            self.monitoring = None
        if self.monitored_by:
            watchers, self.monitored_by = self.monitored_by, None
            for monitor, watcher in watchers.items():
                if watcher.monitoring is not None:
                    watcher.monitoring.pop(monitor, None)
                watcher.mailbox.put((INFO, Down(monitor, self.ref, reason)))
        if self.exit_waiters:
            for waiter in self.exit_waiters:
                waiter.resolve(reason)
            self.exit_waiters = None
        if is_clean_exit(reason):
            log.debug("actor stopped", actor=repr(self.ref), reason=repr(reason))
        elif not isinstance(reason, BaseException):
            log.info("actor stopped", actor=repr(self.ref), reason=repr(reason))

    async def wait_exit(self) -> Any:
        if self.status is Status.DEAD:
            return self.exit_reason
        waiter = self.system.backend.new_caller()
        if self.exit_waiters is None:
            self.exit_waiters = []
        self.exit_waiters.append(waiter)
        return await waiter.wait(None)

    # -- links and monitors -------------------------------------------------

    def link(self, other: Process) -> None:
        """Link both ways; linking to a dead process is an exit signal ``"noproc"``."""
        if other is self:
            return
        if other.status is Status.DEAD:
            self.exit_signal(other, "noproc")
            return
        if self.links is None:
            self.links = set()
        if other.links is None:
            other.links = set()
        self.links.add(other)
        other.links.add(self)

    def unlink(self, other: Process) -> None:
        """Remove the link both ways and drop any ``Exit`` from ``other`` still queued."""
        if self.links is not None:
            self.links.discard(other)
        if other.links is not None:
            other.links.discard(self)
        self._drop_queued(lambda content: isinstance(content, Exit) and content.ref == other.ref)

    def monitor(self, target: Process) -> Monitor:
        """Watch ``target``: exactly one ``Down`` arrives, ``"noproc"`` if it is gone."""
        monitor = Monitor()
        if target.status is Status.DEAD:
            self.mailbox.put((INFO, Down(monitor, target.ref, "noproc")))
            return monitor
        if target.monitored_by is None:
            target.monitored_by = {}
        if self.monitoring is None:
            self.monitoring = {}
        target.monitored_by[monitor] = self
        self.monitoring[monitor] = target
        return monitor

    def demonitor(self, monitor: Monitor) -> None:
        """Stop watching; no ``Down`` for ``monitor`` arrives after this."""
        target = self.monitoring.pop(monitor, None) if self.monitoring else None
        if target is not None and target.monitored_by is not None:
            target.monitored_by.pop(monitor, None)
        self._drop_queued(lambda content: isinstance(content, Down) and content.monitor is monitor)

    def _drop_queued(self, matches: Callable[[Any], bool]) -> None:
        items = self.mailbox.items
        kept = [item for item in items if not (item[0] is INFO and matches(item[1]))]
        if len(kept) != len(items):
            items.clear()
            items.extend(kept)


def _safe_repr(describe: Callable[[], Any]) -> str:
    try:
        return repr(describe())
    except Exception as exc:  # a broken __repr__ must not hide the crash being logged
        return f"<unrepresentable: {exc!r}>"
