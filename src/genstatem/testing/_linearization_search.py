"""The search for a linearization of one key's operations (Wing & Gong's, with Lowe's memoization).

``search`` is what ``check`` runs on each key, and what shrinking runs on
each candidate witness: a verdict, the longest order found, and where the
search got stuck. See ``_linearizability.py`` for the method as a whole.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import attrs

from ._history import PENDING, Operation

if TYPE_CHECKING:
    from ._linearizability import Model

Verdict: TypeAlias = Literal["ok", "illegal", "unknown"]

# How many search steps run between two looks at the clock.
_CLOCK_EVERY = 1024


@attrs.frozen
class Outcome:
    """A search's verdict, the longest order it found (indices into the history searched), and how far it got.

    ``frontier`` is the latest return time that bounded the search: the
    history is likely to be illegal already when cut soon after it.
    """

    verdict: Verdict
    path: tuple[int, ...] = ()
    frontier: float = -math.inf


def search(
    history: Sequence[Operation],
    model: Model[Any, Any, Any],
    deadline: float,
    *,
    optional: Sequence[bool] = (),
    repeatable: bool = False,
) -> Outcome:
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

    def run(self) -> Outcome:
        if not self.goal:
            return Outcome("ok")
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
                        return Outcome("ok", deepest, self.frontier)
                frames.append(self.expand(node))
        except _OutOfTime:
            return Outcome("unknown", deepest, self.frontier)
        return Outcome("illegal", deepest, self.frontier)


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
