"""Checking client histories for linearizability, key by key.

Linearizability is local, so the history is split by key and each key is
searched on its own (the P-compositionality of Lowe's "Testing for
linearizability"), which keeps the exponential part small. Each key's search
is Wing & Gong's: an operation may be linearized next if it was called before
the earliest return among the operations not yet linearized. With Lowe's
memoization, as in Porcupine and in Knossos' "linear" checker, each pair of
(linearized operations, model state) is explored once.

An operation whose outcome is unknown (a write that timed out) may take effect
at any time after its call, or never: the search succeeds once every completed
operation is linearized, and applies an open-ended one only where it changes
the state.

An illegal history is shrunk to a small counterexample by steps that keep it a
proof: an operation is never simply dropped (dropping a write could make a
read look impossible) but made optional, free to take effect within its
interval or not at all.

Checking is NP-complete in general, so every search has a deadline and a
third verdict, ``"unknown"``, for when it runs out.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

import attrs

from ._history import PENDING, Operation
from ._linearization_search import Outcome, Verdict, search

StateT = TypeVar("StateT", bound=Hashable)
InputT_contra = TypeVar("InputT_contra", contravariant=True)
OutputT_co = TypeVar("OutputT_co", covariant=True)


class Model(Protocol[StateT, InputT_contra, OutputT_co]):
    """The sequential specification a history is checked against: one key's object, one operation at a time.

    ``step`` must be deterministic and must not mutate ``state``; states must
    be hashable, because the search remembers the states it has been in.

    A model may also define ``preserves_state(input, output) -> bool``,
    returning True only if *every* step of ``input`` that yields ``output``
    leaves the state as it was (a read; a compare-and-set that failed);
    ``output`` is :data:`PENDING` when it is unknown. It is optional, and only
    a speed-up: the checker then takes such operations as soon as they fit
    instead of trying every place for them, which makes read-heavy histories
    with many clients far cheaper to check.
    """

    def init(self) -> StateT:
        """The state before any operation."""
        ...

    def step(self, state: StateT, input: InputT_contra) -> tuple[StateT, OutputT_co]:
        """Apply ``input`` to ``state``, returning the new state and the output a client would see."""
        ...


@attrs.frozen
class KVModel:
    """One key of a key-value store: a register that may be absent (``None``).

    Inputs (tuples, or lists as a wire codec may deliver them):

    - ``("put", value)`` sets the value and outputs ``"ok"``;
    - ``("get",)`` outputs the value, or ``None`` if there is none;
    - ``("delete",)`` removes the value and outputs ``"ok"``;
    - ``("cas", expected, new)`` sets ``new`` and outputs ``True`` if the value
      is ``expected`` (``None`` for absent), else leaves it and outputs ``False``.

    Values must be hashable. Putting ``None`` is the same as deleting.
    """

    def init(self) -> Hashable:
        """An absent value."""
        return None

    def step(self, state: Hashable, input: Any) -> tuple[Hashable, Any]:
        """Apply one request to the register.

        Raises:
            ValueError: for an input that is not one of the four above.
        """
        match input:
            case ["get"]:
                return state, state
            case ["put", value]:
                return value, "ok"
            case ["delete"]:
                return None, "ok"
            case ["cas", expected, new]:
                return (new, True) if state == expected else (state, False)
        raise ValueError(f"not a key-value request: {input!r}")

    def preserves_state(self, input: Any, output: Any) -> bool:
        """Whether every step of ``input`` that outputs ``output`` leaves the value as it was: reads, failed cas."""
        match input:
            case ["get"]:
                return True
            case ["cas", _, _]:
                return output is False
        return False


@attrs.frozen
class CheckResult:
    """What :func:`check` found.

    Attributes:
        verdict: ``"ok"`` (linearizable), ``"illegal"`` (not), or ``"unknown"``
            (the time budget ran out before either was shown).
        key: the key that is not linearizable, or the first key whose check ran
            out of time; ``None`` when the verdict is ``"ok"``.
        counterexample: for ``"illegal"``, a small set of operations on ``key``
            that cannot be linearized, whichever of the other operations on the
            key took effect (each within its interval, whatever it returned), so
            a proof that the history is not linearizable. Sorted by call time.
        linearized: for ``"illegal"``, the longest order the search found
            before it got stuck: counterexample operations, and other operations
            of the key that it chose to let take effect.
        operations: how many operations the history had.
        keys: how many keys the history touched.
        timeout: the time budget the check had, in seconds.
    """

    verdict: Verdict
    key: Any = None
    counterexample: tuple[Operation, ...] = ()
    linearized: tuple[Operation, ...] = ()
    operations: int = 0
    keys: int = 0
    timeout: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the history was shown to be linearizable."""
        return self.verdict == "ok"

    def explain(self) -> str:
        """A readable account of the verdict, listing the counterexample's operations with times and outputs."""
        size = f"{_plural(self.operations, 'operation')} on {_plural(self.keys, 'key')}"
        if self.verdict == "ok":
            return f"Linearizable: {size}."
        if self.verdict == "unknown":
            return (
                f"Unknown: the time budget of {self.timeout:g} s ran out while checking key {self.key!r}"
                f" ({size}); no key was found to be illegal."
            )
        lines = [
            f"Not linearizable: key {self.key!r}. No order of {_count(self.counterexample)} agrees with the model"
            " and with real time, whichever other operations on the key took effect (each within its interval,"
            " whatever it returned; one that never returned at any time after its call):",
            "",
            *_table(self.counterexample),
            "",
        ]
        number = {id(operation): index for index, operation in enumerate(self.counterexample, 1)}
        steps = []
        for op in self.linearized:
            if id(op) in number:
                steps.append(f"#{number[id(op)]} {_describe(op.input)} -> {op.output!r}")
            else:
                returned = "never returned" if op.ret is None else f"returned at {op.ret:.9g}"
                steps.append(f"{_describe(op.input)} (by {op.client}, called at {op.call:.9g}, {returned})")
        if steps:
            lines.append(f"The longest order found: {', '.join(steps)}; then no operation can come next.")
        else:
            lines.append("Not even the first of them can be linearized.")
        return "\n".join(lines)


def check(
    history: Iterable[Operation],
    model: Model[Any, Any, Any],
    *,
    timeout: float = 10.0,
    shrink_timeout: float | None = None,
) -> CheckResult:
    """Check that ``history`` is linearizable with respect to ``model``, one key at a time.

    Every key is checked on its own against a fresh ``model.init()`` state,
    smallest key first, so that a cheap violation is found before an
    expensive key uses up the budget. A key found illegal ends the check, and
    its history is then shrunk to a small counterexample.

    Args:
        history: the operations, e.g. ``HistoryRecorder.history()``.
        model: the sequential specification of one key, such as :class:`KVModel`.
        timeout: seconds of wall-clock time for the whole check (not the shrinking).
        shrink_timeout: seconds for shrinking a counterexample; ``None`` means ``timeout``.

    Returns:
        The verdict, and for an illegal history the key and a counterexample.
    """
    operations = list(history)
    by_key: dict[Any, list[Operation]] = {}
    for operation in operations:
        by_key.setdefault(operation.key, []).append(operation)
    deadline = time.monotonic() + timeout
    unknown: list[Any] = []
    for key, ops in sorted(by_key.items(), key=lambda item: len(item[1])):
        outcome, loosely = _check_key(ops, model, deadline)
        if outcome.verdict == "illegal":
            shrink_deadline = time.monotonic() + (timeout if shrink_timeout is None else shrink_timeout)
            ordered = sorted(ops, key=lambda op: op.call)
            witness = _shrink(ordered, model, shrink_deadline, repeatable=loosely, frontier=outcome.frontier)
            # The explanation gets a moment of its own, however the shrinking went.
            explain_deadline = time.monotonic() + min(timeout, 1.0)
            counterexample, linearized = _explain_illegal(ordered, witness, model, explain_deadline, repeatable=loosely)
            return CheckResult("illegal", key, counterexample, linearized, len(operations), len(by_key), timeout)
        if outcome.verdict == "unknown":
            unknown.append(key)
    if unknown:
        return CheckResult("unknown", unknown[0], operations=len(operations), keys=len(by_key), timeout=timeout)
    return CheckResult("ok", operations=len(operations), keys=len(by_key), timeout=timeout)


def _check_key(ops: Sequence[Operation], model: Model[Any, Any, Any], deadline: float) -> tuple[Outcome, bool]:
    """One key's verdict, and whether it was shown illegal even with open-ended operations repeatable.

    Many open-ended operations make the exact search slow to prove a history
    illegal, as it must try each subset of them; the looser search that lets
    them take effect any number of times does not care which were used, and
    whatever it finds illegal is illegal. So it goes first, with half the time.
    """
    if any(op.pending for op in ops):
        now = time.monotonic()
        outcome = search(ops, model, now + (deadline - now) / 2, repeatable=True)
        if outcome.verdict == "illegal":
            return outcome, True
    return search(ops, model, deadline), False


@attrs.frozen
class _Witness:
    """A sub-history that is still illegal: ``core`` as recorded, ``optional`` relaxed.

    Both are indices into one key's operations in call order. An optional
    operation may or may not take effect (within its interval), and what it
    returned does not matter. If the witness is illegal, so is the key's whole
    history: relaxing an operation only allows more orders, and every
    operation outside the witness was shown not to matter by the step that
    left it out.
    """

    core: tuple[int, ...]
    optional: tuple[int, ...]

    def search(
        self, ordered: Sequence[Operation], model: Model[Any, Any, Any], deadline: float, *, repeatable: bool
    ) -> Outcome:
        """Search the witness; the path it returns holds indices into ``ordered``."""
        indices = self.core + self.optional
        outcome = search(
            [ordered[i] for i in indices],
            model,
            deadline,
            optional=[False] * len(self.core) + [True] * len(self.optional),
            repeatable=repeatable,
        )
        return attrs.evolve(outcome, path=tuple(indices[position] for position in outcome.path))


def _prefix(ordered: Sequence[Operation], count: int) -> _Witness:
    """The first ``count`` operations by call time, cut where the next one is called.

    An operation still running at the cut is made optional. This is a sound
    weakening: in any linearization of the whole history, every operation
    kept required returned before every dropped one was called, so comes
    before it, and an optional one either comes before all dropped ones too
    or after every required one, where its effect no longer matters; so if the
    prefix is not linearizable, neither is the whole.
    """
    cut = ordered[count].call if count < len(ordered) else math.inf
    returns = [math.inf if op.ret is None else op.ret for op in ordered[:count]]
    return _Witness(
        core=tuple(i for i, ret in enumerate(returns) if ret < cut),
        optional=tuple(i for i, ret in enumerate(returns) if ret >= cut),
    )


def _shrink(
    ordered: Sequence[Operation],
    model: Model[Any, Any, Any],
    deadline: float,
    *,
    repeatable: bool,
    frontier: float = math.inf,
) -> _Witness:
    """Shrink one key's illegal history, in call order, to a small witness.

    Only sound steps are taken, so that the result explains the original
    failure rather than making up one of its own (dropping a write can make a
    read look impossible). First the shortest illegal prefix is found by
    bisection, starting with a cut just after ``frontier``, where the search of
    the whole history got stuck. Then all but the last few required operations
    to return are left out, if that keeps it illegal (the last 1, 2, 4, ...),
    and then required operations are left out one chunk at a time by delta debugging,
    where leaving out means making optional: the operation stays in every
    later check as one that may or may not have taken effect within its
    interval. A check that runs out of time counts as "not illegal".

    Each check first lets the optional operations take effect any number of
    times, which is cheap however many operations have been left out, and
    whatever it finds illegal is illegal. Only if that fails, and unless
    ``repeatable`` (the history itself was shown illegal that way), does it
    try the exact check.
    """
    budget = max(deadline - time.monotonic(), 0.0)

    def illegal(witness: _Witness) -> bool:
        # No one check may eat the whole budget: a hopeless one is abandoned early.
        check_deadline = min(deadline, time.monotonic() + budget / 8)
        if witness.search(ordered, model, check_deadline, repeatable=True).verdict == "illegal":
            return True
        return not repeatable and witness.search(ordered, model, check_deadline, repeatable=False).verdict == "illegal"

    witness = _shortest_illegal_prefix(ordered, illegal, deadline, frontier)
    witness = _latest_core(ordered, witness, illegal, deadline)
    return _delta_debug(witness, illegal, deadline)


def _shortest_illegal_prefix(
    ordered: Sequence[Operation], illegal: Callable[[_Witness], bool], deadline: float, frontier: float
) -> _Witness:
    """The shortest illegal prefix, by bisection from a first cut just after ``frontier``."""
    low, high = 1, len(ordered)  # the prefix of `high` operations is known to be illegal
    guess = bisect.bisect_right([op.call for op in ordered], frontier)
    if guess < high and illegal(_prefix(ordered, guess)):
        high = guess
    while low < high and time.monotonic() < deadline:
        middle = (low + high) // 2
        if illegal(_prefix(ordered, middle)):
            high = middle
        else:
            low = middle + 1
    return _prefix(ordered, high)


def _latest_core(
    ordered: Sequence[Operation], witness: _Witness, illegal: Callable[[_Witness], bool], deadline: float
) -> _Witness:
    """Keep only the last 1, 2, 4, ... required operations to return, if that stays illegal.

    A violation usually shows in the last operations to return.
    """
    latest = sorted(witness.core, key=lambda i: (ordered[i].ret, i), reverse=True)
    size = 1
    while size < len(latest) and time.monotonic() < deadline:
        kept = frozenset(latest[:size])
        candidate = _Witness(tuple(i for i in witness.core if i in kept), witness.optional + tuple(latest[size:]))
        if illegal(candidate):
            return candidate
        size *= 2
    return witness


def _delta_debug(witness: _Witness, illegal: Callable[[_Witness], bool], deadline: float) -> _Witness:
    """Make required operations optional one chunk at a time, halving the chunk, while it stays illegal."""
    chunk = max(len(witness.core) // 2, 1)
    while time.monotonic() < deadline:
        removed = False
        start = 0
        while start < len(witness.core) and time.monotonic() < deadline:
            core = witness.core
            candidate = _Witness(core[:start] + core[start + chunk :], witness.optional + core[start : start + chunk])
            if illegal(candidate):
                witness, removed = candidate, True
            else:
                start += chunk
        if chunk == 1 and not removed:
            break
        chunk = max(chunk // 2, 1)
    return witness


def _explain_illegal(
    ordered: Sequence[Operation],
    witness: _Witness,
    model: Model[Any, Any, Any],
    deadline: float,
    *,
    repeatable: bool,
) -> tuple[tuple[Operation, ...], tuple[Operation, ...]]:
    """The witness's core in call order, and the longest order of its operations found (as recorded)."""
    path = witness.search(ordered, model, deadline, repeatable=repeatable).path
    return tuple(ordered[i] for i in sorted(witness.core)), tuple(ordered[i] for i in path)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _count(ops: Sequence[Operation]) -> str:
    return "this operation" if len(ops) == 1 else f"these {len(ops)} operations"


def _describe(input: Any) -> str:
    """``("put", 3)`` as ``put(3)``; anything else as its repr."""
    if isinstance(input, tuple | list) and input and isinstance(input[0], str):
        return f"{input[0]}({', '.join(repr(argument) for argument in input[1:])})"
    return repr(input)


def _table(ops: Sequence[Operation]) -> list[str]:
    rows = [("#", "client", "call", "return", "operation", "output")]
    for index, op in enumerate(ops, 1):
        ret = "-" if op.ret is None else f"{op.ret:.9g}"
        output = "?" if op.output is PENDING else repr(op.output)
        rows.append((str(index), str(op.client), f"{op.call:.9g}", ret, _describe(op.input), output))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
