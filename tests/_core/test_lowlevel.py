"""genstatem.lowlevel and the public clock and exit: a behaviour and a delivery written without the core's internals."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import genstatem as gs
from genstatem import lowlevel

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend(virtual_anyio_backend: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Virtual time on asyncio and trio: the clock tests wait without waiting."""
    return virtual_anyio_backend


class Echo:
    """A gen_server-like behaviour written against ``genstatem.lowlevel`` alone.

    It answers a call with the request, counts casts, answers ``get_state``
    with ``("serving", count)`` and stops on a stop request. A cast of
    ``"exit"`` makes it send itself an exit signal; ``terminate`` adds the
    count to the list given as ``arg``, if any.
    """

    trap_exits = False

    async def actor_init(self, actor: lowlevel.Actor, arg: Any) -> lowlevel.InitIgnored | lowlevel.InitStopped | None:
        self.actor = actor
        self.count = 0
        self.record = arg if isinstance(arg, list) else None
        if arg == "ignore":
            return lowlevel.IGNORED
        if arg == "stop":
            return lowlevel.InitStopped("refused")
        return None

    async def actor_run(self) -> Any:
        while True:
            kind, content = await self.actor.receive()
            if kind is lowlevel.SYSTEM:
                if isinstance(content, lowlevel.GetState):
                    content.caller.resolve(("serving", self.count))
                elif isinstance(content, lowlevel.StopRequest):
                    return content.reason
            elif isinstance(kind, gs.Call):
                gs.reply(kind.caller, content)
            elif kind is lowlevel.CAST:
                self.count += 1
                if content == "exit":
                    self.actor.system.exit(self.actor.ref, "shutdown")

    async def actor_terminate(self, reason: Any) -> None:
        if self.record is not None:
            self.record.append(self.count)

    def actor_state(self) -> Any:
        return self.count


class Sleeper(gs.GenStateMachine):
    """Traps exits; records its terminate reason in the list it was given."""

    trap_exits = True

    async def init(self, record: list[Any]) -> gs.Init:
        self.record = record
        return gs.Init("asleep", None)

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Call):
            return gs.NextState("awake", data, gs.Reply(event_type.caller, self.state))
        return None

    async def terminate(self, reason: Any, state: Any, data: Any) -> None:
        self.record.append(reason)


async def test_a_behaviour_written_against_lowlevel_answers_calls_casts_state_and_stop() -> None:
    """A behaviour using only the Actor handle gets calls, casts, get_state and stop through receive()."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Echo)
        assert ref is not None
        assert await ref.call("ping") == "ping"
        ref.cast("one")
        ref.cast("two")
        assert await ref.get_state() == ("serving", 2)
        await ref.stop("done")
        assert await ref.wait_exit() == "done"


async def test_actor_init_results_ignore_and_stop_mean_no_actor_and_a_start_error() -> None:
    """IGNORED from actor_init makes start return None; InitStopped(reason) raises StartError(reason)."""
    async with gs.ActorSystem() as system:
        assert await system.start(Echo, "ignore") is None
        with pytest.raises(gs.StartError) as raised:
            await system.start(Echo, "stop")
        assert raised.value.reason == "refused"


async def test_receive_lets_a_pending_exit_land_before_taking_a_message() -> None:
    """An exit signal raised while handling a message stops a receive() loop before the next queued one."""
    record: list[int] = []
    async with gs.ActorSystem() as system:
        ref = await system.start(Echo, record)
        assert ref is not None
        for message in ("one", "exit", "never", "seen"):
            ref.cast(message)
        assert await ref.wait_exit() == "shutdown"
    assert record == [2]


async def test_system_now_and_call_later_follow_the_system_clock() -> None:
    """now() is the loop's clock; call_later runs its callback after the delay, and cancel() stops it."""
    async with gs.ActorSystem() as system:
        fired: list[float] = []
        start = system.now()
        system.call_later(2.0, lambda: fired.append(system.now()))
        cancelled = system.call_later(1.0, lambda: fired.append(-1.0))
        cancelled.cancel()
        await anyio.sleep(3.0)
        assert fired == [pytest.approx(start + 2.0, abs=0.1)]


async def test_exit_runs_terminate_even_when_the_actor_traps_exits() -> None:
    """exit(ref, reason) stops a trapping actor at once with reason; its terminate sees that reason."""
    record: list[Any] = []
    async with gs.ActorSystem() as system:
        ref = await system.start(Sleeper, record, name="sleeper")
        assert ref is not None
        system.exit("sleeper", ("shutdown", "maintenance"))
        assert await ref.wait_exit() == ("shutdown", "maintenance")
    assert record == [("shutdown", "maintenance")]


async def test_exit_kill_kills_without_terminate() -> None:
    """exit(ref, "kill") kills: no terminate runs and the exit reason is "killed"."""
    record: list[Any] = []
    async with gs.ActorSystem() as system:
        ref = await system.start(Sleeper, record)
        assert ref is not None
        system.exit(ref, "kill")
        assert await ref.wait_exit() == "killed"
        system.exit(ref, "kill")  # a dead actor is left alone
    assert record == []


async def test_exit_to_an_unknown_name_raises_no_process() -> None:
    """exit() on a name nobody holds raises NoProcess."""
    async with gs.ActorSystem() as system:
        with pytest.raises(gs.NoProcess):
            system.exit("nobody", "shutdown")


async def test_a_machine_reads_its_own_state() -> None:
    """GenStateMachine.state is the current state, read-only."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Sleeper, [])
        assert ref is not None
        assert await ref.call("wake") == "asleep"
        assert await ref.call("again") == "awake"
        machine = lowlevel.behaviour_of(system, ref)
        assert isinstance(machine, Sleeper)
        assert machine.state == "awake"
        with pytest.raises(AttributeError):
            machine.state = "asleep"  # type: ignore[misc]


async def test_behaviour_of_finds_a_running_actor_by_ref_or_name_and_nothing_else() -> None:
    """behaviour_of returns the running actor's behaviour; None for an unknown name or a dead actor."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Echo, name="echo")
        assert ref is not None
        assert isinstance(lowlevel.behaviour_of(system, "echo"), Echo)
        assert lowlevel.behaviour_of(system, ref) is lowlevel.behaviour_of(system, "echo")
        assert lowlevel.behaviour_of(system, "nobody") is None
        await ref.stop()
        assert lowlevel.behaviour_of(system, ref) is None


async def test_delivery_functions_reach_a_live_actor_and_refuse_a_dead_one() -> None:
    """deliver_call, deliver_state_request and deliver_stop answer through the caller given; a dead actor refuses."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Echo)
        assert isinstance(ref, lowlevel.LocalRef)
        assert lowlevel.find_actor(system, ref.id) is ref
        caller = lowlevel.new_caller(system)
        assert lowlevel.deliver_call(ref, caller, "hello")
        assert await caller.wait(None) == "hello"
        lowlevel.forget_caller(ref, caller)
        state = lowlevel.new_caller(system)
        assert lowlevel.deliver_state_request(ref, state)
        assert await state.wait(None) == ("serving", 0)
        waiter = lowlevel.new_caller(system)
        assert lowlevel.deliver_stop(ref, "bye", waiter)
        assert await waiter.wait(None) == "bye"
        assert lowlevel.find_actor(system, ref.id) is None
        assert not lowlevel.deliver_call(ref, lowlevel.new_caller(system), "late")
        assert not lowlevel.deliver_state_request(ref, lowlevel.new_caller(system))
        assert not lowlevel.deliver_stop(ref, "again", lowlevel.new_caller(system))


async def test_a_delivered_call_fails_with_actor_exited_when_the_actor_dies_first() -> None:
    """A caller given to deliver_call and not yet answered fails with ActorExited when the actor exits."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Sleeper, [])
        assert isinstance(ref, lowlevel.LocalRef)
        system.exit(ref, "kill")
        caller = lowlevel.new_caller(system)
        assert lowlevel.deliver_call(ref, caller, "too late?")
        with pytest.raises(gs.ActorExited):
            await caller.wait(None)


def test_local_and_remote_refs_share_the_actor_ref_base() -> None:
    """ActorRef is the explicit base of the core's LocalRef and the network's RemoteRef."""
    from genstatem.net import RemoteRef

    assert issubclass(lowlevel.LocalRef, gs.ActorRef)
    assert issubclass(RemoteRef, gs.ActorRef)


async def test_receive_yields_to_the_event_loop_on_a_long_mailbox() -> None:
    """A receive() loop draining a long mailbox lets a due timer run before it is done."""
    events = 10 * lowlevel.EVENT_BUDGET
    async with gs.ActorSystem() as system:
        ref = await system.start(Echo)
        assert ref is not None
        echo = lowlevel.behaviour_of(system, ref)
        seen: list[int] = []
        system.call_later(0, lambda: seen.append(echo.count))
        for _ in range(events):
            ref.cast("tick")
        assert await ref.get_state() == ("serving", events)
        assert seen
        assert seen[0] < events // 2
