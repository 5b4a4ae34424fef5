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
import itertools
import math
import time
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import Any, Literal, Protocol, TypeAlias, TypeVar

import attrs

from ._history import PENDING, Operation

StateT = TypeVar("StateT", bound=Hashable)
InputT_contra = TypeVar("InputT_contra", contravariant=True)
OutputT_co = TypeVar("OutputT_co", covariant=True)

Verdict: TypeAlias = Literal["ok", "illegal", "unknown"]

# How many search steps run between two looks at the clock.
_CLOCK_EVERY = 1024


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


def _check_key(ops: Sequence[Operation], model: Model[Any, Any, Any], deadline: float) -> tuple[_Outcome, bool]:
    """One key's verdict, and whether it was shown illegal even with open-ended operations repeatable.

    Many open-ended operations make the exact search slow to prove a history
    illegal, as it must try each subset of them; the looser search that lets
    them take effect any number of times does not care which were used, and
    whatever it finds illegal is illegal. So it goes first, with half the time.
    """
    if any(op.pending for op in ops):
        now = time.monotonic()
        outcome = _search(ops, model, now + (deadline - now) / 2, repeatable=True)
        if outcome.verdict == "illegal":
            return outcome, True
    return _search(ops, model, deadline), False


@attrs.frozen
class _Outcome:
    """A search's verdict, the longest order it found (indices into the history searched), and how far it got.

    ``frontier`` is the latest return time that bounded the search: the
    history is likely to be illegal already when cut soon after it.
    """

    verdict: Verdict
    path: tuple[int, ...] = ()
    frontier: float = -math.inf


def _search(
    history: Sequence[Operation],
    model: Model[Any, Any, Any],
    deadline: float,
    *,
    optional: Sequence[bool] = (),
    repeatable: bool = False,
) -> _Outcome:
    """Search for a linearization of one key's operations, depth first, remembering where it has been.

    Args:
        history: the operations.
        model: the sequential specification.
        deadline: when to give up, on the ``time.monotonic`` clock.
        optional: marks operations that may be left out, and whose outputs do
            not matter, but which still take effect within their interval if
            they take effect at all. Open-ended operations are always optional.
        repeatable: optional operations may take effect any number of times: a
            looser check, but a far cheaper one when they are many, since which
            of them were used no longer matters. Whatever it finds illegal is
            illegal.
    """
    marks = [op.pending or (i < len(optional) and optional[i]) for i, op in enumerate(history)]
    # An optional operation called after every required one returned could only come last: leave it out.
    returns = [math.inf if op.ret is None else op.ret for op in history]
    last_return = max((ret for ret, mark in zip(returns, marks, strict=True) if not mark), default=-math.inf)
    relevant = [i for i, op in enumerate(history) if not marks[i] or op.call <= last_return]
    search = _Search(
        [history[i] for i in relevant], [marks[i] for i in relevant], model, deadline, repeatable=repeatable
    )
    outcome = search.run()
    return attrs.evolve(outcome, path=tuple(relevant[i] for i in outcome.path))


# A point of the search: the required and optional operations linearized (bitmasks), the model state,
# where the scans for candidates may start, the latest call linearized (an optional operation that
# returned before it can no longer take effect), and the operations that led there from its parent.
_Node: TypeAlias = tuple[int, int, Any, int, int, float, tuple[int, ...]]


class _Search:
    """One key's search: Wing & Gong's, with Lowe's memoization and optional operations.

    An operation may be linearized next if it was called before (or when) the
    earliest return among the required operations not yet linearized. The
    search is depth first over required operations. Between two of them, the
    optional operations worth applying are explored breadth first, so that
    each state is first reached with as few of them used as possible; a node
    reached with a subset of the optional operations of an earlier one (same
    required operations, same state) makes it redundant.

    Operations that are alike are not tried one after another, as trying one
    of them covers the rest: of two candidates with equal input and output,
    only the one called no later and returning no later. And when the model
    says an operation never changes the state (a read), a candidate of that
    sort whose output fits the current state is taken at once, without trying
    the others: any order that takes it later works as well with it first.
    """

    def __init__(
        self,
        ops: list[Operation],
        optional: list[bool],
        model: Model[Any, Any, Any],
        deadline: float,
        *,
        repeatable: bool = False,
    ) -> None:
        self.ops = ops
        self.model = model
        self.deadline = deadline
        self.repeatable = repeatable
        required = [i for i in range(len(ops)) if not optional[i]]
        self.returns = [math.inf if op.ret is None else op.ret for op in ops]
        self.by_return = sorted(required, key=self.returns.__getitem__)
        self.by_call = sorted(required, key=lambda i: ops[i].call)
        self.goal = sum(1 << i for i in required)
        # An optional operation's output does not matter, so it is alike any other with the same input.
        self.kind = _kinds([(op.input, PENDING if optional[i] else op.output) for i, op in enumerate(ops)])
        preserves_state = getattr(model, "preserves_state", None)
        self.inert = [
            preserves_state is not None and bool(preserves_state(op.input, PENDING if optional[i] else op.output))
            for i, op in enumerate(ops)
        ]
        # Optional operations by kind, in call order; those that never change the state cannot matter.
        self.optional: dict[int, list[int]] = {}
        for i in sorted(range(len(ops)), key=lambda i: ops[i].call):
            if optional[i] and not self.inert[i]:
                self.optional.setdefault(self.kind[i], []).append(i)
        self.expiring = sorted((i for alike in self.optional.values() for i in alike), key=self.returns.__getitem__)
        # Whether an optional operation can run out of time, so that taking an earlier call can matter.
        self.expiry = any(self.returns[i] < math.inf for i in self.expiring)
        self.results: dict[tuple[Any, int], tuple[Any, Any]] = {}  # (state, kind) -> step's result
        self.frontier = -math.inf
        # (required bitmask, state) -> the optional bitmasks and latest calls it has been reached with.
        self.seen: dict[tuple[int, Any], list[tuple[int, float]]] = {}
        self.steps = 0

    def fresh(self, completed: int, used: int, state: Any, latest: float) -> bool:
        """Record a node; False if one at least as free was seen before.

        Of two nodes with the same required operations and state, one that
        used a subset of the other's optional operations, no later in time,
        can go wherever the other can.
        """
        reached = self.seen.setdefault((completed, state), [])
        if any(old & ~used == 0 and old_latest <= latest for old, old_latest in reached):
            return False
        reached.append((used, latest))
        return True

    def step(self, state: Any, i: int) -> tuple[Any, Any]:
        """Operation ``i``'s step from ``state``; the model is deterministic, so each is computed once."""
        self.steps += 1
        if self.steps % _CLOCK_EVERY == 0 and time.monotonic() > self.deadline:
            raise _OutOfTime
        key = (state, self.kind[i])
        result = self.results.get(key)
        if result is None:
            result = self.results[key] = self.model.step(state, self.ops[i].input)
        return result

    def expand(self, node: _Node) -> Iterator[_Node]:
        """The nodes one required operation further on, the likeliest first."""
        completed, used, state, first_return, first_call, latest, _ = node
        ops, by_return, by_call, returns = self.ops, self.by_return, self.by_call, self.returns
        # Required operations are linearized in no set order, so the scans start at the first one that is not.
        while completed >> by_return[first_return] & 1:
            first_return += 1
        while completed >> by_call[first_call] & 1:
            first_call += 1
        horizon = returns[by_return[first_return]]
        self.frontier = max(self.frontier, horizon)
        alike: dict[int, list[int]] = {}  # kind -> the candidates of that kind worth trying
        for i in itertools.islice(by_call, first_call, None):
            if ops[i].call > horizon:
                break
            if not completed >> i & 1:
                self.add_to_front(alike.setdefault(self.kind[i], []), i)
        candidates = [i for front in alike.values() for i in front]
        for i in candidates:
            if self.inert[i] and not self.expires_before(used, latest, ops[i].call):
                after, output = self.step(state, i)
                if after == state and output == ops[i].output:
                    # Taking now an operation that never changes the state loses no order: the only move to try.
                    forced = (completed | 1 << i, used, state, first_return, first_call, max(latest, ops[i].call), (i,))
                    if self.fresh(*forced[:3], forced[5]):
                        yield forced
                    return
        # Successors are made as they are asked for: most searches never need the optional operations.
        order = sorted(candidates, key=returns.__getitem__)
        frontier: list[tuple[int, Any, float, tuple[int, ...]]] = [(used, state, latest, ())]
        while frontier:
            for now_used, current, now_latest, chain in frontier:
                for i in order:
                    after, output = self.step(current, i)
                    call = max(now_latest, ops[i].call)
                    if output == ops[i].output and self.fresh(completed | 1 << i, now_used, after, call):
                        yield (completed | 1 << i, now_used, after, first_return, first_call, call, (*chain, i))
            deeper = []
            for now_used, current, now_latest, chain in frontier:
                for kind in self.optional.values():
                    for i in self.optional_front(kind, now_used, now_latest, horizon):
                        after, _ = self.step(current, i)
                        then_used = now_used if self.repeatable else now_used | 1 << i
                        then_latest = max(now_latest, ops[i].call)
                        # An optional operation is worth linearizing only for its effect.
                        if after != current and self.fresh(completed, then_used, after, then_latest):
                            deeper.append((then_used, after, then_latest, (*chain, i)))
            frontier = deeper

    def optional_front(self, kind: list[int], used: int, latest: float, horizon: float) -> list[int]:
        """The optional operations of one kind (in call order) that may take effect now and are worth trying."""
        if not self.expiry:  # none runs out of time: the first unused one will do
            first = next((i for i in kind if not used >> i & 1), None)
            return [] if first is None or self.ops[first].call > horizon else [first]
        front: list[int] = []
        for i in kind:
            if self.ops[i].call > horizon:
                break
            if not used >> i & 1 and self.returns[i] >= latest:
                self.add_to_front(front, i)
        return front

    def add_to_front(self, front: list[int], i: int) -> None:
        """Add operation ``i``, called no earlier than those in ``front``, to alike ones worth trying.

        Of two alike operations, the one called no later and returning no
        later may go wherever the other can, so only it is tried. When no
        optional operation can run out of time, when one was called does not
        matter, and only the first to return is tried.
        """
        if not front:
            front.append(i)
        elif self.expiry:
            if all(self.returns[i] < self.returns[j] for j in front):
                front.append(i)
        elif self.returns[i] < self.returns[front[0]]:
            front[0] = i

    def expires_before(self, used: int, latest: float, call: float) -> bool:
        """Whether some optional operation that may still take effect must do so before ``call``."""
        for i in self.expiring:
            if self.returns[i] >= call:
                return False
            if self.returns[i] >= latest and not used >> i & 1:
                return True
        return False

    def run(self) -> _Outcome:
        if not self.goal:
            return _Outcome("ok")
        root: _Node = (0, 0, self.model.init(), 0, 0, -math.inf, ())
        self.fresh(*root[:3], root[5])
        # The successors still to try of each node on the current path.
        frames: list[Iterator[_Node]] = []
        path: list[_Node] = []
        deepest: tuple[int, ...] = ()  # the order that linearized the most required operations
        deepest_done = 0
        try:
            frames.append(self.expand(root))
            while frames:
                node = next(frames[-1], None)
                if node is None:
                    frames.pop()
                    if path:
                        path.pop()
                    continue
                path.append(node)
                done = node[0].bit_count()
                if done > deepest_done or node[0] == self.goal:
                    deepest, deepest_done = tuple(i for step in path for i in step[6]), done
                    if node[0] == self.goal:
                        return _Outcome("ok", deepest, self.frontier)
                frames.append(self.expand(node))
        except _OutOfTime:
            return _Outcome("unknown", deepest, self.frontier)
        return _Outcome("illegal", deepest, self.frontier)


class _OutOfTime(Exception):
    """The search's deadline passed."""


def _kinds(values: Sequence[Any]) -> list[int]:
    """Number the values so that equal values share a number (values need not be hashable)."""
    numbers: dict[Any, int] = {}
    unhashable: list[tuple[int, Any]] = []
    kinds = []
    for value in values:
        try:
            kinds.append(numbers.setdefault(value, len(numbers) + len(unhashable)))
        except TypeError:
            same = next((k for k, other in unhashable if other == value), None)
            if same is None:
                same = len(numbers) + len(unhashable)
                unhashable.append((same, value))
            kinds.append(same)
    return kinds


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
    ) -> _Outcome:
        """Search the witness; the path it returns holds indices into ``ordered``."""
        indices = self.core + self.optional
        outcome = _search(
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
    witness = _prefix(ordered, high)
    # A violation usually shows in the last operations to return: try cores of those first, doubling.
    latest = sorted(witness.core, key=lambda i: (ordered[i].ret, i), reverse=True)
    size = 1
    while size < len(latest) and time.monotonic() < deadline:
        kept = frozenset(latest[:size])
        candidate = _Witness(tuple(i for i in witness.core if i in kept), witness.optional + tuple(latest[size:]))
        if illegal(candidate):
            witness = candidate
            break
        size *= 2
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
