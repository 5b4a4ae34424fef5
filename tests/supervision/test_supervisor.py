"""Supervisor: start order, strategies, restart types, intensity, escalation, exit signals."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

import genstatem as gs

from .helpers import Crash, Job, Journal, TrappingWorker, Worker, child, children, crash, worker

pytestmark = pytest.mark.anyio

LONG = 3600.0
"""A period no test outlives: every restart in a test counts."""


async def start_sup(
    system: gs.ActorSystem, specs: list[gs.ChildSpec], *, name: Any = None, **options: Any
) -> gs.ActorRef:
    options.setdefault("period", LONG)
    ref = await system.start(gs.Supervisor, gs.SupervisorSpec(specs, **options), name=name)
    assert ref is not None
    return ref


def three(journal: Journal, **options: Any) -> list[gs.ChildSpec]:
    return [worker(journal, id, **options) for id in ("a", "b", "c")]


# -- starting ----------------------------------------------------------------------------


async def test_children_start_in_order_with_the_supervisor_as_parent() -> None:
    """Children start in spec order, are registered under their names, and which_children lists them."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "a", name="alpha"), worker(journal, "b")])
        assert journal.entries == [("init", "a", "ok"), ("init", "b", "ok")]
        infos = await gs.Supervisor.which_children(sup)
        assert [(info.id, info.type) for info in infos] == [("a", "worker"), ("b", "worker")]
        assert infos[0].ref == system.whereis("alpha")
        assert all(info.ref is not None and info.ref.alive for info in infos)
        assert set(system.actors()) == {sup, *(info.ref for info in infos)}


async def test_a_child_that_fails_to_start_stops_the_others_in_reverse() -> None:
    """If a child fails to start, the ones started are stopped in reverse order and StartError is raised."""
    journal = Journal()
    journal.plan("c", "fail")
    async with gs.ActorSystem() as system:
        with pytest.raises(gs.StartError) as raised:
            await start_sup(system, [*three(journal, name=None), worker(journal, "d")], name="sup")
        assert system.actors() == []
        assert system.whereis("sup") is None
    reason = raised.value.reason
    assert reason[0] == "shutdown"
    assert reason[1][:2] == ("failed_to_start_child", "c")
    assert isinstance(reason[1][2], Crash)
    assert journal.events() == [
        ("init", "a", "ok"),
        ("init", "b", "ok"),
        ("init", "c", "fail"),
        ("terminate", "b", "shutdown"),
        ("terminate", "a", "shutdown"),
    ]


async def test_an_ignored_child_keeps_its_spec_with_no_ref() -> None:
    """A child whose init returns Ignore is listed with ref None; a temporary one is not kept."""
    journal = Journal()
    journal.plan("a", "ignore")
    journal.plan("t", "ignore")
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "a"), worker(journal, "t", restart="temporary")])
        assert await children(sup) == {"a": None}


async def test_a_bad_start_argument_fails_the_start() -> None:
    """A Supervisor started with something other than a SupervisorSpec fails to start."""
    async with gs.ActorSystem() as system:
        with pytest.raises(gs.StartError) as raised:
            await system.start(gs.Supervisor, [worker(Journal(), "a")])
        assert isinstance(raised.value.reason, TypeError)


async def test_a_supervisor_with_no_spec_has_no_children() -> None:
    """system.start(Supervisor) with no spec starts an empty one_for_one supervisor."""
    async with gs.ActorSystem() as system:
        sup = await system.start(gs.Supervisor)
        assert sup is not None
        assert await gs.Supervisor.which_children(sup) == []


# -- strategies -------------------------------------------------------------------------------


async def test_one_for_one_restarts_only_the_crashed_child() -> None:
    """one_for_one: the crashed child gets a new actor in its place; the others are untouched."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, three(journal), strategy="one_for_one")
        before = await children(sup)
        journal.clear()
        await crash(sup, "b")
        after = await children(sup)
        assert list(after) == ["a", "b", "c"]
        assert after["a"] is before["a"]
        assert after["c"] is before["c"]
        assert after["b"] is not before["b"]
        assert after["b"] is not None
        assert await after["b"].call("ping") == ("pong", "b")
        assert journal.events() == [("terminate", "b", "Crash"), ("init", "b", "ok")]


@pytest.mark.parametrize(
    ("strategy", "stopped", "untouched"),
    [("one_for_all", "dca", ""), ("rest_for_one", "dc", "a")],
)
async def test_group_strategies_stop_in_reverse_then_start_in_order(
    strategy: str, stopped: str, untouched: str
) -> None:
    """one_for_all (all) and rest_for_one (those after): the group stops in reverse, then starts in order."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [*three(journal), worker(journal, "d")], strategy=strategy)
        before = await children(sup)
        journal.clear()
        await crash(sup, "b")
        restarted = sorted({"b", *stopped})
        assert journal.events() == [
            ("terminate", "b", "Crash"),
            *(("terminate", id, "shutdown") for id in stopped),
            *(("init", id, "ok") for id in restarted),
        ]
        after = await children(sup)
        assert all(after[id] is before[id] for id in untouched)
        assert all(after[id] is not before[id] for id in restarted)
        assert not any(ref is not None and ref.alive for ref in (before[id] for id in restarted))


async def test_one_for_all_drops_temporary_siblings() -> None:
    """A temporary child stopped by a one_for_all restart is not started again and its spec is gone."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(
            system, [worker(journal, "a"), worker(journal, "t", restart="temporary")], strategy="one_for_all"
        )
        journal.clear()
        await crash(sup, "a")
        assert journal.events() == [("terminate", "a", "Crash"), ("terminate", "t", "shutdown"), ("init", "a", "ok")]
        assert list(await children(sup)) == ["a"]


async def test_a_restarted_child_keeps_its_name_and_place() -> None:
    """The replacement is registered under the child's name and listed where the old one was."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "a"), worker(journal, "b", name="bee"), worker(journal, "c")])
        old = system.whereis("bee")
        await crash(sup, "b")
        new = system.whereis("bee")
        assert new is not None
        assert new is not old
        assert list(await children(sup)) == ["a", "b", "c"]
        assert (await children(sup))["b"] is new
        assert await gs.call("bee", "ping") == ("pong", "b")


# -- restart types ----------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["normal", "shutdown", ("shutdown", "done"), "oops"])
async def test_a_permanent_child_is_always_restarted(reason: Any) -> None:
    """A permanent child is restarted after any exit, a clean one included."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "p")])
        old = await child(sup, "p")
        old.cast(("exit", reason))
        await old.wait_exit()
        new = await child(sup, "p")
        assert new is not old
        assert journal.inits("p") == 2


@pytest.mark.parametrize(
    ("reason", "restarted"), [("normal", False), ("shutdown", False), (("shutdown", 1), False), ("oops", True)]
)
async def test_a_transient_child_is_restarted_only_after_an_unclean_exit(reason: Any, restarted: bool) -> None:
    """A transient child is restarted after an abnormal exit; after a clean one its spec stays with no ref."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "t", restart="transient")])
        old = await child(sup, "t")
        old.cast(("exit", reason))
        await old.wait_exit()
        now = (await children(sup))["t"]
        assert (now is not None) == restarted
        assert journal.inits("t") == (2 if restarted else 1)


async def test_a_crashed_transient_child_is_restarted() -> None:
    """An exception is not a clean exit: a transient child that raises is restarted."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "t", restart="transient")])
        await crash(sup, "t")
        assert (await children(sup))["t"] is not None


@pytest.mark.parametrize("how", ["crash", "normal"])
async def test_a_temporary_child_is_never_restarted_and_its_spec_is_dropped(how: str) -> None:
    """A temporary child is not restarted after any exit, and it disappears from which_children."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "a"), worker(journal, "t", restart="temporary")])
        ref = await child(sup, "t")
        ref.cast("crash" if how == "crash" else ("exit", "normal"))
        await ref.wait_exit()
        assert list(await children(sup)) == ["a"]
        assert journal.inits("t") == 1
        assert await gs.Supervisor.count_children(sup) == gs.ChildCounts(1, 1, 0, 1)


# -- restart intensity --------------------------------------------------------------------------


async def test_more_than_intensity_restarts_stop_the_supervisor_with_shutdown() -> None:
    """Restarts up to intensity are fine; one more stops the children in reverse and the supervisor."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, three(journal, name=None), intensity=2, name="sup")
        await crash(sup, "b")
        await crash(sup, "b")
        journal.clear()
        with capture_logs() as logs:
            ref = await child(sup, "b")
            ref.cast("crash")
            assert await sup.wait_exit() == "shutdown"
        assert journal.events() == [
            ("terminate", "b", "Crash"),
            ("terminate", "c", "shutdown"),
            ("terminate", "a", "shutdown"),
        ]
        assert system.actors() == []
        assert system.whereis("sup") is None
        assert "restart intensity reached" in [entry["event"] for entry in logs if entry["log_level"] == "error"]


async def test_intensity_zero_gives_up_at_the_first_crash() -> None:
    """With intensity=0 the first crash stops the supervisor with "shutdown"."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "a")], intensity=0)
        (await child(sup, "a")).cast("crash")
        assert await sup.wait_exit() == "shutdown"
        assert journal.inits("a") == 1


async def test_clean_exits_that_restart_nothing_do_not_count() -> None:
    """Only restarts count toward intensity: transient clean exits and temporary exits do not."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "t", restart="transient"), worker(journal, "p")], intensity=1)
        (await child(sup, "t")).cast(("exit", "normal"))
        await crash(sup, "p")
        assert (await children(sup))["p"] is not None
        assert sup.alive


async def test_a_failed_restart_counts_and_is_retried() -> None:
    """A child whose init fails during a restart is tried again; each try counts as a restart."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "a"), worker(journal, "b")], intensity=3)
        journal.plan("b", "fail", "fail")
        (await child(sup, "b")).cast("crash")
        await journal.wait_for(lambda entries: journal.inits("b") == 4)
        ref = await child(sup, "b")
        assert await ref.call("ping") == ("pong", "b")
        assert [entry[2] for entry in journal.entries if entry[:2] == ("init", "b")] == ["ok", "fail", "fail", "ok"]
        # three restarts used of three: the next one is one too many
        ref.cast("crash")
        assert await sup.wait_exit() == "shutdown"


async def test_a_child_that_never_starts_again_makes_the_supervisor_give_up() -> None:
    """Retrying a restart that always fails ends once the intensity is reached; nothing loops forever."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "a"), worker(journal, "b")], intensity=5)
        journal.always("b", "fail")
        (await child(sup, "b")).cast("crash")
        assert await sup.wait_exit() == "shutdown"
        assert journal.inits("b") == 1 + 5
        assert system.actors() == []


async def test_a_failed_restart_under_one_for_all_restarts_the_group_again() -> None:
    """one_for_all: when a restart fails part-way, the retry stops what started and starts all again."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, three(journal), strategy="one_for_all", intensity=5)
        journal.plan("b", "fail")
        journal.clear()
        (await child(sup, "a")).cast("crash")
        await journal.wait_for(lambda entries: ("init", "c", "ok") in entries)
        assert journal.events() == [
            ("terminate", "a", "Crash"),
            ("terminate", "c", "shutdown"),
            ("terminate", "b", "shutdown"),
            ("init", "a", "ok"),
            ("init", "b", "fail"),
            ("terminate", "a", "shutdown"),
            ("init", "a", "ok"),
            ("init", "b", "ok"),
            ("init", "c", "ok"),
        ]
        refs = await children(sup)
        assert all(ref is not None and ref.alive for ref in refs.values())
        assert len(system.actors()) == 4


async def test_calls_are_answered_between_retries() -> None:
    """While a restart keeps failing, the supervisor still answers calls; the child shows no ref."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "a")], intensity=1000)
        journal.always("a", "fail")
        (await child(sup, "a")).cast("crash")
        await journal.wait_for(lambda entries: journal.inits("a") >= 3)
        assert await children(sup) == {"a": None}
        journal.always("a", "ok")
        await journal.wait_for(lambda entries: entries[-1] == ("init", "a", "ok"))
        assert (await children(sup))["a"] is not None


async def test_a_child_supervisor_that_gives_up_is_restarted_by_its_parent() -> None:
    """Escalation: an inner supervisor that reaches its intensity exits "shutdown"; the outer restarts it."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        inner_spec = gs.SupervisorSpec([worker(journal, "w", name="w")], intensity=0, period=LONG)
        outer = await start_sup(
            system,
            [gs.ChildSpec("inner", (gs.Supervisor, inner_spec), type="supervisor", name="inner")],
            intensity=1,
        )
        first_inner = system.whereis("inner")
        assert first_inner is not None
        (await child("inner", "w")).cast("crash")
        assert await first_inner.wait_exit() == "shutdown"
        second_inner = await child(outer, "inner")
        assert second_inner is not first_inner
        assert await gs.call("w", "ping") == ("pong", "w")
        # the inner gives up again: the outer's second restart within the period is one too many
        (await child("inner", "w")).cast("crash")
        assert await outer.wait_exit() == "shutdown"
        assert system.actors() == []
        assert journal.inits("w") == 2


# -- exit signals --------------------------------------------------------------------------------


class Parent(gs.GenStateMachine):
    """start_links what it is told to and replies with the ref; a cast ("exit", reason) stops it."""

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        return self._handle(event_type, content)

    async def _handle(self, event_type: Any, content: Any) -> Any:
        match event_type, content:
            case gs.Call(caller), ("start_link", cls, arg):
                return gs.KeepState(actions=gs.Reply(caller, await self.start_link(cls, arg)))
            case gs.Call(caller), ("link", ref):
                self.link(ref)
                return gs.KeepState(actions=gs.Reply(caller, None))
            case gs.Cast(), ("exit", reason):
                return gs.Stop(reason)
        return None


async def test_an_exit_signal_from_the_parent_stops_the_supervisor_children_first() -> None:
    """The actor that started the supervisor stops it with its reason; children stop first, in reverse."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        parent = await system.start(Parent, ("up", None))
        assert parent is not None
        sup = await parent.call(("start_link", gs.Supervisor, gs.SupervisorSpec(three(journal), period=LONG)))
        journal.clear()
        parent.cast(("exit", "going"))
        assert await sup.wait_exit() == "going"
        assert journal.events() == [
            ("terminate", "c", "shutdown"),
            ("terminate", "b", "shutdown"),
            ("terminate", "a", "shutdown"),
        ]
        assert system.actors() == []


async def test_an_exit_signal_from_a_stranger_is_logged_and_ignored() -> None:
    """A linked actor that is neither parent nor child exits: the supervisor logs it and carries on."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "a")])
        stranger = await system.start(Parent, ("up", None))
        assert stranger is not None
        await stranger.call(("link", sup))
        with capture_logs() as logs:
            stranger.cast(("exit", "broken"))
            await stranger.wait_exit()
            assert await children(sup) == {"a": await child(sup, "a")}
        assert sup.alive
        assert journal.inits("a") == 1
        warnings = [entry for entry in logs if entry["event"] == "exit signal from a non-child ignored"]
        assert len(warnings) == 1
        assert warnings[0]["reason"] == "'broken'"


async def test_the_system_exit_restarts_nothing() -> None:
    """Leaving the ActorSystem stops each supervisor's children in reverse order and restarts none."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, three(journal))
        journal.clear()
    assert journal.events() == [
        ("terminate", "c", "shutdown"),
        ("terminate", "b", "shutdown"),
        ("terminate", "a", "shutdown"),
    ]
    assert system.actors() == []


async def test_the_system_exit_stops_a_tree_from_the_leaves_in_reverse() -> None:
    """On exit a nested tree stops depth first: each supervisor stops its own children in reverse first."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        inner = gs.SupervisorSpec([worker(journal, "i1"), worker(journal, "i2")])
        await start_sup(
            system,
            [
                worker(journal, "a"),
                gs.ChildSpec("inner", (gs.Supervisor, inner), type="supervisor"),
                worker(journal, "z"),
            ],
        )
        await system.start(Worker, Job("loner", journal))
        journal.clear()
    assert journal.events() == [
        ("terminate", "loner", "shutdown"),
        ("terminate", "z", "shutdown"),
        ("terminate", "i2", "shutdown"),
        ("terminate", "i1", "shutdown"),
        ("terminate", "a", "shutdown"),
    ]


async def test_the_supervisor_logs_what_happens() -> None:
    """A crash and restart are reported: child exited (an error, with the reason), restart, child started."""
    journal = Journal()
    with capture_logs() as logs:
        async with gs.ActorSystem() as system:
            sup = await start_sup(system, [worker(journal, "a")])
            logs.clear()
            await crash(sup, "a")
    events = [(entry["event"], entry["log_level"]) for entry in logs if entry.get("supervisor") == repr(sup)]
    assert events[:3] == [("child exited", "error"), ("child restart", "info"), ("child started", "info")]
    assert ("supervisor shutdown", "info") in events
    exited = next(entry for entry in logs if entry["event"] == "child exited")
    assert "Crash" in exited["reason"]
    assert exited["child_id"] == "'a'"


async def test_clean_exits_are_not_logged_as_errors() -> None:
    """A permanent child's "normal" exit is reported at info level, not as an error."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "a")])
        with capture_logs() as logs:
            ref = await child(sup, "a")
            ref.cast(("exit", "normal"))
            await ref.wait_exit()
            await children(sup)
    assert [entry for entry in logs if entry["log_level"] == "error"] == []


async def test_a_trapping_child_is_still_stopped_by_its_supervisor() -> None:
    """Children trap exits or not: the supervisor's "shutdown" is from their parent, so it stops them."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "t", TrappingWorker)])
        journal.clear()
        await gs.Supervisor.terminate_child(sup, "t")
        assert journal.events() == [("terminate", "t", "shutdown")]
