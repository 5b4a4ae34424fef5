"""Drive a state machine's handlers event by event, with no actor running.

For unit tests of handlers. Each event fed runs the handler (and the state
enter calls that follow a state change), checks the result with the
engine's own rules, and reports what a running actor would do next —
replies, inserted events, postpone, timeouts, stop — without doing it: no
timer fires and no queue is drained, so the test feeds the next event
itself.

The driver runs the engine itself: ``_Recorder`` is an ``Engine`` whose four
effects (``_reply``, ``_postpone``, ``_insert``, ``_arm``) are recorded
instead of performed, so every rule of a transition is written once, in
``_engine.py``. ``genstatem.testing`` re-exports it, as ``trio.testing``
re-exports its core's ``MockClock``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from types import CoroutineType
from typing import Any, ClassVar, Generic, NoReturn, TypeVar, cast

import attrs

from .._core import Actor, Caller, StartError
from ._engine import _RUNNING, Engine, Event, Plan
from ._events import EVENT_TYPES, EventTimeout, GenericTimeout, StateTimeout
from ._machine import GenStateMachine
from ._results import ACTION_TYPES, Ignore, Stop

M = TypeVar("M", bound=GenStateMachine)

Timeout = EventTimeout | StateTimeout | GenericTimeout


@attrs.frozen
class Step:
    """What one event fed to a :class:`StateMachineDriver` (or ``init``) led to.

    Timeouts are reported as the handler (and then the enter calls) set
    them, the last of each kind winning; ``time=None`` means "cancel". A
    running actor would also cancel the event timeout on any event, and the
    state timeout on a state change; the driver reports only what was asked.
    A step that stops reports no inserted events and no timeouts: a
    stopping actor queues and starts none.

    Attributes:
        event: the ``(event_type, content)`` fed; ``None`` for ``init``.
        state: the state after the event.
        data: the data after the event.
        actions: every action returned, the handler's then the enter calls',
            as a flat list in the order given.
        replies: ``(caller, value)`` for every reply sent: ``Reply`` actions,
            ``Stop`` replies, and ``gs.reply`` to a driver's caller.
        next_events: the ``(event_type, content)`` of each ``NextEvent``, in order.
        postponed: the event was postponed.
        event_timeout: the ``EventTimeout`` set, if any.
        state_timeout: the ``StateTimeout`` set, if any.
        generic_timeouts: the ``GenericTimeout`` set, by name.
        stopped: the handler (or an enter call) returned ``Stop``.
        reason: the stop reason (``None`` when not stopped).
    """

    event: tuple[Any, Any] | None
    state: Any
    data: Any
    actions: list[Any]
    replies: list[tuple[Caller, Any]]
    next_events: list[tuple[Any, Any]]
    postponed: bool = False
    event_timeout: EventTimeout | None = None
    state_timeout: StateTimeout | None = None
    generic_timeouts: dict[Any, GenericTimeout] = attrs.Factory(dict)
    stopped: bool = False
    reason: Any = None


class _DriverCaller(Caller):
    """A stand-in for a caller: every reply it gets is recorded, none is awaited."""

    __slots__ = ("_log", "_number")

    def __init__(self, log: list[tuple[Caller, Any]], number: int) -> None:
        self._log = log
        self._number = number

    def resolve(self, value: Any) -> None:
        # Unlike a real caller, record every answer: a test can see a double reply.
        self._log.append((self, value))

    def fail(self, error: BaseException) -> None:
        self._log.append((self, error))

    async def wait(self, timeout: float | None) -> NoReturn:
        raise RuntimeError("a StateMachineDriver caller is never awaited: read step.replies or driver.replies_to()")

    def __repr__(self) -> str:
        return f"<DriverCaller {self._number}>"


class _NoActor:
    """Stands in for the actor, so a handler reaching for the actor gets a clear error."""

    __slots__ = ("_machine_name",)

    tracer: ClassVar[None] = None
    """Nothing traces a driven machine (the engine's stages ask before tracing)."""

    def __init__(self, machine_name: str) -> None:
        self._machine_name = machine_name

    def __getattr__(self, name: str) -> NoReturn:
        raise RuntimeError(
            f"no actor is running: {self._machine_name} is driven by StateMachineDriver, so self.ref,"
            " self.system, links and monitors are not available (start it in an ActorSystem to use them)"
        )


class _Outcome:
    """What a step has gathered so far."""

    __slots__ = ("actions", "next_events", "postponed", "timers", "replies_from")

    def __init__(self, replies_from: int) -> None:
        self.actions: list[Any] = []
        self.next_events: list[tuple[Any, Any]] = []
        self.postponed = False
        self.timers: dict[Hashable, Any] = {}
        self.replies_from = replies_from


class _Recorder(Engine):
    """The engine, recording the effects of each transition in ``outcome`` instead of performing them.

    It keeps no queue and starts no timer: postponed events are not kept,
    inserted events and timeouts are only reported.
    """

    __slots__ = ("replies", "outcome", "waiting")

    def __init__(self, machine: GenStateMachine, replies: list[tuple[Caller, Any]]) -> None:
        super().__init__(machine, cast(Actor, _NoActor(type(machine).__name__)))
        self.replies = replies
        self.outcome = _Outcome(0)
        self.waiting = 0  # what message_queue_len() says: the events fed after this one, together

    def message_queue_len(self) -> int:
        return self.waiting

    async def begin(self, result: Any) -> Any:
        """Accept ``init``'s result and run its transition, as ``Engine.run`` starts.

        Returns:
            ``_RUNNING``, or the reason of a ``Stop`` from the initial enter call.
        """
        self.outcome = _Outcome(len(self.replies))
        result = _replayable(result)
        plan = self.accept_init(result)
        self._record(result.actions)
        return await self._state_transition(self.state, plan, None, changed=True, repeat=False)

    async def step(self, event: Event) -> Any:
        """Handle ``event`` as ``Engine._event`` does, with no timer to cancel and no fast path.

        Returns:
            ``_RUNNING``, or the reason of a ``Stop``.
        """
        self.outcome = _Outcome(len(self.replies))
        result = self._state_callback(event[0], event[1])
        if result.__class__ is CoroutineType:
            result = await result
        return await self._callback_result(_replayable(result), event)

    # -- the checks, with the actions recorded ------------------------------------------

    def _check_transition(self, result: Any) -> tuple[Any, Plan]:
        checked = super()._check_transition(result)
        self._record(result.actions)
        return checked

    def _check_enter(self, result: Any) -> Plan:
        result = _replayable(result)
        plan = super()._check_enter(result)
        self._record(result.actions)
        return plan

    def _record(self, actions: Any) -> None:
        if actions:  # checked already: one action, or an iterable that can be read again
            self.outcome.actions.extend((actions,) if isinstance(actions, ACTION_TYPES) else actions)

    # -- the effects, recorded -----------------------------------------------------

    def _reply(self, caller: Caller, value: Any) -> None:
        self.replies.append((caller, value))

    def _postpone(self, event: Event) -> None:
        self.outcome.postponed = True

    def _insert(self, events: list[Event]) -> None:
        self.outcome.next_events.extend(events)

    def _arm(self, timers: dict[Hashable, Any]) -> None:
        self.outcome.timers = timers


class StateMachineDriver(Generic[M]):
    """Runs a :class:`GenStateMachine`'s callbacks one event at a time, without an actor.

    Build one with ``await StateMachineDriver.start(cls, arg)``, then
    ``await driver.feed(event_type, content)`` for each event. Results and
    actions are checked as the engine checks them (a bad one raises
    :class:`BadReturn`, with the engine's message), state enter calls run
    after a state change or ``RepeatState``, and each call returns a
    :class:`Step` saying what happened. Exceptions raised by callbacks
    propagate unchanged. ``terminate`` is never called.

    Attributes:
        machine: the machine instance whose callbacks run.
        init_step: what ``init`` (and the initial enter call) led to.
    """

    machine: M
    init_step: Step

    def __init__(self, cls: type[M]) -> None:
        """Use :meth:`start`, which also runs ``init``."""
        self.machine = cls()
        self._replies: list[tuple[Caller, Any]] = []
        self._engine = _Recorder(self.machine, self._replies)
        self.machine._engine = self._engine
        self._callers = 0
        self._started = False
        self._stopped = False
        self._reason: Any = None

    @classmethod
    async def start(cls, machine: type[M], arg: Any = None) -> StateMachineDriver[M]:
        """Create ``machine`` and run its ``init(arg)`` and initial enter call.

        Args:
            machine: the ``GenStateMachine`` subclass.
            arg: passed to ``init``, as ``ActorSystem.start`` would.

        Returns:
            The driver; its ``init_step`` reports ``init``'s actions.

        Raises:
            StartError: ``init`` returned ``Stop(reason)`` (``.reason`` is the
                reason) or ``Ignore()`` (``.reason`` is the ``Ignore``).
            BadReturn: ``init`` (or the enter call) returned a bad value.
        """
        driver = cls(machine)
        result = await _run(driver.machine.init, arg)
        if result.__class__ is Ignore:
            raise StartError(result)
        if result.__class__ is Stop:
            raise StartError(result.reason)
        driver.init_step = driver._step(None, await driver._engine.begin(result))
        driver._started = True
        return driver

    # -- the machine's state ---------------------------------------------------

    @property
    def state(self) -> Any:
        """The current state; setting it skips the handlers and the enter call."""
        return self._engine.state

    @state.setter
    def state(self, state: Any) -> None:
        self.machine._genstatem_check_state(state)
        self._engine.state = state

    @property
    def data(self) -> Any:
        """The current data; setting it skips the handlers."""
        return self._engine.data

    @data.setter
    def data(self, data: Any) -> None:
        self._engine.data = data

    @property
    def stopped(self) -> bool:
        """Whether a handler returned ``Stop``; a stopped machine takes no more events."""
        return self._stopped

    # -- callers -------------------------------------------------------------------

    def caller(self) -> Caller:
        """A new caller for building ``Call(caller)`` events; it records every reply it gets."""
        self._callers += 1
        return _DriverCaller(self._replies, self._callers)

    def replies_to(self, caller: Caller) -> list[Any]:
        """Every value replied to ``caller`` so far, oldest first."""
        return [value for to, value in self._replies if to is caller]

    # -- events --------------------------------------------------------------

    async def feed(self, event_type: Any, content: Any = None) -> Step:
        """Hand one event to the current state's handler and apply its result.

        Args:
            event_type: ``Call(caller)``, ``Cast()``, ``Info()``, ``Internal()``
                or a timeout (the enter calls run by themselves).
            content: the event's content.

        Returns:
            What the event led to.

        Raises:
            BadReturn: the handler (or an enter call) returned a bad result or action.
            TypeError: ``event_type`` is not an event type.
            RuntimeError: the machine has stopped.
        """
        if not self._started:
            raise RuntimeError("the driver has not run init: build it with await StateMachineDriver.start(cls, arg)")
        if self._stopped:
            raise RuntimeError(f"the machine stopped with reason {self._reason!r}; it takes no more events")
        if not isinstance(event_type, EVENT_TYPES):
            raise TypeError(f"not an event type: {event_type!r} (enter calls run by themselves after a state change)")
        event = (event_type, content)
        return self._step(event, await self._engine.step(event))

    async def feed_queued(self, events: Sequence[tuple[Any, Any]]) -> list[Step]:
        """Feed ``(event_type, content)`` pairs as if they all sat in the mailbox at once.

        While each is handled, the machine's ``message_queue_len()`` counts
        the events after it (with ``feed`` it is always 0): this is how a
        test drives a machine that batches work while messages wait.

        Returns:
            What each event led to, in order (fewer if the machine stopped).

        Raises:
            Whatever ``feed`` raises.
        """
        steps: list[Step] = []
        try:
            for number, (event_type, content) in enumerate(events):
                self._engine.waiting = len(events) - number - 1
                steps.append(await self.feed(event_type, content))
                if self._stopped:
                    break
        finally:
            self._engine.waiting = 0
        return steps

    async def fire(self, timeout: Timeout) -> Step:
        """Feed the event of ``timeout`` firing: ``feed(timeout, timeout.content)``.

        Raises:
            ValueError: ``timeout.time`` is ``None``: it cancels a timer, it never fires.
        """
        if not isinstance(timeout, EventTimeout | StateTimeout | GenericTimeout):
            raise TypeError(f"not a timeout: {timeout!r}")
        if timeout.time is None:
            raise ValueError(f"{timeout!r} cancels a timer; it never fires")
        return await self.feed(timeout, timeout.content)

    def _step(self, event: tuple[Any, Any] | None, reason: Any) -> Step:
        if reason is not _RUNNING:
            self._stopped = True
            self._reason = reason
        outcome = self._engine.outcome
        timers = outcome.timers.values()
        return Step(
            event=event,
            state=self._engine.state,
            data=self._engine.data,
            actions=outcome.actions,
            replies=self._replies[outcome.replies_from :],
            next_events=outcome.next_events,
            postponed=outcome.postponed,
            event_timeout=next((t for t in timers if t.__class__ is EventTimeout), None),
            state_timeout=next((t for t in timers if t.__class__ is StateTimeout), None),
            generic_timeouts={t.name: t for t in timers if t.__class__ is GenericTimeout},
            stopped=self._stopped,
            reason=self._reason,
        )


async def _run(callback: Callable[..., Any], *args: Any) -> Any:
    """Call a callback; await its result if it is ``async def`` (as the engine does)."""
    result = callback(*args)
    if result.__class__ is CoroutineType:
        result = await result
    return result


def _replayable(result: Any) -> Any:
    """``result`` with its actions read into a tuple if they are a one-shot iterator.

    The plan reads the actions once; the step reports them again.
    """
    actions = getattr(result, "actions", None)
    if isinstance(actions, Iterator) and attrs.has(result.__class__):
        return attrs.evolve(result, actions=tuple(actions))
    return result
