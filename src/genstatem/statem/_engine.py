"""The state machine engine: gen_statem's event loop, one stage per method.

The stages, named after the ``loop_*`` functions of OTP's ``gen_statem.erl``
that they stand for::

    run                  loop / loop_receive: the next event, queue first, then the mailbox
      _system_message      a system message (get_state, stop)
      _timer_fired         a timer's fire ("our running timer", or a cancelled one: dropped)
    _event               loop_event -> loop_state_callback (_state_callback)
    _callback_result     loop_state_callback_result: check the result, parse its actions
      _stop                a Stop: its replies, then the exit reason back to run
    _state_transition    loop_state_transition -> loop_keep_state / loop_state_change
      _state_enter         loop_state_enter
                         -> loop_next_events -> loop_timeouts (_arm) -> back to run

What a transition does to the world goes through four effects, ``_reply``,
``_postpone``, ``_insert`` and ``_arm``; the handler driver of
``genstatem.testing`` is this engine with those four recorded instead.

The queue rules all live in ``_state_transition`` and ``_arm``:

* ``NextEvent`` events go first, in the order given; then, only when the
  state changed, the postponed events, oldest first; then what was queued
  before; then zero-time timeouts, in the order of their actions; the
  mailbox comes after all of those.
* Any event cancels the event timeout. A state change cancels the state
  timeout. Generic timeouts run until they fire or are set again.
* A zero event timeout is queued only if nothing is queued before it (else
  that event would cancel it), so one given after another zero timeout is
  dropped, and one given before is delivered first.
* Every timer carries its own identity: a fire (or a queued zero timeout)
  whose timer is no longer the current one of its kind is dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from types import CoroutineType
from typing import TYPE_CHECKING, Any

import anyio.lowlevel

from .._core import EVENT_BUDGET, SYSTEM, Actor, Caller, GetState, StopRequest, TraceEvent
from ._errors import BadReturn
from ._events import EVENT_TYPES, Enter, EventTimeout, GenericTimeout, StateTimeout
from ._results import (
    ACTION_TYPES,
    UNCHANGED,
    Init,
    KeepState,
    NextEvent,
    NextState,
    Postpone,
    RepeatState,
    Reply,
    Stop,
)

if TYPE_CHECKING:
    from ._machine import GenStateMachine

Event = tuple[Any, Any]
ENTER = Enter()
_RUNNING: Any = object()
"""What the stages return while the actor keeps running (else: the exit reason)."""

_NO_EVENTS: list[Event] = []
"""Shared by every engine with nothing postponed; never appended to."""

_EVENT_KEY = ("event",)
_STATE_KEY = ("state",)


class _Timer:
    """One armed timer; the mailbox item of its fire is ``(timer, None)``."""

    __slots__ = ("key", "action", "handle")

    def __init__(self, key: Hashable, action: Any) -> None:
        self.key = key
        self.action = action
        self.handle: Any = None


class Plan:
    """The actions of one result, checked and sorted by kind.

    ``timers`` maps a timer kind (``("event",)``, ``("state",)`` or
    ``("generic", name)``) to the timeout action that sets (or, with
    ``time=None``, cancels) it. The last action of a kind wins, and takes
    its place in the order: the dict is in the order ``_arm`` starts them.
    """

    __slots__ = ("replies", "postpone", "next_events", "timers")

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.postpone = False
        self.next_events: list[Event] = []
        self.timers: dict[Hashable, Any] = {}


_NO_ACTIONS = Plan()


def _timer_key(action: Any) -> Hashable:
    cls = action.__class__
    if cls is EventTimeout:
        return _EVENT_KEY
    if cls is StateTimeout:
        return _STATE_KEY
    return ("generic", action.name)


def _set_timer(timers: dict[Hashable, Any], key: Hashable, action: Any) -> None:
    """Set ``key``'s timeout, moved behind the others as if given last (OTP: the last one wins)."""
    timers.pop(key, None)
    timers[key] = action


def parse_actions(actions: Any, state: Any, *, enter: bool = False, init: bool = False) -> Plan:
    """Check ``actions`` (one action or an iterable) and sort them into a plan.

    Raises:
        BadReturn: an item is not an action, or not allowed in an enter call.
    """
    if not actions and actions is not None:
        return _NO_ACTIONS
    if isinstance(actions, ACTION_TYPES):
        actions = (actions,)
    elif isinstance(actions, str | bytes) or not hasattr(actions, "__iter__"):
        raise BadReturn("bad actions (want an action or an iterable of actions)", actions, state)
    plan = Plan()
    for action in actions:
        cls = action.__class__
        if cls is Reply:
            if not isinstance(action.caller, Caller):
                raise BadReturn("bad Reply: caller is not a Call's caller", action, state)
            plan.replies.append(action)
        elif cls is EventTimeout or cls is StateTimeout or cls is GenericTimeout:
            _set_timer(plan.timers, _timer_key(action), action)
        elif cls is Postpone or cls is NextEvent:
            if enter:
                raise BadReturn(f"{cls.__name__} is not allowed in a state enter call", action, state)
            if cls is NextEvent:
                if not isinstance(action.event_type, EVENT_TYPES):
                    raise BadReturn("bad NextEvent: not an event type", action, state)
                plan.next_events.append((action.event_type, action.content))
            elif not init:
                plan.postpone = True
        else:
            raise BadReturn("bad action", action, state)
    return plan


class Engine:
    """Runs one ``GenStateMachine``: its state, data, queues and timers."""

    __slots__ = (
        "machine",
        "actor",
        "handlers",
        "state_enter",
        "state",
        "data",
        "queue",
        "postponed",
        "timers",
        "_init_plan",
    )

    def __init__(self, machine: GenStateMachine, actor: Actor) -> None:
        self.machine = machine
        self.actor = actor
        # state_functions mode: state name -> the class's handler function
        self.handlers: dict[Any, Callable[..., Any]] | None = machine._genstatem_handlers()
        self.state_enter: bool = machine.state_enter
        self.state: Any = None
        self.data: Any = None
        # Events handled before the mailbox (inserted, retried, zero timeouts),
        # kept in reverse: the next one is last, so taking it and pushing in
        # front of it are O(1). Shared and empty until something is queued.
        self.queue: list[Event] = _NO_EVENTS
        self.postponed: list[Event] = _NO_EVENTS  # a list of its own once an event is postponed
        self.timers: dict[Hashable, _Timer] = {}
        self._init_plan: Plan = _NO_ACTIONS

    # -- init ------------------------------------------------------------------

    def accept_init(self, result: Any) -> Plan:
        """Check ``Init``'s state and actions; ``run`` carries them out.

        Returns:
            The plan of ``init``'s actions (``Postpone`` dropped).

        Raises:
            BadReturn: not an ``Init``, a bad initial state, or a bad action.
        """
        if result.__class__ is not Init:
            raise BadReturn("bad return from init (want Init, Ignore or Stop)", result, None)
        self.state = result.state
        self.data = result.data
        self.machine._genstatem_check_state(result.state)
        self._init_plan = plan = parse_actions(result.actions, result.state, init=True)
        return plan

    # -- the loop ------------------------------------------------------------

    async def run(self) -> Any:
        """Handle events until a handler stops the actor; return the exit reason."""
        try:
            reason = await self._state_transition(self.state, self._init_plan, None, changed=True, repeat=False)
            mailbox = self.actor.mailbox
            actor = self.actor
            budget = EVENT_BUDGET
            while reason is _RUNNING:
                budget -= 1
                if actor.exit_pending or not budget:
                    # the exit signal's cancellation lands here, and other tasks get their turn
                    budget = EVENT_BUDGET
                    await anyio.lowlevel.checkpoint()
                if self.queue:
                    event = self.queue.pop()
                elif mailbox.items:
                    event = mailbox.items.popleft()
                else:
                    budget = EVENT_BUDGET
                    await mailbox.wait()
                    continue
                kind = event[0]
                if kind is SYSTEM:
                    reason = self._system_message(event[1])
                elif kind.__class__ is _Timer:
                    reason = await self._timer_fired(kind)
                else:
                    reason = await self._event(event)
            return reason
        finally:
            self._cancel_all_timers()

    async def _timer_fired(self, timer: _Timer) -> Any:
        if self.timers.get(timer.key) is not timer:
            return _RUNNING  # a cancelled timer's late fire, or a stale zero timeout
        del self.timers[timer.key]
        return await self._event((timer.action, timer.action.content))

    def _system_message(self, msg: Any) -> Any:
        if msg.__class__ is GetState:
            msg.caller.resolve((self.state, self.data))
            return _RUNNING
        if msg.__class__ is StopRequest:
            return msg.reason
        raise BadReturn("unknown system message", msg, self.state)

    async def _event(self, event: Event) -> Any:
        """Handle one event: it cancels the event timeout, then the state callback runs.

        The fast path: untraced, a result of ``None``, or a ``KeepState``
        with no action or one ``Reply``, changes nothing but the data and
        sends that reply, so it is done here, without a plan. It is exactly
        what ``_callback_result`` would do with the same result.
        """
        if self.timers:
            self._cancel_timer(_EVENT_KEY)
        tracer = self.actor.tracer
        if tracer is not None:
            tracer(TraceEvent(self.actor.ref, "event", self.state, event[0], event[1], time=self._now()))
        result = self._state_callback(event[0], event[1])
        if result.__class__ is CoroutineType:
            result = await result
        if tracer is None and (result is None or result.__class__ is KeepState):
            # the fast path
            if result is None:
                return _RUNNING
            actions = result.actions
            if (actions.__class__ is tuple and not actions) or (
                actions.__class__ is Reply and isinstance(actions.caller, Caller)
            ):
                if result.data is not UNCHANGED:
                    self.data = result.data
                if actions:
                    actions.caller.resolve(actions.value)
                return _RUNNING
        return await self._callback_result(result, event)

    def _state_callback(self, event_type: Any, content: Any) -> Any:
        """Call the handler of the current state; its result may need awaiting."""
        if self.handlers is not None:
            return self.handlers[self.state](self.machine, event_type, content, self.data)
        return self.machine.handle_event(event_type, content, self.state, self.data)

    # -- results and transitions ---------------------------------------------------

    async def _callback_result(self, result: Any, event: Event) -> Any:
        """Carry out what the state callback returned for ``event``."""
        if result is None:
            return await self._state_transition(self.state, _NO_ACTIONS, event, changed=False, repeat=False)
        if result.__class__ is Stop:
            return self._stop(result)
        next_state, plan = self._check_transition(result)
        if result.data is not UNCHANGED:
            self.data = result.data
        changed = next_state is not self.state and next_state != self.state
        return await self._state_transition(
            next_state, plan, event, changed=changed, repeat=result.__class__ is RepeatState
        )

    def _check_transition(self, result: Any) -> tuple[Any, Plan]:
        """Check a state callback's result other than ``None`` and ``Stop``.

        Returns:
            The state it goes to and the plan of its actions.

        Raises:
            BadReturn: not a ``KeepState``, ``RepeatState`` or ``NextState``,
                a bad next state, or a bad action.
        """
        cls = result.__class__
        if cls is KeepState or cls is RepeatState:
            next_state = self.state
        elif cls is NextState:
            next_state = result.state
            self.machine._genstatem_check_state(next_state)
        else:
            raise BadReturn(
                "bad return from state handler (want NextState, KeepState, RepeatState, Stop or None)",
                result,
                self.state,
            )
        return next_state, parse_actions(result.actions, self.state)

    def _stop(self, result: Stop) -> Any:
        """Send a ``Stop``'s replies, each checked as it is reached; return its reason.

        Raises:
            BadReturn: an item of ``replies`` is not a ``Reply``.
        """
        if result.data is not UNCHANGED:
            self.data = result.data
        replies = result.replies
        for reply in (replies,) if isinstance(replies, Reply) else replies:
            if reply.__class__ is not Reply:
                raise BadReturn("bad reply in Stop", reply, self.state)
            self._reply(reply.caller, reply.value)
        return result.reason

    async def _state_transition(
        self, next_state: Any, plan: Plan, event: Event | None, *, changed: bool, repeat: bool
    ) -> Any:
        """Go to ``next_state`` and carry out ``plan``; ``event`` is ``None`` after ``init``.

        In OTP's order (``gen_statem.erl``'s stage in brackets):

        1. Reply to calls, in the order given (``loop_actions_reply``).
        2. Postpone the event if asked, and trace the transition
           (``loop_state_transition``).
        3. On a state change, cancel the state timeout (``loop_state_change``;
           the event timeout went when the event came, in ``_event``).
        4. After a state change or ``RepeatState``, run the enter call in the
           new state; its replies go out, its timeouts count after the
           handler's (``loop_state_enter``).
        5. On a state change, queue the postponed events, oldest first, in
           front of the queue (``loop_state_change``).
        6. Queue the ``NextEvent`` events in front of those (``loop_next_events``).
        7. Start, restart or cancel the timers, zero ones queued last
           (``loop_timeouts``, in ``_arm``).

        OTP runs the enter call before step 2; nothing a machine sees
        depends on it, and tracing the transition first keeps the trace in
        the order things happened.

        Returns:
            ``_RUNNING``, or the exit reason of a ``Stop`` from the enter call.
        """
        for reply in plan.replies:
            self._reply(reply.caller, reply.value)
        if plan.postpone and event is not None:
            self._postpone(event)
        previous, self.state = self.state, next_state
        tracer = self.actor.tracer
        if tracer is not None and event is not None:
            kind = "postpone" if plan.postpone else "transition"
            tracer(TraceEvent(self.actor.ref, kind, previous, event[0], event[1], next_state, self._now()))
        timers = plan.timers
        if changed and event is not None:
            self._cancel_timer(_STATE_KEY)
        if self.state_enter and (changed or repeat):
            timers = dict(timers)
            reason = await self._state_enter(previous if event is not None else next_state, timers)
            if reason is not _RUNNING:
                return reason
        if changed and self.postponed:
            postponed, self.postponed = self.postponed, _NO_EVENTS
            self._insert(postponed)
        if plan.next_events:
            self._insert(plan.next_events)
        if timers:
            self._arm(timers)
        return _RUNNING

    async def _state_enter(self, previous: Any, timers: dict[Hashable, Any]) -> Any:
        """Run the state enter call (again, for each ``RepeatState`` it returns); add its timers to ``timers``."""
        while True:
            tracer = self.actor.tracer
            if tracer is not None:
                tracer(TraceEvent(self.actor.ref, "enter", self.state, ENTER, previous, time=self._now()))
            result = self._state_callback(ENTER, previous)
            if result.__class__ is CoroutineType:
                result = await result
            if result is None:
                return _RUNNING
            if result.__class__ is Stop:
                return self._stop(result)
            plan = self._check_enter(result)
            if result.data is not UNCHANGED:
                self.data = result.data
            for reply in plan.replies:
                self._reply(reply.caller, reply.value)
            for key, action in plan.timers.items():
                _set_timer(timers, key, action)
            if result.__class__ is not RepeatState:
                return _RUNNING

    def _check_enter(self, result: Any) -> Plan:
        """Check a state enter call's result other than ``None`` and ``Stop``.

        Returns:
            The plan of its actions.

        Raises:
            BadReturn: not a ``KeepState``, ``RepeatState`` or a ``NextState``
                to the same state, or an action not allowed in an enter call.
        """
        cls = result.__class__
        if cls is NextState and result.state != self.state:
            raise BadReturn("a state enter call may not change the state", result, self.state)
        if cls is not KeepState and cls is not RepeatState and cls is not NextState:
            raise BadReturn(
                "bad return from state enter call (want KeepState, RepeatState, NextState to the same state, "
                "Stop or None)",
                result,
                self.state,
            )
        return parse_actions(result.actions, self.state, enter=True)

    # -- the effects of a transition ---------------------------------------------

    def _reply(self, caller: Caller, value: Any) -> None:
        """Answer a call."""
        caller.resolve(value)

    def _postpone(self, event: Event) -> None:
        """Set ``event`` aside until the next state change."""
        if self.postponed:
            self.postponed.append(event)
        else:
            self.postponed = [event]

    def _insert(self, events: list[Event]) -> None:
        """Queue ``events``, in order, in front of everything queued."""
        self._queue().extend(reversed(events))

    def _arm(self, timers: dict[Hashable, Any]) -> None:
        """Start, restart or cancel each timer, in the order of its action (OTP's ``loop_timeouts``).

        A zero timeout starts no timer: its event is queued behind
        everything queued so far, zero timeouts before it included. An
        event timeout is started only on an empty queue: a queued event
        would cancel it before it fired.
        """
        for key, action in timers.items():
            self._cancel_timer(key)
            if action.time is not None and (key is not _EVENT_KEY or not self.queue):
                self._start_timer(key, action)

    # -- timers --------------------------------------------------------------

    def _start_timer(self, key: Hashable, action: Any) -> None:
        timer = _Timer(key, action)
        self.timers[key] = timer
        if action.time == 0:
            self._queue().insert(0, (timer, None))  # after everything already queued
        else:
            fire = functools.partial(self.actor.mailbox.put, (timer, None))
            timer.handle = self.actor.call_later(action.time, fire)

    def _queue(self) -> list[Event]:
        """The queue, as a list of this engine's own (it starts shared and empty)."""
        if self.queue is _NO_EVENTS:
            self.queue = []
        return self.queue

    def _cancel_timer(self, key: Hashable) -> None:
        timer = self.timers.pop(key, None)
        if timer is not None and timer.handle is not None:
            timer.handle.cancel()

    def _cancel_all_timers(self) -> None:
        for timer in self.timers.values():
            if timer.handle is not None:
                timer.handle.cancel()
        self.timers.clear()

    def message_queue_len(self) -> int:
        """The number of messages in the actor's mailbox (``GenStateMachine.message_queue_len``)."""
        return len(self.actor.mailbox.items)

    def _now(self) -> float:
        return self.actor.now()
