"""``GenStateMachine``: the class users subclass, and the runtime's view of it."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import Any, ClassVar, overload

from .._core import (
    IGNORED,
    Actor,
    ActorRef,
    ActorSystem,
    InitIgnored,
    InitStopped,
    Monitor,
    NeverIgnores,
    TraceEvent,
)
from ._engine import Engine
from ._errors import BadReturn
from ._results import Ignore, Init, Stop

_CALLBACK_MODES = ("handle_event_function", "state_functions")


class GenStateMachine:
    """A state machine run as an actor: subclass it and write the handlers.

    In ``"handle_event_function"`` mode (the default) one method,
    ``handle_event(event_type, content, state, data)``, handles every state;
    states may be any hashable value. In ``"state_functions"`` mode the
    state is a ``str`` naming the method that handles it:
    ``locked(event_type, content, data)``. Callbacks may be ``def`` or
    ``async def``.

    Attributes:
        callback_mode: ``"handle_event_function"`` or ``"state_functions"``.
        state_enter: run a state enter call (``Enter()``) after ``init`` and
            after every state change.
        trap_exits: receive exit signals from links as ``Info`` events
            carrying ``Exit(ref, reason)`` instead of stopping.
    """

    callback_mode: ClassVar[str] = "handle_event_function"
    state_enter: ClassVar[bool] = False
    trap_exits: ClassVar[bool] = False

    _genstatem_state_handlers: ClassVar[dict[Any, Callable[..., Any]]]
    _engine: Engine

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.callback_mode not in _CALLBACK_MODES:
            raise TypeError(f"{cls.__name__}.callback_mode must be one of {_CALLBACK_MODES}, got {cls.callback_mode!r}")
        cls._genstatem_state_handlers = {}

    # -- what users write ------------------------------------------------------

    async def init(self, arg: Any) -> Init | Ignore | Stop:
        """Return the initial ``Init(state, data, actions)``; by default ``arg`` is ``(state, data)``."""
        if not (isinstance(arg, tuple | list) and len(arg) == 2):
            raise TypeError(
                f"{type(self).__name__} has no init of its own, and the default init takes (state, data): "
                f"it was started with {arg!r}; pass start({type(self).__name__}, (state, data)) or define init"
            )
        state, data = arg
        return Init(state, data)

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        """Handle one event in ``handle_event_function`` mode; return a result."""
        raise NotImplementedError(f"{type(self).__name__} must define handle_event (or use state_functions)")

    async def terminate(self, reason: Any, state: Any, data: Any) -> None:
        """Called once when the actor stops (not when it is killed)."""

    # -- who am I ------------------------------------------------------------------

    @property
    def ref(self) -> ActorRef:
        """This actor's own ref."""
        return self._engine.actor.ref

    @property
    def system(self) -> ActorSystem:
        """The system this actor runs in."""
        return self._engine.actor.system

    @property
    def state(self) -> Any:
        """The current state (read-only: a handler changes it by its result)."""
        return self._engine.state

    def message_queue_len(self) -> int:
        """How many messages wait in this actor's mailbox now, not yet handled: Erlang's
        ``process_info(self(), message_queue_len)``.

        Events the engine queued itself (``NextEvent``, postponed events
        retried, zero timeouts) are not counted: they come before the
        mailbox anyway. A machine uses it to batch: work that is cheaper
        done once for many events (a disk sync, one message to a peer) is
        done when nothing else waits, and at once when the mailbox is empty,
        so a lone request is never delayed. It changes no rule of the
        engine's: the machine only reads a count.
        """
        return self._engine.message_queue_len()

    # -- links and monitors ------------------------------------------------------

    @overload
    async def start_link(self, cls: type[NeverIgnores], arg: Any = None, *, name: Any = None) -> ActorRef: ...

    @overload
    async def start_link(self, cls: type[Any], arg: Any = None, *, name: Any = None) -> ActorRef | None: ...

    async def start_link(self, cls: type[Any], arg: Any = None, *, name: Any = None) -> ActorRef | None:
        """Start an actor linked to this one, with no moment where it runs unlinked.

        This actor becomes its parent: an exit signal from here stops it even
        if it traps exits. If its ``init`` fails, :class:`StartError` is raised
        and no exit signal reaches this actor.
        """
        return await self._engine.actor.start_link(cls, arg, name=name)

    def link(self, ref: ActorRef) -> None:
        """Link to ``ref`` both ways; a dead actor sends exit signal ``"noproc"``."""
        self._engine.actor.link(ref)

    def unlink(self, ref: ActorRef) -> None:
        """Remove the link; an ``Exit`` from it still queued is dropped."""
        self._engine.actor.unlink(ref)

    def monitor(self, ref: ActorRef) -> Monitor:
        """Watch ``ref``: one ``Info`` event with ``Down(monitor, ref, reason)`` arrives when it exits."""
        return self._engine.actor.monitor(ref)

    def demonitor(self, monitor: Monitor) -> None:
        """Stop watching; no ``Down`` for ``monitor`` arrives after this returns."""
        self._engine.actor.demonitor(monitor)

    # -- the runtime's interface (core.Behaviour) ---------------------------------

    async def actor_init(self, actor: Actor, arg: Any) -> InitIgnored | InitStopped | None:
        self._engine = engine = Engine(self, actor)
        result: Any = self.init(arg)
        if result.__class__ is CoroutineType:
            result = await result
        if result.__class__ is Ignore:
            return IGNORED
        if result.__class__ is Stop:
            return InitStopped(result.reason)
        engine.accept_init(result)
        return None

    def actor_run(self) -> Awaitable[Any]:
        return self._engine.run()

    async def actor_terminate(self, reason: Any) -> None:
        engine = self._engine
        tracer = engine.actor.tracer
        if tracer is not None:
            now = engine.actor.now()
            tracer(TraceEvent(engine.actor.ref, "terminate", engine.state, content=reason, time=now))
        result = self.terminate(reason, engine.state, engine.data)
        if inspect.isawaitable(result):
            await result

    def actor_state(self) -> Any:
        engine = getattr(self, "_engine", None)
        return None if engine is None else engine.state

    # -- state_functions plumbing ------------------------------------------------

    def _genstatem_handlers(self) -> dict[Any, Callable[..., Any]] | None:
        if self.callback_mode == "handle_event_function":
            return None
        return type(self)._genstatem_state_handlers

    def _genstatem_check_state(self, state: Any) -> None:
        """In ``state_functions`` mode, make sure ``state`` names a handler method."""
        if self.callback_mode == "handle_event_function":
            return
        handlers = type(self)._genstatem_state_handlers
        if state in handlers:
            return
        function = getattr(type(self), state, None) if isinstance(state, str) else None
        if function is None or not callable(function) or hasattr(GenStateMachine, state):
            raise BadReturn(
                f"in state_functions mode a state must name a handler method of {type(self).__name__}",
                state,
                self._engine.state,
            )
        handlers[state] = function
