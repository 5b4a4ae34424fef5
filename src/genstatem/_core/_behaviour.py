"""The seam between the runtime and what it runs: ``Behaviour`` and its ``Actor`` handle.

The runtime runs a *behaviour* (an instance of the class given to
``start``) and knows nothing of state machines. At ``actor_init`` the
behaviour is handed an :class:`Actor`, its own actor seen from inside: the
mailbox to receive from, the clock, links and monitors. ``GenStateMachine``
is one behaviour; a ``gen_server`` could be another, written against these
two protocols alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._backend import TimerHandle
    from ._mailbox import Mailbox
    from ._messages import Monitor
    from ._ref import ActorRef, LocalRef
    from ._system import ActorSystem
    from ._trace import Tracer


class InitIgnored:
    """What ``actor_init`` returns for ``Ignore()``: no actor, no error."""


class InitStopped:
    """What ``actor_init`` returns for ``Stop(reason)``: the start fails with ``reason``."""

    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason


IGNORED = InitIgnored()
"""The one ``InitIgnored``: ``start`` returns ``None`` and no actor runs."""


class Actor(Protocol):
    """A behaviour's handle on its own actor, given to ``actor_init``.

    It is the runtime's record of the actor, seen through this protocol:
    reading an attribute costs what it costs inside the runtime, so an
    event loop built on it pays nothing for the handle. Use only what is
    documented here.
    """

    @property
    def ref(self) -> LocalRef:
        """The actor's own ref."""
        ...

    @property
    def system(self) -> ActorSystem:
        """The system the actor runs in."""
        ...

    @property
    def mailbox(self) -> Mailbox:
        """The actor's mailbox: items ``(kind, content)``, oldest first.

        ``kind`` is a ``Call(caller)``, ``CAST``, ``INFO``, ``SYSTEM`` (the
        content a :class:`SystemMessage`), or whatever a behaviour puts
        there itself (its own timers' fires, say).
        """
        ...

    @property
    def exit_pending(self) -> bool:
        """``True`` once an exit signal is stopping the actor.

        The signal lands at the actor's next await. A behaviour that takes
        items from ``mailbox.items`` without awaiting checks this between
        them and awaits ``anyio.lowlevel.checkpoint()`` when it is set, and
        also after every ``EVENT_BUDGET`` items, so that a busy actor cannot
        starve the other actors, the timers and I/O; :meth:`receive` does
        both itself.
        """
        ...

    @property
    def tracer(self) -> Tracer | None:
        """Where to report each step (``ActorRef.trace``); ``None``: tracing is off."""
        ...

    async def receive(self) -> tuple[Any, Any]:
        """The oldest mailbox item, waiting for one if need be; a pending exit lands first.

        It yields to the event loop every ``EVENT_BUDGET`` items it takes without waiting.
        """
        ...

    def now(self) -> float:
        """The system's clock, in seconds (virtual time in the simulator)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` after ``delay`` seconds of the system's clock; ``cancel()`` the handle to stop it."""
        ...

    def link(self, ref: ActorRef) -> None:
        """Link to ``ref`` both ways; a dead actor sends exit signal ``"noproc"``."""
        ...

    def unlink(self, ref: ActorRef) -> None:
        """Remove the link both ways and drop any ``Exit`` from ``ref`` still queued."""
        ...

    def monitor(self, ref: ActorRef) -> Monitor:
        """Watch ``ref``: exactly one ``(INFO, Down(monitor, ref, reason))`` arrives, ``"noproc"`` if it is gone."""
        ...

    def demonitor(self, monitor: Monitor) -> None:
        """Stop watching; no ``Down`` for ``monitor`` arrives after this."""
        ...

    async def start_link(
        self, cls: type[Any], arg: Any = None, *, name: Any = None, mailbox_limit: int | None = None
    ) -> ActorRef | None:
        """Start an actor linked to this one, as its parent, with no moment where it runs unlinked.

        ``mailbox_limit`` is as for ``ActorSystem.start``.

        Raises:
            StartError: its ``init`` failed; no exit signal reaches this actor.
            AlreadyStarted: ``name`` is taken.
        """
        ...


class Behaviour(Protocol):
    """What the runtime needs from an actor class's instances.

    The class is built with no arguments; then ``actor_init``, and if that
    returns ``None`` (the actor is up), ``actor_run``, whose result is the
    exit reason (an exception it raises is a crash), then ``actor_terminate``
    unless the actor was killed.
    """

    trap_exits: bool

    async def actor_init(self, actor: Actor, arg: Any) -> InitIgnored | InitStopped | None:
        """Run the user's ``init``; ``None`` when the actor is up."""
        ...

    def actor_run(self) -> Awaitable[Any]:
        """Handle events until the actor stops; the awaitable's result is the exit reason."""
        ...

    async def actor_terminate(self, reason: Any) -> None:
        """Run the user's ``terminate`` with ``reason``."""
        ...

    def actor_state(self) -> Any:
        """The current state, for logs."""
        ...
