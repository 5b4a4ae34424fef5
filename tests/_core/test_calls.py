"""call, cast, send and reply: timeouts, dead actors, late and third-party replies."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

import genstatem as gs

pytestmark = pytest.mark.anyio


class Echo(gs.GenStateMachine):
    """Replies to calls per their content; keeps callers it is told to hold."""

    async def init(self, arg: Any) -> gs.Init:
        return gs.Init("ready", [])

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Call(caller), "hold":
                return gs.KeepState([*data, caller])
            case gs.Call(caller), ("crash", why):
                raise RuntimeError(why)
            case gs.Call(caller), ("stop", reason):
                return gs.Stop(reason, replies=[gs.Reply(caller, "bye"), *(gs.Reply(c, "bye too") for c in data)])
            case gs.Call(caller), "release":
                return gs.KeepState([], [gs.Reply(c, "released") for c in data] + [gs.Reply(caller, len(data))])
            case gs.Call(caller), ("forward", other):
                other.cast(("answer", caller))
                return None
            case gs.Cast(), ("answer", caller):
                gs.reply(caller, "from another actor")
                return None
            case gs.Call(caller), request:
                return gs.KeepState(actions=gs.Reply(caller, request))
        return None


async def test_call_returns_the_value_replied() -> None:
    """A call returns what the handler replied."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Echo)
        assert ref is not None
        assert await ref.call({"x": 1}) == {"x": 1}


async def test_call_times_out_and_a_late_reply_is_dropped() -> None:
    """No reply in time raises CallTimeout (a TimeoutError); the late reply goes nowhere."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Echo)
        assert ref is not None
        with pytest.raises(gs.CallTimeout):
            await ref.call("hold", timeout=0.05)
        assert issubclass(gs.CallTimeout, TimeoutError)
        assert await ref.call("release") == 1  # the held caller's reply is dropped, nothing breaks
        assert await ref.call("still fine") == "still fine"


async def test_call_to_a_dead_actor_raises_no_process() -> None:
    """Calling, stopping or reading the state of a dead actor raises NoProcess."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Echo)
        assert ref is not None
        await ref.stop()
        with pytest.raises(gs.NoProcess):
            await ref.call("x")
        with pytest.raises(gs.NoProcess):
            await ref.stop()
        with pytest.raises(gs.NoProcess):
            await ref.get_state()


async def test_cast_and_send_to_a_dead_actor_do_nothing() -> None:
    """cast and send to a dead ref neither raise nor deliver."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Echo)
        assert ref is not None
        await ref.stop()
        ref.cast("x")
        ref.send("x")
        gs.cast(ref, "x")
        gs.send(ref, "x")
        assert not ref.alive


async def test_callers_get_actor_exited_when_the_actor_dies_mid_call() -> None:
    """Callers waiting on an actor that crashes get ActorExited with its reason."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Echo)
        assert ref is not None
        errors: list[BaseException] = []

        async def held() -> None:
            try:
                await ref.call("hold", timeout=None)
            except gs.ActorExited as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(held)
            await ref.call("sync")
            with pytest.raises(gs.ActorExited) as crashed:
                await ref.call(("crash", "boom"))
        assert isinstance(crashed.value.reason, RuntimeError)
        assert len(errors) == 1
        assert isinstance(errors[0], gs.ActorExited)
        assert str(errors[0].reason) == "boom"


async def test_calls_still_queued_fail_when_the_actor_stops() -> None:
    """A call queued behind the one that stops the actor gets ActorExited, not a timeout."""
    gate = anyio.Event()

    class Gated(Echo):
        async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
            if content == "block":
                await gate.wait()
                return None
            return await super().handle_event(event_type, content, state, data)

    async with gs.ActorSystem() as system:
        ref = await system.start(Gated)
        assert ref is not None
        results: dict[str, Any] = {}

        async def call(name: str, request: Any) -> None:
            try:
                results[name] = await ref.call(request, timeout=None)
            except gs.ActorExited as exc:
                results[name] = ("exited", exc.reason)

        ref.cast("block")
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "first", ("stop", "normal"))
            for _ in range(10):
                await anyio.lowlevel.checkpoint()
            tg.start_soon(call, "second", "queued")
            for _ in range(10):
                await anyio.lowlevel.checkpoint()
            gate.set()
        assert results == {"first": "bye", "second": ("exited", "normal")}


async def test_reply_from_another_actor_with_gs_reply() -> None:
    """gs.reply answers a call from anywhere, another actor included."""
    async with gs.ActorSystem() as system:
        a = await system.start(Echo)
        b = await system.start(Echo)
        assert a is not None
        assert b is not None
        assert await a.call(("forward", b)) == "from another actor"


async def test_stop_replies_are_sent_before_terminate_runs() -> None:
    """Stop(replies=...) answers callers before terminate is called."""
    in_terminate = anyio.Event()
    release = anyio.Event()

    class Stopper(Echo):
        async def terminate(self, reason: Any, state: Any, data: Any) -> None:
            in_terminate.set()
            await release.wait()

    async with gs.ActorSystem() as system:
        ref = await system.start(Stopper)
        assert ref is not None
        answers: list[Any] = []

        async def held() -> None:
            answers.append(await ref.call("hold", timeout=None))

        async with anyio.create_task_group() as tg:
            tg.start_soon(held)
            await ref.call("sync")
            answers.append(await ref.call(("stop", "done")))  # answered while terminate still blocks
            await in_terminate.wait()
            assert ref.alive
            release.set()
        assert sorted(answers) == ["bye", "bye too"]
        assert await ref.wait_exit() == "done"


async def test_replying_twice_keeps_the_first_answer() -> None:
    """A second reply to the same caller is dropped."""

    class Twice(gs.GenStateMachine):
        async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
            return gs.KeepState(actions=[gs.Reply(event_type.caller, 1), gs.Reply(event_type.caller, 2)])

    async with gs.ActorSystem() as system:
        ref = await system.start(Twice, ("s", None))
        assert ref is not None
        assert await ref.call("x") == 1


async def test_module_functions_take_names_and_raise_no_process_for_unknown_names() -> None:
    """gs.call/cast/send/stop/whereis work with registered names; unknown names raise NoProcess."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Echo, name="echo")
        assert gs.whereis("echo") is ref
        assert await gs.call("echo", "hi") == "hi"
        gs.cast("echo", "x")
        gs.send("echo", "x")
        for bad in (gs.cast, gs.send):
            with pytest.raises(gs.NoProcess):
                bad("nobody", "x")
        with pytest.raises(gs.NoProcess):
            await gs.call("nobody", "x")
        with pytest.raises(gs.NoProcess):
            await gs.stop("nobody")
        await gs.stop("echo")
        assert gs.whereis("echo") is None


async def test_module_functions_need_a_running_system() -> None:
    """Outside an ActorSystem, name look-ups say so clearly."""
    with pytest.raises(RuntimeError, match="ActorSystem"):
        gs.whereis("x")


async def test_get_state_is_answered_in_mailbox_order() -> None:
    """get_state sees every event sent before it."""

    class Counter(gs.GenStateMachine):
        def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
            return gs.KeepState(data + content)

    async with gs.ActorSystem() as system:
        ref = await system.start(Counter, ("counting", 0))
        assert ref is not None
        for i in range(10):
            ref.cast(i)
        assert await ref.get_state() == ("counting", 45)


async def test_stop_waits_until_the_actor_is_gone_and_times_out() -> None:
    """ref.stop runs terminate and waits; with a timeout it raises TimeoutError if not gone in time."""
    gate = anyio.Event()

    class SlowStop(Echo):
        async def terminate(self, reason: Any, state: Any, data: Any) -> None:
            await gate.wait()

    async with gs.ActorSystem() as system:
        ref = await system.start(SlowStop)
        assert ref is not None
        with pytest.raises(TimeoutError):
            await ref.stop(timeout=0.05)
        gate.set()
        assert await ref.wait_exit() == "normal"
        assert not ref.alive


async def test_ref_repr_names_class_and_registered_name() -> None:
    """A ref's repr shows the machine's class and the registered name; refs are hashable."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Echo, name="door")
        assert ref is not None
        assert "Echo" in repr(ref)
        assert "'door'" in repr(ref)
        assert {ref: 1}[system.whereis("door")] == 1


class SelfCaller(gs.GenStateMachine):
    """On a cast, uses call, stop or get_state on itself (by ref or by name) and replies what happened."""

    async def init(self, arg: Any) -> gs.Init:
        return gs.Init("ready", None)

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Call(caller), str(how):
                try:
                    if how == "call":
                        await self.ref.call("hello", timeout=None)
                    elif how == "call by name":
                        await gs.call("me", "hello", timeout=None)
                    elif how == "stop":
                        await self.ref.stop()
                    else:
                        await self.ref.get_state()
                except gs.CallingSelf as exc:
                    return gs.KeepState(actions=gs.Reply(caller, str(exc)))
        return None


@pytest.mark.parametrize("how", ["call", "call by name", "stop", "get_state"])
async def test_an_actor_calling_itself_fails_at_once(how: str) -> None:
    """call, stop or get_state on oneself raise CallingSelf at once, not a deadlock until the timeout."""
    async with gs.ActorSystem() as system:
        ref = await system.start(SelfCaller, name="me")
        assert ref is not None
        with anyio.fail_after(10):
            message = await ref.call(how, timeout=None)
        assert "calling_self" in message
        assert "SelfCaller" in message
        assert ref.alive


async def test_a_call_timeout_names_the_actor_the_request_and_the_likely_cause() -> None:
    """CallTimeout says which actor, the (shortened) request, the timeout, and that the handler may not reply."""
    async with gs.ActorSystem() as system:
        ref = await system.start(SelfCaller, name="deaf")
        assert ref is not None
        with pytest.raises(gs.CallTimeout) as timed_out:
            await ref.call(("typo", "x" * 500), timeout=0.05)
        message = str(timed_out.value)
        assert "SelfCaller" in message
        assert "'deaf'" in message
        assert "0.05s" in message
        assert "('typo', 'xxx" in message
        assert "x" * 200 not in message
        assert "did not reply" in message
        assert isinstance(timed_out.value, TimeoutError)
