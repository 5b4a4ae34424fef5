"""Nodes: remote refs, calls, links and monitors across nodes, connection loss."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
import pytest
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

import genstatem as gs
from genstatem.net import EncodeError, MemoryNetwork, RemoteError, RemoteRef, TcpNetwork

pytestmark = pytest.mark.anyio


class Agent(gs.GenStateMachine):
    """Does what calls tell it; forwards every Info event to the stream it was given."""

    async def init(self, arg: Any) -> gs.Init:
        self.out: MemoryObjectSendStream[Any] | None = arg
        return gs.Init("up", [])

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Info(), msg:
                if self.out is not None:
                    self.out.send_nowait(msg)
                return gs.KeepState([*data, msg])
            case gs.Cast(), ("answer", caller, value):
                gs.reply(caller, f"{value} via {self.system.node}")
                return None
            case gs.Call(caller), ("is_me", ref):
                return gs.KeepState(actions=gs.Reply(caller, ref is self.ref))
            case gs.Cast(), msg:
                return gs.KeepState([*data, msg])
            case gs.Call(caller), ("forward", other):
                other.cast(("answer", caller, f"from {self.system.node}"))
                return None
            case gs.Call(caller), ("link", ref):
                self.link(ref)
                return gs.KeepState(actions=gs.Reply(caller, "ok"))
            case gs.Call(caller), ("unlink", ref):
                self.unlink(ref)
                return gs.KeepState(actions=gs.Reply(caller, "ok"))
            case gs.Call(caller), ("monitor", ref):
                return gs.KeepState(actions=gs.Reply(caller, self.monitor(ref)))
            case gs.Call(caller), ("demonitor", monitor):
                self.demonitor(monitor)
                return gs.KeepState(actions=gs.Reply(caller, "ok"))
            case gs.Call(caller), ("crash", why):
                raise RuntimeError(why)
            case gs.Call(caller), ("stop", reason):
                return gs.Stop(reason, replies=gs.Reply(caller, "stopping"))
            case gs.Call(caller), "seen":
                return gs.KeepState(actions=gs.Reply(caller, data))
            case gs.Call(caller), "hang":
                return None
            case gs.Call(caller), request:
                return gs.KeepState(actions=gs.Reply(caller, (self.system.node, request, self.ref)))
        return None


class Trapper(Agent):
    """An Agent that traps exits."""

    trap_exits = True


@attrs.frozen
class Order:
    """A user message type, registered for the wire."""

    item: str
    qty: int


gs_net_registered = False


def _register_order() -> None:
    global gs_net_registered
    if not gs_net_registered:
        from genstatem.net import register

        register(Order, 1001)
        gs_net_registered = True


@asynccontextmanager
async def two_nodes() -> AsyncIterator[tuple[MemoryNetwork, gs.ActorSystem, gs.ActorSystem]]:
    net = MemoryNetwork()
    async with gs.ActorSystem(node="a", network=net) as a, gs.ActorSystem(node="b", network=net) as b:
        yield net, a, b


Channel = tuple[MemoryObjectSendStream[Any], MemoryObjectReceiveStream[Any]]


@pytest.fixture
def channel() -> Iterator[Channel]:
    """A stream an Agent forwards its Info events to."""
    send, receive = anyio.create_memory_object_stream[Any](100)
    with send, receive:
        yield send, receive


async def next_message(receive: MemoryObjectReceiveStream[Any]) -> Any:
    with anyio.fail_after(5):
        return await receive.receive()


async def test_call_cast_and_send_reach_an_actor_on_another_node_by_name() -> None:
    """A remote ref by node and name supports call, cast and send like a local one."""
    async with two_nodes() as (_, a, b):
        await b.start(Agent, None, name="agent")
        ref = a.remote("b", "agent")
        assert isinstance(ref, RemoteRef)
        assert ref.node == "b"
        node, request, their_ref = await ref.call("hi")
        assert (node, request) == ("b", "hi")
        assert isinstance(their_ref, RemoteRef)
        assert (their_ref.node, their_ref.name) == ("b", "agent")
        assert await ref.call(("is_me", their_ref)) is True  # a ref that comes home is the local ref again
        ref.cast("c")
        ref.send("i")
        assert await ref.call("seen") == ["c", "i"]
        assert await ref.get_state() == ("up", ["c", "i"])
        assert await gs.call(ref, "again") == ("b", "again", their_ref)


async def test_remote_on_the_own_node_gives_the_local_ref() -> None:
    """system.remote(own node, name) is the local ref."""
    async with two_nodes() as (_, a, _b):
        local = await a.start(Agent, None, name="agent")
        assert a.remote("a", "agent") is local


async def test_messages_between_two_actors_arrive_in_the_order_sent() -> None:
    """Casts from one node to an actor on another arrive in order."""
    async with two_nodes() as (_, a, b):
        await b.start(Agent, None, name="agent")
        ref = a.remote("b", "agent")
        for i in range(200):
            ref.cast(i)
        assert await ref.call("seen") == list(range(200))


async def test_a_caller_can_be_answered_from_a_third_place() -> None:
    """A reply handle sent to another node can be answered there with gs.reply."""
    async with two_nodes() as (_, a, b):
        front = await a.start(Agent, None, name="front")
        await b.start(Agent, None, name="back")
        assert front is not None
        assert await front.call(("forward", a.remote("b", "back"))) == "from a via b"


async def test_unencodable_messages_fail_at_the_sender() -> None:
    """A message the wire cannot carry raises EncodeError at the sender, naming where."""
    async with two_nodes() as (_, a, b):
        await b.start(Agent, None, name="agent")
        ref = a.remote("b", "agent")
        with pytest.raises(EncodeError, match=r"message\.msg\[1\]"):
            ref.cast(("ok", object()))
        with pytest.raises(TypeError):
            await ref.call({"lock": anyio.Lock()})
        assert await ref.call("still fine")


async def test_registered_attrs_classes_cross_nodes() -> None:
    """An attrs class registered with genstatem.net.register arrives as itself."""
    _register_order()
    async with two_nodes() as (_, a, b):
        await b.start(Agent, None, name="agent")
        ref = a.remote("b", "agent")
        _, request, _ = await ref.call(Order("tea", 2))
        assert request == Order("tea", 2)


async def test_registering_a_low_or_taken_type_id_is_refused() -> None:
    """User type ids start at 1000 and are never reused."""
    from genstatem.net import register

    _register_order()
    with pytest.raises(ValueError, match="1000"):
        register(Order, 5)

    @attrs.frozen
    class Other:
        x: int

    with pytest.raises(ValueError, match="already registered"):
        register(Other, 1001)


async def test_remote_calls_fail_like_local_ones() -> None:
    """Unknown names raise NoProcess; an actor dying mid-call raises ActorExited; no reply times out."""
    async with two_nodes() as (_, a, b):
        await b.start(Agent, None, name="agent")
        with pytest.raises(gs.NoProcess):
            await a.remote("b", "nobody").call("x")
        ref = a.remote("b", "agent")
        with pytest.raises(gs.CallTimeout):
            await ref.call("hang", timeout=0.05)
        with pytest.raises(gs.ActorExited) as exited:
            await ref.call(("crash", "boom"))
        assert exited.value.reason == RemoteError("RuntimeError", "boom")
        assert str(exited.value.reason) == "RuntimeError: boom"


async def test_remote_stop_and_wait_exit() -> None:
    """stop and wait_exit work on a remote ref."""
    async with two_nodes() as (_, a, b):
        local = await b.start(Agent, None, name="agent")
        assert local is not None
        ref = a.remote("b", "agent")
        await ref.stop("done")
        assert not local.alive
        assert await local.wait_exit() == "done"
        assert await a.remote("b", "agent").wait_exit() == "noproc"
        with pytest.raises(gs.NoProcess):
            await ref.stop()


async def test_an_abnormal_exit_crosses_a_link_and_normal_does_not() -> None:
    """A linked actor on another node stops with the same reason; a normal exit leaves it running."""
    async with two_nodes() as (_, a, b):
        here = await a.start(Agent, None)
        there = await b.start(Agent, None, name="there")
        calm = await b.start(Agent, None, name="calm")
        assert here is not None
        assert there is not None
        assert calm is not None
        assert await here.call(("link", a.remote("b", "calm"))) == "ok"
        await a.remote("b", "calm").call(("stop", "normal"))
        assert await calm.wait_exit() == "normal"
        assert await here.call("still here")
        assert await here.call(("link", a.remote("b", "there"))) == "ok"
        with pytest.raises(gs.ActorExited):
            await there.call(("crash", "bang"))
        assert await here.wait_exit() == RemoteError("RuntimeError", "bang")


async def test_a_trapping_actor_gets_exit_from_a_remote_link_and_unlink_stops_it(channel: Channel) -> None:
    """trap_exits turns a remote exit signal into Info(Exit); after unlink nothing arrives."""
    send, receive = channel
    async with two_nodes() as (_, a, b):
        here = await a.start(Trapper, send)
        first = await b.start(Agent, None, name="first")
        await b.start(Agent, None, name="second")
        assert here is not None
        assert first is not None
        await here.call(("link", a.remote("b", "first")))
        await here.call(("link", a.remote("b", "second")))
        await here.call(("unlink", a.remote("b", "second")))
        await a.remote("b", "second").call(("stop", "shutdown"))
        await a.remote("b", "first").call(("stop", "shutdown"))
        assert await next_message(receive) == gs.Exit(a.remote("b", "first"), "shutdown")
        assert await here.call("seen") == [gs.Exit(a.remote("b", "first"), "shutdown")]


async def test_the_remote_end_of_a_link_hears_a_local_crash() -> None:
    """A local crash reaches the linked actor on the other node."""
    async with two_nodes() as (_, a, b):
        here = await a.start(Agent, None, name="here")
        there = await b.start(Agent, None)
        assert here is not None
        assert there is not None
        await there.call(("link", b.remote("a", "here")))
        with pytest.raises(gs.ActorExited):
            await here.call(("crash", "local"))
        assert await there.wait_exit() == RemoteError("RuntimeError", "local")


async def test_monitors_across_nodes_deliver_one_down(channel: Channel) -> None:
    """A monitor on a remote actor gets exactly one Down with its reason; demonitor cancels."""
    send, receive = channel
    async with two_nodes() as (_, a, b):
        here = await a.start(Agent, send)
        await b.start(Agent, None, name="watched")
        await b.start(Agent, None, name="ignored")
        assert here is not None
        watched, ignored = a.remote("b", "watched"), a.remote("b", "ignored")
        monitor = await here.call(("monitor", watched))
        dropped = await here.call(("monitor", ignored))
        await here.call(("demonitor", dropped))
        await ignored.call(("stop", "bye"))
        await watched.call(("stop", "done"))
        assert await next_message(receive) == gs.Down(monitor, watched, "done")
        assert await here.call("seen") == [gs.Down(monitor, watched, "done")]


async def test_monitoring_a_missing_remote_actor_gives_noproc(channel: Channel) -> None:
    """A monitor on a name not registered on the other node fires noproc."""
    send, receive = channel
    async with two_nodes() as (_, a, _b):
        here = await a.start(Agent, send)
        assert here is not None
        monitor = await here.call(("monitor", a.remote("b", "nobody")))
        down = await next_message(receive)
        assert down == gs.Down(monitor, a.remote("b", "nobody"), "noproc")


async def test_losing_the_connection_fires_noconnection_everywhere(channel: Channel) -> None:
    """When the connection drops, links, monitors and pending calls across it fire noconnection."""
    send, receive = channel
    async with two_nodes() as (net, a, b):
        here = await a.start(Trapper, send)
        await b.start(Agent, None, name="far")
        assert here is not None
        far = a.remote("b", "far")
        await here.call(("link", far))
        monitor = await here.call(("monitor", far))
        async with anyio.create_task_group() as tg:

            async def pending_call() -> None:
                with pytest.raises(gs.ActorExited) as lost:
                    await far.call("hang", timeout=None)
                assert lost.value.reason == "noconnection"

            tg.start_soon(pending_call)
            await far.call("sync")
            net.disconnect("a", "b")
        got = {await next_message(receive), await next_message(receive)}
        assert got == {gs.Exit(far, "noconnection"), gs.Down(monitor, far, "noconnection")}
        far_local = b.whereis("far")
        assert far_local is None  # the other end of the link did not trap exits: it died too
        await b.start(Agent, None, name="again")
        assert await a.remote("b", "again").call("reconnects on the next send")


async def test_a_malformed_frame_is_dropped_and_the_node_keeps_running() -> None:
    """Garbage from a peer is logged and closes that connection; the node carries on."""
    async with two_nodes() as (_, a, b):
        await b.start(Agent, None, name="agent")
        node = b._distribution
        assert node is not None
        with structlog.testing.capture_logs() as logs:
            node.on_frame("a", b"\xc1 not msgpack")  # type: ignore[attr-defined]
        assert any("undecodable" in entry["event"] for entry in logs)
        assert await a.remote("b", "agent").call("fine")


async def test_remote_on_a_system_without_a_network_says_so() -> None:
    """remote() to another node needs a network."""
    async with gs.ActorSystem(node="solo") as solo:
        with pytest.raises(RuntimeError, match="network"):
            solo.remote("other", "x")


async def test_two_nodes_with_one_name_are_refused() -> None:
    """A network refuses a second node of the same name."""
    net = MemoryNetwork()
    async with gs.ActorSystem(node="a", network=net):
        with pytest.raises(ValueError, match="already"):
            async with gs.ActorSystem(node="a", network=net):
                pass


async def test_a_call_to_a_node_that_left_fails_at_once() -> None:
    """Calling an actor on a node no longer on the network fails with noconnection, not a timeout."""
    net = MemoryNetwork()
    async with gs.ActorSystem(node="a", network=net) as a:
        async with gs.ActorSystem(node="b", network=net) as b:
            await b.start(Agent, None, name="agent")
        with anyio.fail_after(1), pytest.raises(gs.ActorExited) as lost:
            await a.remote("b", "agent").call("anyone?", timeout=30)
        assert lost.value.reason == "noconnection"


async def test_a_remote_ref_by_name_follows_the_name_and_one_by_id_stays_dead() -> None:
    """A ref by id is known dead once its actor is gone; a ref by name stays usable for the next holder."""
    async with two_nodes() as (_, a, b):
        await b.start(Agent, None, name="agent")
        by_name = a.remote("b", "agent")
        _, _, by_id = await by_name.call("who?")
        await by_name.stop()
        with pytest.raises(gs.NoProcess):
            await by_id.call("x")
        with pytest.raises(gs.NoProcess):
            await by_name.call("x")
        assert not by_id.alive
        assert by_name.alive
        await b.start(Agent, None, name="agent")
        _, request, _ = await by_name.call("again")
        assert request == "again"


class Unencodable(gs.GenStateMachine):
    """Answers every call with something that is not data, in the way the call names."""

    async def init(self, arg: Any) -> gs.Init:
        return gs.Init("up", None)

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        match event_type, content:
            case gs.Call(caller), "action":
                return gs.KeepState(actions=gs.Reply(caller, object()))
            case gs.Call(caller), "gs.reply":
                gs.reply(caller, anyio.Lock())
                return None
            case gs.Call(caller), "stop":
                return gs.Stop("done", replies=gs.Reply(caller, object()))
        return None


@pytest.mark.parametrize("how", ["action", "gs.reply", "stop"])
async def test_an_unencodable_reply_across_nodes_fails_the_caller_at_once(how: str) -> None:
    """A reply the wire cannot carry fails the remote caller at once (ActorExited with the EncodeError); no hang."""
    async with two_nodes() as (_, a, b):
        local = await b.start(Unencodable, name="u")
        ref = a.remote("b", "u")
        with anyio.fail_after(5), pytest.raises(gs.ActorExited) as exited:
            await ref.call(how, timeout=None)
        assert isinstance(exited.value.reason, RemoteError)
        assert exited.value.reason.type == "EncodeError"
        assert "cannot encode" in exited.value.reason.message
        reason = await local.wait_exit()
        assert isinstance(reason, EncodeError)


async def test_a_ref_to_a_local_actor_that_exited_comes_home_as_the_same_ref() -> None:
    """A local ref sent to another node and back is the very ref again, even once its actor is gone."""
    async with two_nodes() as (_, a, b):
        await b.start(Agent, None, name="agent")
        mine = await a.start(Agent, None)
        await mine.stop()
        _, echoed, _ = await a.remote("b", "agent").call(mine)
        assert echoed is mine
        assert not echoed.alive
        with pytest.raises(gs.NoProcess):
            await echoed.call("x")


async def test_a_ref_by_name_stays_a_ref_by_name_at_home_and_reaches_the_holder() -> None:
    """A ref by name sent to the node owning the name stays by name (Erlang's {Name, Node}) and works there."""
    async with two_nodes() as (_, a, b):
        here = await b.start(Agent, None, name="agent")
        by_name = a.remote("b", "agent")
        assert await by_name.call(("is_me", by_name)) is False  # by name, not the actor's own ref by id
        assert await here.call(("forward", by_name)) == "from b via b"


class Networks:
    """One network per node: a shared MemoryNetwork, or a TcpNetwork each on a free port of localhost."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.memory = MemoryNetwork()
        self.addresses: dict[str, tuple[str, int]] = {}

    @asynccontextmanager
    async def node(self, name: str) -> AsyncIterator[gs.ActorSystem]:
        """A system on ``name``, reachable by the other nodes once this yields."""
        if self.kind == "memory":
            async with gs.ActorSystem(node=name, network=self.memory) as system:
                yield system
            return
        options = {"reconnect_initial_delay": 0.05, "reconnect_max_delay": 0.2}
        network = TcpNetwork(secret=b"first hour", peers=self.addresses, **options)
        async with gs.ActorSystem(node=name, network=network) as system:
            self.addresses[name] = ("127.0.0.1", network.transport.port)
            yield system


async def restarted_node_refs(networks: Networks) -> None:
    async with networks.node("a") as a:
        watcher_out, watcher_in = anyio.create_memory_object_stream[Any](10)
        with watcher_out, watcher_in:
            watcher = await a.start(Agent, watcher_out)
            async with networks.node("b") as b:
                await b.start(Agent, None, name="agent")
                _, _, old = await a.remote("b", "agent").call("who?")
            async with networks.node("b") as b:
                await b.start(Agent, None, name="agent")  # the same actor id as the old one
                with anyio.fail_after(10):
                    _, _, new = await a.remote("b", "agent").call("who?")
                    assert repr(old) == repr(new)
                    assert old != new
                    with pytest.raises(gs.NoProcess):
                        await old.call("are you there?")
                    monitor = await watcher.call(("monitor", old))
                    assert await next_message(watcher_in) == gs.Down(monitor, old, "noproc")
                    old.cast("lost")
                    assert await new.call("seen") == []


@pytest.mark.parametrize("kind", ["memory", "tcp"])
async def test_a_ref_to_a_restarted_nodes_old_incarnation_is_a_dead_actor(kind: str) -> None:
    """After a node restarts, an old ref by id is a dead actor (NoProcess, Down noproc), not the new id-holder."""
    await restarted_node_refs(Networks(kind))


@pytest.mark.parametrize("kind", ["memory", "tcp"])
async def test_calls_and_monitors_to_a_node_that_went_away_fail_at_once(kind: str) -> None:
    """Once a node is gone, a new call or monitor to it fails at once with noconnection on every network."""
    networks = Networks(kind)
    async with networks.node("a") as a:
        watcher_out, watcher_in = anyio.create_memory_object_stream[Any](10)
        with watcher_out, watcher_in:
            watcher = await a.start(Agent, watcher_out)
            async with networks.node("b") as b:
                await b.start(Agent, None, name="agent")
                far = a.remote("b", "agent")
                _, _, by_id = await far.call("who?")
                first = await watcher.call(("monitor", far))
            assert (await next_message(watcher_in)).monitor == first  # its Down: shutdown, or noconnection
            with anyio.fail_after(3):
                for ref in (far, by_id, far):
                    with pytest.raises((gs.ActorExited, gs.NoProcess)) as failed:
                        await ref.call("anyone?", timeout=30)
                    if isinstance(failed.value, gs.ActorExited):
                        assert failed.value.reason == "noconnection"
                monitor = await watcher.call(("monitor", far))
                assert await next_message(watcher_in) == gs.Down(monitor, far, "noconnection")


def remote_callers_alive() -> int:
    """How many reply handles of calls from other nodes are still held anywhere in this process."""
    gc.collect()
    return sum(type(obj).__name__ == "_RemoteCaller" for obj in gc.get_objects())


async def test_a_call_the_callee_never_answers_is_forgotten_once_the_caller_gives_up() -> None:
    """A timed-out remote call tells the callee's node, which drops its handle: nothing grows per call."""
    async with two_nodes() as (net, a, b):
        await b.start(Agent, None, name="agent")
        ref = a.remote("b", "agent")
        await ref.call("warm up")
        before = remote_callers_alive()
        for _ in range(200):
            with pytest.raises(gs.CallTimeout):
                await ref.call("hang", timeout=0.001)
        await ref.call("barrier")  # answered after every cancellation before it
        assert net.node("b").statistics().incoming_calls == 0
        assert net.node("a").statistics().pending_calls == 0
        assert remote_callers_alive() <= before


async def test_node_tables_shrink_as_remote_actors_come_and_go() -> None:
    """Links, monitors and refs to remote actors that are gone leave nothing behind on either node."""
    async with two_nodes() as (net, a, b):
        here = await a.start(Trapper, None)
        assert here is not None
        for i in range(100):
            await b.start(Agent, None, name=f"w{i}")
            _, _, far = await a.remote("b", f"w{i}").call("who")
            assert far.alive
            await here.call(("link", far))
            await here.call(("monitor", far))
            await far.call(("stop", "normal"))
            with anyio.fail_after(5):
                await far.wait_exit()
            del far
        assert len(await here.call("seen")) == 200  # an Exit and a Down for each, kept by the trapper...
        await here.stop()  # ...until it goes
        del here
        gc.collect()
        for name in ("a", "b"):
            statistics = net.node(name).statistics()
            assert (statistics.remote_actors, statistics.monitors, statistics.incoming_calls) == (0, 0, 0), name
            assert statistics.remote_refs == 0, name


class Busy(gs.GenStateMachine):
    """Handles one cast at a time, each until ``release`` is set; tells ``busy`` when it starts one."""

    async def init(self, arg: Any) -> gs.Init:
        self.busy, self.release = arg
        return gs.Init("up", None)

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Cast):
            self.busy.set()
            await self.release.wait()
        return None


@pytest.mark.parametrize("kind", ["memory", "tcp"])
async def test_a_remote_call_over_the_mailbox_limit_raises_mailbox_full(kind: str) -> None:
    """A call from another node to a full mailbox fails at once with MailboxFull and its limit, as a local one."""
    networks = Networks(kind)
    busy, release = anyio.Event(), anyio.Event()
    async with networks.node("a") as a, networks.node("b") as b:
        local = await b.start(Busy, (busy, release), name="busy", mailbox_limit=1)
        assert local is not None
        local.cast("work")
        await busy.wait()
        local.cast("waits in the mailbox")
        far = a.remote("b", "busy")
        with anyio.fail_after(5), pytest.raises(gs.MailboxFull, match="full") as raised:
            await far.call("anything", timeout=None)
        assert raised.value.limit == 1
        assert repr(far) in str(raised.value)
        release.set()
