"""A process: one actor's task, mailbox, lifecycle, links and monitors.

The runtime knows nothing of state machines. It runs a *behaviour* (the
object built from the class given to ``start``, see ``_behaviour.py``)
through three stages: ``actor_init``, ``actor_run`` and
``actor_terminate``, and turns whatever ends ``actor_run`` into an exit
reason that links, monitors, waiting callers and the registry all hear
about.

An exit signal that stops a process takes effect at once: the process's
cancel scope is cancelled, so a callback that is awaiting stops there.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio.lowlevel

from ._backend import CancelScope, TimerHandle
from ._behaviour import IGNORED, Behaviour, InitStopped
from ._caller import Caller
from ._context import current_task
from ._errors import ActorExited, StartError, is_clean_exit
from ._log import get_logger
from ._mailbox import Mailbox
from ._messages import INFO, Down, Exit, Monitor
from ._ref import ActorRef, LocalRef

if TYPE_CHECKING:
    from ._system import ActorSystem
    from ._trace import TraceEvent

log = get_logger("genstatem")


class Peer(Protocol):
    """The other end of a link or a monitor: a local process or a remote proxy.

    Links and monitors only ever talk to a peer through these methods, so a
    node can stand in for a process that lives elsewhere.
    """

    @property
    def ref(self) -> ActorRef: ...

    def accept_link(self, other: Peer) -> bool:
        """Record a link from ``other``; ``False`` if this peer is gone."""
        ...

    def drop_link(self, other: Peer) -> None:
        """Forget the link from ``other`` (no signal)."""
        ...

    def exit_signal(self, sender: Peer, reason: Any, *, linked: bool = True) -> None:
        """An exit signal from ``sender``; ``linked`` ones are dropped if the link is gone."""
        ...

    def accept_monitor(self, monitor: Monitor, watcher: Peer) -> bool:
        """Be watched by ``watcher``; ``False`` if this peer is gone."""
        ...

    def drop_monitor(self, monitor: Monitor) -> None:
        """Stop being watched through ``monitor``."""
        ...

    def deliver_down(self, monitor: Monitor, ref: ActorRef, reason: Any) -> None:
        """The target watched through ``monitor`` exited with ``reason``."""
        ...


class Status(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    TERMINATING = "terminating"
    DEAD = "dead"


_NO_EXIT = object()

EVENT_BUDGET = 1000
"""How many events an actor handles before it yields to the event loop, as Erlang's reductions do.

An actor whose mailbox never empties (one that casts to itself, or drains a
long queue of sync handlers) would otherwise never give other actors, timers
or I/O a turn. Measured with ``benchmarks/bench_cast.py``: yielding every
1000 events costs under 1 % of cast throughput, and holds the loop for about
a millisecond at most.
"""


class Process:
    """The runtime's record of one actor; behaviours see it as their ``Actor`` handle."""

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
        "exit_pending",
        "tracer",
        "task",
        "_scope",
        "_exit_request",
        "_killed",
        "_budget",
    )

    def __init__(self, system: ActorSystem, behaviour: Behaviour, name: Any, mailbox_limit: int | None = None) -> None:
        self.id = system.next_actor_id()
        self.name = name
        self.system = system
        self.behaviour = behaviour
        self.ref = LocalRef(self)
        self.mailbox: Mailbox = system._loop.new_mailbox(mailbox_limit, self.ref)
        self.status = Status.STARTING
        self.exit_reason: Any = None
        # Dicts, not sets, here: their order is insertion order, so what
        # happens at exit is the same from run to run (the simulator replays).
        self.callers: dict[Caller, None] = {}
        self.links: dict[Peer, None] | None = None
        self.parent: Process | None = None
        self.monitored_by: dict[Monitor, Peer] | None = None
        self.monitoring: dict[Monitor, Peer] | None = None
        self.exit_waiters: list[Caller] | None = None
        self.tracer: Callable[[TraceEvent], None] | None = system.tracer
        self.task: object = None  # the actor's task while it runs
        self._scope: CancelScope | None = None
        self._exit_request: Any = _NO_EXIT
        self._killed = False
        self._budget = EVENT_BUDGET  # items receive() may still take before it yields
        # Raised with an exit signal that stops this process: the behaviour checks
        # it between events, so the signal takes effect before the next one.
        self.exit_pending = False

    @property
    def alive(self) -> bool:
        return self.status is not Status.DEAD

    def __repr__(self) -> str:
        return f"<Process {self.ref!r} {self.status.value}>"

    # -- lifecycle ---------------------------------------------------------

    async def main(self, arg: Any, started: Caller) -> None:
        """The actor's task: init, run, terminate, then tell everyone.

        One cancel scope covers init and run: an exit signal cancels whichever
        is under way (a scope costs memory, and an idle actor keeps its own).
        """
        self.task = current_task()  # so that a call to oneself is caught
        try:
            outcome: Any = None
            reason: Any = None
            crashed = False
            # Entered by hand, not with a with-block: that would hold a bound __exit__
            # on this frame for the actor's whole life, one more object per actor
            # for the garbage collector to walk.
            scope = self._scope = self.system._loop.cancel_scope()
            scope.__enter__()
            try:
                try:
                    outcome = await self.behaviour.actor_init(self, arg)
                except Exception as exc:
                    outcome = InitStopped(exc)
                del arg  # what init needed: the actor must not keep it alive
                if outcome is None and self._exit_request is _NO_EXIT:
                    self.status = Status.RUNNING
                    log.debug("actor started", actor=self.ref)  # no repr unless debug is on
                    started.resolve(self.ref)
                    del started  # nor the reply slot of its start
                    try:
                        reason = await self.behaviour.actor_run()
                    except Exception as exc:
                        reason, crashed = exc, True
            except BaseException as exc:
                if not scope.__exit__(type(exc), exc, exc.__traceback__):
                    raise
            else:
                scope.__exit__(None, None, None)
            if self.status is Status.STARTING:
                self._failed_to_start(outcome, started)
                return
            if self._exit_request is not _NO_EXIT and self._scope.cancel_called:
                reason, crashed = self._exit_request, False
            await self._terminate(reason, crashed)
        finally:
            if self.status is not Status.DEAD:  # cancelled from outside the runtime
                self._finish("killed")

    def _failed_to_start(self, outcome: Any, started: Caller) -> None:
        if self._exit_request is not _NO_EXIT:
            outcome = InitStopped(self._exit_request)
        reason = "normal" if outcome is IGNORED else outcome.reason
        # The caller of start/start_link hears of it from StartError, not
        # as an exit signal; anything else init linked to (children it
        # started, say) hears it, so nothing outlives a failed init unseen.
        self._finish(reason, spare=self.parent)
        if outcome is IGNORED:
            started.resolve(None)
        else:
            started.fail(self._start_error(reason))

    def _start_error(self, reason: Any) -> StartError:
        """The ``StartError`` of a failed ``init``; an exception is its cause, and logged as a crash report."""
        error = StartError(reason)
        if isinstance(reason, BaseException):
            error.__cause__ = reason
            log.error("actor failed to start", actor=repr(self.ref), reason=repr(reason), exc_info=reason)
        return error

    async def _terminate(self, reason: Any, crashed: bool) -> None:
        self.status = Status.TERMINATING
        if not self._killed:
            with self.system._loop.cancel_scope() as self._scope:
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
            self.exit_pending = True
            if self._scope is not None:
                self._scope.cancel()

    def kill(self) -> None:
        """Stop at once with ``"killed"``; no ``terminate`` runs (or the running one is cut short)."""
        if self.status is Status.DEAD or self._killed:
            return
        self._killed = True
        self._exit_request = "killed"
        self.exit_pending = True
        if self._scope is not None:
            self._scope.cancel()

    def exit_signal(self, sender: Peer, reason: Any, *, linked: bool = True) -> None:
        """An exit signal, with Erlang's rules for trapping and the parent's privilege.

        ``linked`` signals come through a link and are dropped once it is gone
        (``unlink`` won the race); ``linked=False`` is for ``"noproc"`` on link.
        """
        if self.status is Status.DEAD:
            return
        if linked:
            if not self.links or sender not in self.links:
                return
            del self.links[sender]
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

    def _finish(self, reason: Any, *, spare: Peer | None = None) -> None:
        self.status = Status.DEAD
        self.task = None
        self.exit_reason = reason
        self.system._forget(self)
        if self.callers:
            error = ActorExited(reason)
            for caller in list(self.callers):
                caller.fail(error)
            self.callers.clear()
        if self.links:
            links, self.links = self.links, None
            for other in links:
                if other is spare:
                    other.drop_link(self)
                else:
                    other.exit_signal(self, reason)
        if self.monitoring:
            for monitor, target in self.monitoring.items():
                target.drop_monitor(monitor)
            self.monitoring = None
        if self.monitored_by:
            watchers, self.monitored_by = self.monitored_by, None
            for monitor, watcher in watchers.items():
                watcher.deliver_down(monitor, self.ref, reason)
        if self.exit_waiters:
            for waiter in self.exit_waiters:
                waiter.resolve(reason)
            self.exit_waiters = None
        if is_clean_exit(reason):
            log.debug("actor stopped", actor=self.ref, reason=reason)
        elif not isinstance(reason, BaseException):
            log.info("actor stopped", actor=repr(self.ref), reason=repr(reason))

    async def wait_exit(self, timeout: float | None = None) -> Any:
        """The exit reason, once the process is dead; ``CallTimeout`` after ``timeout``."""
        if self.status is Status.DEAD:
            return self.exit_reason
        waiter = self.system._loop.new_caller()
        if self.exit_waiters is None:
            self.exit_waiters = []
        self.exit_waiters.append(waiter)
        return await waiter.wait(timeout)

    # -- the Actor handle: what a behaviour uses ---------------------------------

    async def receive(self) -> tuple[Any, Any]:
        """The oldest mailbox item, waiting for one; a pending exit signal lands first.

        Every ``EVENT_BUDGET`` items taken without waiting, it yields to the event loop.
        """
        mailbox = self.mailbox
        self._budget -= 1
        while True:
            if self.exit_pending or not self._budget:
                self._budget = EVENT_BUDGET
                await anyio.lowlevel.checkpoint()  # the exit signal's cancellation lands here
            items = mailbox.items
            if items:
                return items.popleft()
            self._budget = EVENT_BUDGET
            await mailbox.wait()

    def now(self) -> float:
        """The system's clock."""
        return self.system._loop.now()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` after ``delay`` seconds of the system's clock."""
        return self.system._loop.call_later(delay, callback)

    def link(self, ref: ActorRef) -> None:
        """Link to ``ref`` both ways."""
        self.link_peer(self.system.peer(ref))

    def unlink(self, ref: ActorRef) -> None:
        """Unlink from ``ref``, dropping its queued ``Exit``."""
        self.unlink_peer(self.system.peer(ref))

    def monitor(self, ref: ActorRef) -> Monitor:
        """Watch ``ref``."""
        return self.monitor_peer(self.system.peer(ref))

    async def start_link(
        self, cls: type[Any], arg: Any = None, *, name: Any = None, mailbox_limit: int | None = None
    ) -> ActorRef | None:
        """Start a child linked to this process, which becomes its parent."""
        system = self.system
        child = system._spawn(cls, name=name, mailbox_limit=mailbox_limit)
        child.parent = self
        self.link_peer(child)
        return await system._run_init(child, arg)

    # -- links and monitors: this process's side --------------------------------

    def link_peer(self, other: Peer) -> None:
        """Link both ways; linking to a dead actor is an exit signal ``"noproc"``."""
        if other is self:
            return
        if not other.accept_link(self):
            self.exit_signal(other, "noproc", linked=False)
            return
        if self.links is None:
            self.links = {}
        self.links[other] = None

    def unlink_peer(self, other: Peer) -> None:
        """Remove the link both ways and drop any ``Exit`` from ``other`` still queued."""
        if self.links is not None:
            self.links.pop(other, None)
        other.drop_link(self)
        ref = other.ref
        self._drop_queued(lambda content: isinstance(content, Exit) and content.ref == ref)

    def monitor_peer(self, target: Peer) -> Monitor:
        """Watch ``target``: exactly one ``Down`` arrives, ``"noproc"`` if it is gone."""
        monitor = Monitor(self.system.next_actor_id())
        if not target.accept_monitor(monitor, self):
            self.mailbox.put((INFO, Down(monitor, target.ref, "noproc")))
            return monitor
        if self.monitoring is None:
            self.monitoring = {}
        self.monitoring[monitor] = target
        return monitor

    def demonitor(self, monitor: Monitor) -> None:
        """Stop watching; no ``Down`` for ``monitor`` arrives after this."""
        target = self.monitoring.pop(monitor, None) if self.monitoring else None
        if target is not None:
            target.drop_monitor(monitor)
        self._drop_queued(lambda content: isinstance(content, Down) and content.monitor is monitor)

    # -- links and monitors: the Peer side ------------------------------------------

    def accept_link(self, other: Peer) -> bool:
        if self.status is Status.DEAD:
            return False
        if self.links is None:
            self.links = {}
        self.links[other] = None
        return True

    def drop_link(self, other: Peer) -> None:
        if self.links is not None:
            self.links.pop(other, None)

    def accept_monitor(self, monitor: Monitor, watcher: Peer) -> bool:
        if self.status is Status.DEAD:
            return False
        if self.monitored_by is None:
            self.monitored_by = {}
        self.monitored_by[monitor] = watcher
        return True

    def drop_monitor(self, monitor: Monitor) -> None:
        if self.monitored_by is not None:
            self.monitored_by.pop(monitor, None)

    def deliver_down(self, monitor: Monitor, ref: ActorRef, reason: Any) -> None:
        if self.monitoring is None or self.monitoring.pop(monitor, None) is None:
            return  # demonitored meanwhile
        self.mailbox.put((INFO, Down(monitor, ref, reason)))

    def _drop_queued(self, matches: Callable[[Any], bool]) -> None:
        items = self.mailbox.items
        if not items:
            return
        kept = [item for item in items if not (item[0] is INFO and matches(item[1]))]
        if len(kept) != len(items):
            items.clear()
            items.extend(kept)


def _safe_repr(describe: Callable[[], Any]) -> str:
    try:
        return repr(describe())
    except Exception as exc:  # a broken __repr__ must not hide the crash being logged
        return f"<unrepresentable: {exc!r}>"
