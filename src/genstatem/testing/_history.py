"""Client histories: what each client asked, when, and what it was told.

A linearizability check is only as good as its history, and the hard part of
recording one is saying honestly what a client does *not* know. A write that
timed out may have taken effect, or may take effect later; a definite refusal
did not happen at all. :class:`HistoryRecorder` turns those three outcomes
into :class:`Operation` records the checker understands.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable
from typing import Any, Final

import attrs


class _Pending(enum.Enum):
    PENDING = "PENDING"

    def __repr__(self) -> str:
        return "PENDING"


PENDING: Final = _Pending.PENDING
"""The output of an operation whose outcome is unknown (it has no return)."""


def _check_return(instance: Operation, attribute: attrs.Attribute[Any], ret: float | None) -> None:
    if (ret is None) != (instance.output is PENDING):
        raise ValueError(f"an operation has a return time exactly when its output is known: {instance!r}")
    if ret is not None and ret < instance.call:
        raise ValueError(f"an operation cannot return before it was called: {instance!r}")


@attrs.frozen
class Operation:
    """One client operation on one key, as the client saw it.

    An operation with ``ret=None`` (and ``output=PENDING``) is open-ended: the
    client never learnt its outcome, so it may have taken effect at any time
    after ``call``, or never. Give a timed-out write this form; a read that
    timed out can simply be left out, and an operation known to have failed
    must be left out.

    Attributes:
        client: who issued it (shown in explanations; not used by the check).
        key: the key it touched; keys are checked independently.
        input: what was asked, e.g. ``("put", 3)``, passed to the model.
        call: when it was issued.
        output: what the client was told, or :data:`PENDING`.
        ret: when the client was told, or ``None`` if it never was.
    """

    client: Any
    key: Any
    input: Any
    call: float
    output: Any = PENDING
    ret: float | None = attrs.field(default=None, validator=_check_return)

    @property
    def pending(self) -> bool:
        """Whether the outcome is unknown (no return)."""
        return self.ret is None

    def forgotten(self) -> Operation:
        """This operation with its outcome forgotten: it may have happened at any time after its call, or never."""
        return attrs.evolve(self, output=PENDING, ret=None)


@attrs.frozen
class Invocation:
    """A call in flight, returned by :meth:`HistoryRecorder.invoke`; pass it back to say how it ended.

    Attributes:
        client: who issued it.
        key: the key it touches.
        input: what was asked.
        call: when it was issued.
        seq: the recorder's number for it, in the order of invocation.
    """

    client: Any
    key: Any
    input: Any
    call: float
    seq: int


class HistoryRecorder:
    """Records client operations as they are invoked and completed.

    Each client calls :meth:`invoke` just before sending a request and exactly
    one of :meth:`ok`, :meth:`info` or :meth:`fail` when it knows how the
    request ended. Times come from ``clock``, so a simulation can pass its
    virtual clock (``loop.time``). Times are made strictly increasing, by the
    smallest step a float allows, so that a clock which did not move between
    two events (common on virtual time) still keeps the order in which the
    recorder saw them: a read invoked after a write returned stays after it.

    The recorder is not thread-safe: use it from one thread, as asyncio does.

    Args:
        clock: returns the current time in seconds (default ``time.monotonic``).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last = -math.inf
        self._open: dict[int, Invocation] = {}
        # One slot per invocation, in invocation order; None once it failed.
        self._slots: list[Operation | None] = []

    def _now(self) -> float:
        now = self._clock()
        if now <= self._last:
            now = math.nextafter(self._last, math.inf)
        self._last = now
        return now

    def invoke(self, client: Any, key: Any, input: Any) -> Invocation:
        """Record that ``client`` is about to ask ``input`` of ``key``.

        Args:
            client: who is asking (any hashable or printable value).
            key: the key the request touches.
            input: the request, in the form the model understands.

        Returns:
            A handle to pass to :meth:`ok`, :meth:`info` or :meth:`fail`.
        """
        invocation = Invocation(client, key, input, self._now(), len(self._slots))
        self._open[invocation.seq] = invocation
        self._slots.append(Operation(client, key, input, invocation.call))
        return invocation

    def _close(self, invocation: Invocation) -> None:
        if self._open.pop(invocation.seq, None) is not invocation:
            raise ValueError(f"not an open invocation of this recorder: {invocation!r}")

    def ok(self, invocation: Invocation, output: Any) -> Operation:
        """Record that the request completed and the client was told ``output``.

        Raises:
            ValueError: if ``invocation`` was already completed, or is not this recorder's.
        """
        self._close(invocation)
        operation = Operation(invocation.client, invocation.key, invocation.input, invocation.call, output, self._now())
        self._slots[invocation.seq] = operation
        return operation

    def info(self, invocation: Invocation) -> Operation:
        """Record that the outcome is unknown (a timeout): it may take effect at any time after its call, or never.

        Raises:
            ValueError: if ``invocation`` was already completed, or is not this recorder's.
        """
        self._close(invocation)
        operation = self._slots[invocation.seq]
        assert operation is not None
        return operation

    def fail(self, invocation: Invocation) -> None:
        """Record that the request definitely did not take effect (it is dropped from the history).

        Also the right call for a read that timed out: a read without an answer
        tells the checker nothing.

        Raises:
            ValueError: if ``invocation`` was already completed, or is not this recorder's.
        """
        self._close(invocation)
        self._slots[invocation.seq] = None

    def history(self) -> tuple[Operation, ...]:
        """The operations so far, in invocation order; those still in flight are open-ended."""
        return tuple(operation for operation in self._slots if operation is not None)
