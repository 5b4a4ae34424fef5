"""The linearizability checker: histories, the key-value model, verdicts, counterexamples."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genstatem.testing._history import PENDING, HistoryRecorder, Operation
from genstatem.testing._linearizability import CheckResult, KVModel, check

KV = KVModel()
NEVER_WRITTEN = "never-written"


def done(client: Any, input: Any, call: float, ret: float, output: Any, key: Any = "k") -> Operation:
    return Operation(client, key, input, call, output, ret)


def open_ended(client: Any, input: Any, call: float, key: Any = "k") -> Operation:
    return Operation(client, key, input, call)


def put(value: Any) -> tuple[str, Any]:
    return ("put", value)


GET = ("get",)
DELETE = ("delete",)


def cas(expected: Any, new: Any) -> tuple[str, Any, Any]:
    return ("cas", expected, new)


def verdict(history: Sequence[Operation], **options: Any) -> str:
    return check(history, KV, **options).verdict


def brute_force(
    ops: Sequence[Operation], model: Any = KV, *, optional: Collection[int] = (), repeatable: bool = False
) -> bool:
    """Linearizable by trying every order (one key, a handful of operations): the oracle.

    Operations in ``optional``, and open-ended ones, may be left out and their outputs do not matter;
    those that returned still take effect within their interval if at all. With ``repeatable`` they may
    take effect any number of times.
    """
    free = [op.pending or i in optional for i, op in enumerate(ops)]
    dead_ends: set[tuple[frozenset[int], Any]] = set()

    def extend(remaining: frozenset[int], state: Any) -> bool:
        if all(free[i] for i in remaining):
            return True
        if (remaining, state) in dead_ends:
            return False
        dead_ends.add((remaining, state))
        for i in remaining:
            if any(not free[j] and ops[j].ret < ops[i].call for j in remaining):  # type: ignore[operator]
                continue
            after, output = model.step(state, ops[i].input)
            if not free[i] and output != ops[i].output:
                continue
            # An optional operation that returned before this one was called can no longer take effect.
            expired = {j for j in remaining if free[j] and ops[j].ret is not None and ops[j].ret < ops[i].call}
            rest = remaining - expired if repeatable and free[i] else remaining - expired - {i}
            if extend(rest, after):
                return True
        return False

    return extend(frozenset(range(len(ops))), model.init())


# ---------------------------------------------------------------- the model


def test_kv_model_follows_its_four_requests() -> None:
    """put sets, get reads (None when absent), delete clears, cas swaps only on a match."""
    state = KV.init()
    assert KV.step(state, GET) == (None, None)
    state, out = KV.step(state, put(1))
    assert (state, out) == (1, "ok")
    assert KV.step(state, cas(2, 3)) == (1, False)
    state, out = KV.step(state, cas(1, 3))
    assert (state, out) == (3, True)
    assert KV.step(state, DELETE) == (None, "ok")
    assert KV.step(None, cas(None, 5)) == (5, True)


def test_kv_model_accepts_lists_and_rejects_unknown_requests() -> None:
    """Requests decoded as lists work like tuples; anything else is an error naming it."""
    assert KV.step(None, ["put", 4]) == (4, "ok")
    with pytest.raises(ValueError, match="incr"):
        KV.step(None, ("incr",))


# ---------------------------------------------------------------- classic histories


def test_sequential_history_is_linearizable() -> None:
    """Operations one after another, each seeing the last write, are linearizable."""
    history = [
        done("a", put(1), 0, 1, "ok"),
        done("b", GET, 2, 3, 1),
        done("a", put(2), 4, 5, "ok"),
        done("b", GET, 6, 7, 2),
    ]
    result = check(history, KV)
    assert result.verdict == "ok"
    assert result.ok
    assert result.explain() == "Linearizable: 4 operations on 1 key."


def test_stale_read_after_acknowledged_write_is_illegal() -> None:
    """A read that starts after a write was acknowledged must not return the older value."""
    history = [
        done("a", put(1), 0, 1, "ok"),
        done("a", put(2), 2, 3, "ok"),
        done("b", GET, 4, 5, 1),
    ]
    result = check(history, KV)
    assert result.verdict == "illegal"
    assert result.key == "k"
    assert not result.ok


def test_read_concurrent_with_a_write_may_see_either_value() -> None:
    """A read overlapping a write may return the old value or the new one."""
    for seen in (1, 2):
        history = [
            done("a", put(1), 0, 1, "ok"),
            done("a", put(2), 2, 6, "ok"),
            done("b", GET, 3, 4, seen),
        ]
        assert verdict(history) == "ok"


def test_concurrent_writes_must_be_seen_in_one_order() -> None:
    """Readers may disagree with nothing: once one saw 1 then 2, no later read sees 2 then 1."""
    writes = [done("w1", put(1), 0, 20, "ok"), done("w2", put(2), 0, 20, "ok")]
    consistent = [
        done("a", GET, 1, 2, 1),
        done("a", GET, 3, 4, 2),
        done("b", GET, 5, 6, 2),
        done("b", GET, 7, 8, 2),
    ]
    inconsistent = [
        done("a", GET, 1, 2, 1),
        done("a", GET, 3, 4, 2),
        done("b", GET, 5, 6, 2),
        done("b", GET, 7, 8, 1),
    ]
    assert verdict(writes + consistent) == "ok"
    assert verdict(writes + inconsistent) == "illegal"


def test_operations_that_touch_in_time_count_as_concurrent() -> None:
    """A call at the very instant another operation returned may be ordered before it."""
    history = [
        done("a", put(1), 0, 1, "ok"),
        done("a", put(2), 2, 3, "ok"),
        done("b", GET, 3, 4, 1),
    ]
    assert verdict(history) == "ok"


def test_cas_succeeds_only_on_the_expected_value() -> None:
    """cas returns True exactly when the value matched, and only then changes it."""
    good = [
        done("a", put(1), 0, 1, "ok"),
        done("a", cas(2, 3), 2, 3, False),
        done("a", cas(1, 3), 4, 5, True),
        done("a", GET, 6, 7, 3),
    ]
    assert verdict(good) == "ok"
    assert verdict([*good[:1], done("a", cas(2, 3), 2, 3, True)]) == "illegal"
    assert verdict([*good[:2], done("a", GET, 4, 5, 3)]) == "illegal"


def test_only_one_of_two_concurrent_cas_on_the_same_value_wins() -> None:
    """Two concurrent cas(None, x) cannot both succeed; one winning and one losing is fine."""
    both = [done("a", cas(None, 1), 0, 5, True), done("b", cas(None, 2), 0, 5, True)]
    one = [done("a", cas(None, 1), 0, 5, True), done("b", cas(None, 2), 0, 5, False)]
    assert verdict(both) == "illegal"
    assert verdict(one) == "ok"


def test_alike_operations_are_ordered_by_their_deadlines() -> None:
    """Of two equal operations with equal outputs, the one that must return first may go first."""
    history = [
        done("a", put(1), 0, 0.5, "ok"),
        done("b", cas(1, 2), 0, 1, True),
        done("c", cas(1, 2), 0, 10, True),
        done("d", put(1), 2, 3, "ok"),
    ]
    assert verdict(history) == "ok"


def test_delete_makes_the_value_absent() -> None:
    """After an acknowledged delete a read sees None, never the deleted value."""
    history = [done("a", put(1), 0, 1, "ok"), done("a", DELETE, 2, 3, "ok")]
    assert verdict([*history, done("b", GET, 4, 5, None)]) == "ok"
    assert verdict([*history, done("b", GET, 4, 5, 1)]) == "illegal"


def test_read_of_a_value_never_written_is_illegal() -> None:
    """A read returning a value no one wrote cannot be linearized, whatever the timing."""
    history = [
        done("a", put(1), 0, 10, "ok"),
        done("b", put(2), 0, 10, "ok"),
        open_ended("c", put(3), 0),
        done("d", GET, 0, 10, 4),
    ]
    assert verdict(history) == "illegal"


def test_empty_history_and_histories_of_open_ended_operations_are_linearizable() -> None:
    """With nothing acknowledged there is nothing to contradict."""
    assert verdict([]) == "ok"
    assert verdict([open_ended("a", put(1), 0), open_ended("b", GET, 1)]) == "ok"


# ---------------------------------------------------------------- open-ended operations


def test_timed_out_write_that_took_effect_is_accepted() -> None:
    """A write whose outcome is unknown may have taken effect, even long after its call."""
    history = [
        open_ended("a", put(1), 0),
        done("b", GET, 1, 2, None),
        done("b", GET, 50, 51, 1),
        done("b", GET, 60, 61, 1),
    ]
    assert verdict(history) == "ok"


def test_timed_out_write_that_never_took_effect_is_accepted() -> None:
    """A write whose outcome is unknown may also never have taken effect."""
    history = [
        done("a", put(1), 0, 1, "ok"),
        open_ended("a", put(2), 2),
        done("b", GET, 50, 51, 1),
    ]
    assert verdict(history) == "ok"


def test_timed_out_write_takes_effect_at_most_once_and_not_before_its_call() -> None:
    """An open-ended write is one event after its call: it cannot explain a read before it, nor two."""
    before_call = [done("b", GET, 0, 1, 1), open_ended("a", put(1), 2)]
    twice = [
        open_ended("a", put(1), 0),
        done("b", GET, 1, 2, 1),
        done("c", put(2), 3, 4, "ok"),
        done("b", GET, 5, 6, 1),
    ]
    assert verdict(before_call) == "illegal"
    assert verdict(twice) == "illegal"


def test_timed_out_cas_is_applied_with_its_real_effect() -> None:
    """An open-ended cas takes effect only if its expected value is there when it does."""
    history = [
        done("a", put(1), 0, 1, "ok"),
        open_ended("a", cas(1, 2), 2),
        done("b", put(3), 3, 4, "ok"),
        done("b", GET, 5, 6, 2),
    ]
    assert verdict(history) == "illegal"
    history[2] = done("b", put(1), 3, 4, "ok")  # the cas may land after this put and succeed
    assert verdict(history) == "ok"


# ---------------------------------------------------------------- keys, budgets


def test_keys_are_checked_independently() -> None:
    """Each key is its own register: a write to one key never explains a read of another."""
    history = [
        done("a", put(1), 0, 1, "ok", key="x"),
        done("b", GET, 2, 3, 1, key="x"),
        done("b", GET, 2, 3, None, key="y"),
    ]
    assert verdict(history) == "ok"
    history.append(done("c", GET, 4, 5, 1, key="y"))
    result = check(history, KV)
    assert result.verdict == "illegal"
    assert result.key == "y"
    assert all(op.key == "y" for op in result.counterexample)


def hard_history(key: Any = "k", writers: int = 18) -> list[Operation]:
    """Many concurrent writes, then a read no order explains: exponential to refute."""
    writes = [done(f"w{i}", put(i), 0, 10, "ok", key=key) for i in range(writers)]
    return [*writes, done("r", GET, 11, 12, NEVER_WRITTEN, key=key)]


def test_unknown_when_the_budget_runs_out() -> None:
    """A search that cannot finish in time answers "unknown" (never a guess), naming the key."""
    result = check(hard_history(), KV, timeout=0.01)
    assert result.verdict == "unknown"
    assert result.key == "k"
    assert "Unknown" in result.explain()


def test_a_cheap_violation_is_found_even_when_another_key_is_too_expensive() -> None:
    """Keys are checked smallest first, so an expensive key does not hide an illegal one."""
    stale = [
        done("a", put(1), 0, 1, "ok", key="small"),
        done("a", put(2), 2, 3, "ok", key="small"),
        done("b", GET, 4, 5, 1, key="small"),
    ]
    result = check(hard_history(key="big") + stale, KV, timeout=0.5)
    assert result.verdict == "illegal"
    assert result.key == "small"


# ---------------------------------------------------------------- counterexamples


def noisy_stale_read() -> list[Operation]:
    """A long sequential run of writes and reads on two keys, with one stale read in the middle."""
    history = []
    t = 0.0
    for i in range(30):
        for key in ("k", "other"):
            history.append(done("w", put(i), t, t + 1, "ok", key=key))
            history.append(done("r", GET, t + 2, t + 3, i, key=key))
            t += 4
        if i == 20:
            history.append(done("late", GET, t, t + 1, 15))  # 15 was overwritten long ago
            t += 2
    return history


def test_counterexample_is_small_and_still_illegal() -> None:
    """The counterexample is a handful of the key's operations that are not linearizable on their own."""
    history = noisy_stale_read()
    result = check(history, KV)
    assert result.verdict == "illegal"
    assert result.key == "k"
    assert set(result.counterexample) <= set(history)
    assert len(result.counterexample) <= 3
    assert check(result.counterexample, KV).verdict == "illegal"
    assert any(op.client == "late" for op in result.counterexample)


def test_counterexample_of_a_stale_read_is_the_overwrite_and_the_read() -> None:
    """A stale read is shown by the write that overwrote the value and the read that still saw it."""
    history = [
        done("a", put(1), 0, 1, "ok"),
        done("a", put(2), 2, 3, "ok"),
        done("b", GET, 4, 5, 1),
    ]
    result = check(history, KV)
    assert result.counterexample == tuple(history[1:])
    assert result.linearized == (history[1],)


def test_counterexample_never_blames_a_read_on_a_write_it_left_out() -> None:
    """Operations left out of a counterexample still count as possibly done, so a read never looks made up."""
    history = [
        done("a", put(1), 0, 1, "ok"),
        done("b", GET, 2, 3, 1),
        done("a", put(2), 4, 5, "ok"),
        done("b", GET, 6, 7, 2),
        done("a", put(3), 8, 9, "ok"),
        done("c", GET, 10, 11, 2),
    ]
    result = check(history, KV)
    core = list(result.counterexample)
    assert history[4] in core
    assert history[5] in core
    others = [op for op in history if op not in core]
    assert not brute_force(core + others, optional=range(len(core), len(history)))


def test_explain_prints_the_counterexample_with_times_and_outputs() -> None:
    """The explanation names the key and lists each operation's client, times, request and output."""
    history = [
        done("alice", put(1), 0, 1.5, "ok"),
        done("alice", put(2), 2, 3, "ok"),
        done("bob", GET, 4.25, 5, 1),
    ]
    text = check(history, KV).explain()
    assert "Not linearizable: key 'k'" in text
    assert "alice" in text
    assert "bob" in text
    assert "4.25" in text
    assert "put(2)" in text
    assert "get()" in text
    assert "'ok'" in text
    assert "The longest order found: #1 put(2) -> 'ok'; then no operation can come next." in text


def test_shrinking_with_no_budget_still_returns_an_illegal_counterexample() -> None:
    """Without time to shrink, the counterexample is larger but still a correct one."""
    result = check(noisy_stale_read(), KV, shrink_timeout=0)
    assert result.verdict == "illegal"
    assert check(result.counterexample, KV).verdict == "illegal"


# ---------------------------------------------------------------- recording


class FrozenClock:
    """A clock that moves only when told to, like virtual time between events."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_recorder_turns_outcomes_into_operations() -> None:
    """ok records the output, info an open-ended operation, fail nothing at all."""
    clock = FrozenClock()
    recorder = HistoryRecorder(clock=clock)
    write = recorder.invoke("a", "k", put(1))
    lost = recorder.invoke("b", "k", put(2))
    timed_out = recorder.invoke("c", "k", put(3))
    clock.now = 1.0
    acknowledged = recorder.ok(write, "ok")
    recorder.fail(lost)
    unknown = recorder.info(timed_out)
    assert acknowledged == Operation("a", "k", put(1), acknowledged.call, "ok", 1.0)
    assert unknown.pending
    assert unknown.output is PENDING
    assert recorder.history() == (acknowledged, unknown)


def test_recorder_keeps_event_order_on_a_clock_that_does_not_move() -> None:
    """On a frozen clock, a read invoked after a write returned is still recorded after it."""
    recorder = HistoryRecorder(clock=FrozenClock())
    write = recorder.invoke("a", "k", put(1))
    recorder.ok(write, "ok")
    read = recorder.invoke("a", "k", GET)
    recorder.ok(read, None)
    first, second = recorder.history()
    assert first.ret is not None
    assert second.ret is not None
    assert first.call < first.ret < second.call < second.ret
    assert verdict(recorder.history()) == "illegal"


def test_recorder_reports_operations_still_in_flight_as_open_ended() -> None:
    """An invocation never completed is in the history with an unknown outcome."""
    recorder = HistoryRecorder(clock=FrozenClock())
    recorder.invoke("a", "k", put(1))
    (operation,) = recorder.history()
    assert operation.pending


def test_recorder_refuses_to_complete_an_invocation_twice() -> None:
    """Each invocation ends exactly once."""
    recorder = HistoryRecorder()
    invocation = recorder.invoke("a", "k", GET)
    recorder.ok(invocation, None)
    with pytest.raises(ValueError, match="not an open invocation"):
        recorder.fail(invocation)


def test_operation_rejects_inconsistent_returns() -> None:
    """An output needs a return time and the other way round, and nothing returns before its call."""
    with pytest.raises(ValueError, match="exactly when"):
        Operation("a", "k", GET, 0.0, None)
    with pytest.raises(ValueError, match="exactly when"):
        Operation("a", "k", GET, 0.0, PENDING, 1.0)
    with pytest.raises(ValueError, match="before it was called"):
        Operation("a", "k", GET, 2.0, None, 1.0)


def test_a_model_of_ones_own_can_be_checked() -> None:
    """Any deterministic model with hashable states works, e.g. a counter."""

    @attrs.frozen
    class Counter:
        def init(self) -> int:
            return 0

        def step(self, state: int, input: Hashable) -> tuple[int, int]:
            return (state + 1, state + 1) if input == "incr" else (state, state)

    ok = [done("a", "incr", 0, 5, 2, key="n"), done("b", "incr", 0, 5, 1, key="n"), done("c", "read", 6, 7, 2, key="n")]
    twice = [done("a", "incr", 0, 5, 1, key="n"), done("b", "incr", 0, 5, 1, key="n")]
    assert check(ok, Counter()).verdict == "ok"
    assert check(twice, Counter()).verdict == "illegal"


# ---------------------------------------------------------------- properties

values = st.integers(0, 3)
requests = st.one_of(
    st.tuples(st.just("put"), values),
    st.just(GET),
    st.just(DELETE),
    st.tuples(st.just("cas"), st.none() | values, values),
)


@st.composite
def kv_runs(draw: st.DrawFn, *, max_ops: int = 10) -> list[Operation]:
    """A history of a real sequential store: each interval contains its operation's true moment."""
    count = draw(st.integers(1, max_ops))
    keys = draw(st.sampled_from([("k",), ("k", "j")]))
    reader = draw(st.integers(0, count - 1))  # at least one acknowledged read
    stores: dict[Any, Any] = {}
    history = []
    for moment in range(count):
        key = draw(st.sampled_from(keys))
        request = GET if moment == reader else draw(requests)
        fate = "ok" if moment == reader else draw(st.sampled_from(["ok", "ok", "ok", "took effect", "lost"]))
        call = 10 * moment - draw(st.integers(0, 25))
        ret = 10 * moment + draw(st.integers(0, 25))
        if fate != "lost":
            stores[key], output = KV.step(stores.get(key), request)
        if fate == "ok":
            history.append(done(moment, request, call, ret, output, key=key))
        elif request != GET or draw(st.booleans()):  # a timed-out read may be kept or dropped
            history.append(open_ended(moment, request, call, key=key))
    return history


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kv_runs())
def test_histories_of_a_real_store_are_linearizable(history: list[Operation]) -> None:
    """Whatever the overlaps and timeouts, a history a sequential store really produced is "ok"."""
    assert verdict(history) == "ok"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kv_runs(), st.data())
def test_a_read_of_a_value_never_written_makes_a_real_history_illegal(history: list[Operation], data: Any) -> None:
    """Changing one read's output to a value never written is caught, and the counterexample shows it."""
    reads = [i for i, op in enumerate(history) if op.input == GET and not op.pending]
    index = data.draw(st.sampled_from(reads))
    history[index] = attrs.evolve(history[index], output=NEVER_WRITTEN)
    result = check(history, KV)
    assert result.verdict == "illegal"
    assert result.key == history[index].key
    assert result.counterexample == (history[index],)


@st.composite
def small_histories(draw: st.DrawFn) -> list[Operation]:
    """Arbitrary small histories on one key: random times (ties included), outputs and timeouts."""
    history = []
    for client in range(draw(st.integers(1, 6))):
        request = draw(requests)
        call = draw(st.integers(0, 8))
        if draw(st.integers(0, 4)) == 0:
            history.append(open_ended(client, request, call))
            continue
        output = draw(
            st.sampled_from(["ok"])
            if request[0] in ("put", "delete")
            else st.booleans()
            if request[0] == "cas"
            else st.none() | values
        )
        history.append(done(client, request, call, call + draw(st.integers(0, 6)), output))
    return history


@settings(max_examples=300, deadline=None)
@given(small_histories())
def test_verdicts_agree_with_trying_every_order(history: list[Operation]) -> None:
    """On small histories the checker says "ok" exactly when some order of the operations works."""
    assert verdict(history) == ("ok" if brute_force(history) else "illegal")


@settings(max_examples=300, deadline=None)
@given(small_histories())
def test_counterexamples_are_sound_and_one_minimal(history: list[Operation]) -> None:
    """A counterexample stays illegal with every other operation optional, and needs each of its operations.

    Optional means it may or may not have taken effect within its interval, whatever it returned. Leaving
    out one more operation makes it linearizable at least when the optional operations may take effect
    more than once (the shrinker checks that looser form when it suffices, as it is cheaper).
    """
    result = check(history, KV)
    if result.verdict != "illegal":
        return
    core = list(result.counterexample)
    others = [op for op in history if not any(op is kept for kept in core)]
    assert not brute_force(core + others, optional=range(len(core), len(history)))
    for op in core:
        rest = [other for other in core if other is not op]
        assert brute_force([*rest, op, *others], optional=range(len(rest), len(history)), repeatable=True)


def test_check_result_defaults_describe_an_empty_success() -> None:
    """A bare CheckResult is an "ok" over nothing."""
    result = CheckResult("ok")
    assert result.ok
    assert result.counterexample == ()


def test_checking_is_deterministic() -> None:
    """The same history gives the same verdict and counterexample every time."""
    history = noisy_stale_read()
    results = [check(history, KV) for _ in range(2)]
    assert results[0] == results[1]


def test_brute_force_oracle_agrees_on_the_classic_cases() -> None:
    """The test oracle itself gets a stale read and a concurrent read right."""
    stale = [done("a", put(1), 0, 1, "ok"), done("a", put(2), 2, 3, "ok"), done("b", GET, 4, 5, 1)]
    concurrent = [done("a", put(1), 0, 1, "ok"), done("a", put(2), 2, 6, "ok"), done("b", GET, 3, 4, 1)]
    assert not brute_force(stale)
    assert brute_force(concurrent)
