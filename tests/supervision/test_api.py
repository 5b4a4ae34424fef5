"""Supervisor's API functions: start, terminate, restart, delete, which and count children."""

from __future__ import annotations

from typing import Any

import pytest

import genstatem as gs

from .helpers import Journal, Worker, child, children, worker

pytestmark = pytest.mark.anyio


async def start_sup(system: gs.ActorSystem, specs: list[gs.ChildSpec], name: Any = "sup") -> gs.ActorRef:
    ref = await system.start(gs.Supervisor, gs.SupervisorSpec(specs, period=3600), name=name)
    assert ref is not None
    return ref


async def test_start_child_appends_and_starts_a_child() -> None:
    """start_child starts the child after the others and returns its ref; it is supervised like them."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "a")])
        ref = await gs.Supervisor.start_child("sup", worker(journal, "b", name="bee"))
        assert ref is not None
        assert ref == system.whereis("bee")
        assert await children("sup") == {"a": await child("sup", "a"), "b": ref}
        ref.cast("crash")
        await ref.wait_exit()
        assert (await children("sup"))["b"] not in (None, ref)


async def test_start_child_takes_a_ref_or_a_name() -> None:
    """Every API function takes the supervisor's ref as well as its name; an unknown name is NoProcess."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [])
        await gs.Supervisor.start_child(sup, worker(journal, "a"))
        assert [info.id for info in await gs.Supervisor.which_children(sup)] == ["a"]
        with pytest.raises(gs.NoProcess):
            await gs.Supervisor.which_children("nobody")
        with pytest.raises(gs.NoProcess):
            await gs.Supervisor.start_child("nobody", worker(journal, "b"))


async def test_start_child_that_fails_raises_start_error_and_keeps_nothing() -> None:
    """A child whose init fails makes start_child raise StartError; no spec is kept."""
    journal = Journal()
    journal.plan("b", "fail")
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "a")])
        with pytest.raises(gs.StartError):
            await gs.Supervisor.start_child("sup", worker(journal, "b"))
        assert list(await children("sup")) == ["a"]
        assert len(system.actors()) == 2


async def test_start_child_with_a_name_taken_raises_start_error() -> None:
    """A child whose name is registered already fails to start: StartError with AlreadyStarted."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "a", name="taken")])
        with pytest.raises(gs.StartError) as raised:
            await gs.Supervisor.start_child("sup", worker(journal, "b", name="taken"))
        assert isinstance(raised.value.reason, gs.AlreadyStarted)
        assert list(await children("sup")) == ["a"]


async def test_start_child_with_a_duplicate_id_raises_value_error() -> None:
    """Adding a child whose id is taken raises ValueError naming the id field; nothing is started."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "a")])
        with pytest.raises(ValueError, match=r"ChildSpec\.id.*'a'"):
            await gs.Supervisor.start_child("sup", worker(journal, "a"))
        assert journal.inits("a") == 1


async def test_start_child_wants_a_child_spec() -> None:
    """Anything but a ChildSpec is refused in the caller."""
    async with gs.ActorSystem() as system:
        await start_sup(system, [])
        with pytest.raises(TypeError):
            await gs.Supervisor.start_child("sup", (Worker, None))  # type: ignore[arg-type]


async def test_start_child_ignored_keeps_the_spec_unless_temporary() -> None:
    """Ignore from init returns None; the spec is kept with no ref, unless the child is temporary."""
    journal = Journal()
    journal.plan("p", "ignore")
    journal.plan("t", "ignore")
    async with gs.ActorSystem() as system:
        await start_sup(system, [])
        assert await gs.Supervisor.start_child("sup", worker(journal, "p")) is None
        assert await gs.Supervisor.start_child("sup", worker(journal, "t", restart="temporary")) is None
        assert await children("sup") == {"p": None}
        assert await gs.Supervisor.restart_child("sup", "p") is not None


async def test_terminate_child_stops_it_and_keeps_the_spec() -> None:
    """terminate_child stops the child with "shutdown", does not restart it, and keeps its spec."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "a"), worker(journal, "b")])
        ref = await child("sup", "b")
        journal.clear()
        assert await gs.Supervisor.terminate_child("sup", "b") is None
        assert not ref.alive
        assert await ref.wait_exit() == "shutdown"
        assert journal.events() == [("terminate", "b", "shutdown")]
        assert (await children("sup"))["b"] is None
        assert await gs.Supervisor.count_children("sup") == gs.ChildCounts(2, 1, 0, 2)


async def test_terminate_child_of_a_temporary_child_drops_the_spec() -> None:
    """A temporary child terminated by terminate_child is gone from which_children."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "t", restart="temporary")])
        await gs.Supervisor.terminate_child("sup", "t")
        assert await children("sup") == {}


async def test_terminate_child_of_a_stopped_child_does_nothing() -> None:
    """Terminating a child that is not running is allowed and changes nothing."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "a")])
        await gs.Supervisor.terminate_child("sup", "a")
        await gs.Supervisor.terminate_child("sup", "a")
        assert await children("sup") == {"a": None}


@pytest.mark.parametrize("function", ["terminate_child", "restart_child", "delete_child"])
async def test_an_unknown_id_raises_no_such_child(function: str) -> None:
    """terminate_child, restart_child and delete_child raise NoSuchChild (a LookupError) naming the id."""
    async with gs.ActorSystem() as system:
        await start_sup(system, [])
        with pytest.raises(gs.NoSuchChild, match="'ghost'") as raised:
            await getattr(gs.Supervisor, function)("sup", "ghost")
        assert isinstance(raised.value, LookupError)


async def test_restart_child_starts_a_terminated_child_again() -> None:
    """restart_child starts a terminated child again, in its place, and returns the new ref."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "a"), worker(journal, "b", name="bee")])
        old = await child("sup", "a")
        await gs.Supervisor.terminate_child("sup", "a")
        new = await gs.Supervisor.restart_child("sup", "a")
        assert new is not None
        assert new is not old
        assert list(await children("sup")) == ["a", "b"]
        assert await new.call("ping") == ("pong", "a")


async def test_restart_child_of_a_running_child_raises_child_running() -> None:
    """restart_child and delete_child on a running child raise ChildRunning and change nothing."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "a")])
        ref = await child("sup", "a")
        with pytest.raises(gs.ChildRunning):
            await gs.Supervisor.restart_child("sup", "a")
        with pytest.raises(gs.ChildRunning):
            await gs.Supervisor.delete_child("sup", "a")
        assert await children("sup") == {"a": ref}


async def test_restart_child_that_fails_raises_start_error_and_keeps_the_spec() -> None:
    """A restart_child whose init fails raises StartError; the spec stays, and a later try can succeed."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "a")])
        await gs.Supervisor.terminate_child("sup", "a")
        journal.plan("a", "stop")
        with pytest.raises(gs.StartError) as raised:
            await gs.Supervisor.restart_child("sup", "a")
        assert raised.value.reason == "no"
        assert await children("sup") == {"a": None}
        assert await gs.Supervisor.restart_child("sup", "a") is not None


async def test_delete_child_removes_a_terminated_childs_spec() -> None:
    """delete_child removes a terminated child; after it, the id is unknown and free again."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "a"), worker(journal, "b")])
        await gs.Supervisor.terminate_child("sup", "a")
        await gs.Supervisor.delete_child("sup", "a")
        assert list(await children("sup")) == ["b"]
        with pytest.raises(gs.NoSuchChild):
            await gs.Supervisor.restart_child("sup", "a")
        assert await gs.Supervisor.start_child("sup", worker(journal, "a")) is not None
        assert list(await children("sup")) == ["b", "a"]


async def test_which_children_and_count_children_describe_the_tree() -> None:
    """which_children lists id, ref and type in spec order; count_children counts specs, actives and types."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        specs = [
            worker(journal, "a"),
            gs.ChildSpec("dyn", (gs.DynamicSupervisor, None), type="supervisor"),
            worker(journal, "b"),
        ]
        await start_sup(system, specs)
        await gs.Supervisor.terminate_child("sup", "b")
        infos = await gs.Supervisor.which_children("sup")
        assert [(info.id, info.type, info.ref is None) for info in infos] == [
            ("a", "worker", False),
            ("dyn", "supervisor", False),
            ("b", "worker", True),
        ]
        assert all(isinstance(info, gs.ChildInfo) for info in infos)
        assert await gs.Supervisor.count_children("sup") == gs.ChildCounts(specs=3, active=2, supervisors=1, workers=2)


async def test_api_calls_take_a_timeout() -> None:
    """Each API function takes timeout=; a supervisor that answers in time is unaffected by it."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        await start_sup(system, [worker(journal, "a")])
        assert len(await gs.Supervisor.which_children("sup", timeout=30)) == 1
        assert (await gs.Supervisor.count_children("sup", timeout=30)).active == 1
        await gs.Supervisor.terminate_child("sup", "a", timeout=30)
        assert await gs.Supervisor.restart_child("sup", "a", timeout=30) is not None
        assert await gs.Supervisor.start_child("sup", worker(journal, "b"), timeout=30) is not None
        await gs.Supervisor.terminate_child("sup", "b", timeout=30)
        await gs.Supervisor.delete_child("sup", "b", timeout=30)


async def test_a_plain_call_to_a_supervisor_is_ignored_not_fatal() -> None:
    """A message that is not an API request is logged and ignored; the supervisor keeps working."""
    journal = Journal()
    async with gs.ActorSystem() as system:
        sup = await start_sup(system, [worker(journal, "a")])
        sup.send("hello")
        sup.cast("hello")
        with pytest.raises(gs.CallTimeout):
            await sup.call("hello", timeout=0.01)
        assert list(await children("sup")) == ["a"]
