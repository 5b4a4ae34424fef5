"""Size limits: a proposal over ``max_command_bytes`` is refused on every path; no node crashes over a size.

Cluster scenarios run on a ``Simulation`` (virtual time, seeded, election
safety and log agreement checked on every step); message-level ones drive
one RaftNode by hand (``OneNode``). The hypothesis test checks that every
``Append`` a leader builds encodes under the wire's frame limit.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genstatem.net import DEFAULT_MAX_FRAME_SIZE, Codec, default_registry
from genstatem.raft import CommandTooLarge, KVMachine, ListMachine, NoQuorum, RaftConfig, RequestRejected
from genstatem.raft._config import MAX_MESSAGE_BYTES
from genstatem.raft._rpc import Append, AppendReply, ApplyFailed, ChangeMembers, Propose, TooLarge
from genstatem.testing import Simulation, VirtualTimeEventLoop

from .helpers import Cluster, follower_with_log, leader_of

pytestmark = pytest.mark.anyio

LIMIT = RaftConfig().max_command_bytes
OVER = b"x" * (LIMIT + 1)  # over the limit, under the wire's frame limit
HUGE = b"x" * (2 * DEFAULT_MAX_FRAME_SIZE)  # over the frame limit too
NO_CLIENT_CHECK = 64 * 1024 * 1024  # a client that does not know the limit sends anything


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Everything runs on asyncio on virtual time (the simulator's loop)."""
    return "asyncio", {"loop_factory": VirtualTimeEventLoop}


def test_the_default_limit_is_well_under_the_frame_limit() -> None:
    """512 KiB by default: a command that fits also fits in an append, with room to spare."""
    assert LIMIT == 512 * 1024
    assert LIMIT < MAX_MESSAGE_BYTES < DEFAULT_MAX_FRAME_SIZE


def test_a_config_whose_messages_could_not_fit_a_frame_is_refused() -> None:
    """A chunk, batch or command limit too large for the wire is refused when the config is made."""
    for name in ("max_command_bytes", "max_batch_bytes", "snapshot_chunk_bytes"):
        with pytest.raises(ValueError, match=name):
            RaftConfig(**{name: DEFAULT_MAX_FRAME_SIZE})


# -- one node -------------------------------------------------------------------------------------


async def test_a_leader_refuses_an_oversized_proposal_and_logs_nothing() -> None:
    """A proposal over the limit is answered ``TooLarge`` at once; the log does not grow."""
    node = await leader_of()
    assert await node.ask(Propose(OVER, "c1", 1)) == TooLarge(LIMIT + 1 + 2, LIMIT)
    assert node.raft.log_store.last_index() == 1
    assert node.take() == []


async def test_a_follower_refuses_an_oversized_proposal_itself() -> None:
    """A follower answers ``TooLarge`` rather than sending the client on to the leader with it."""
    node = await follower_with_log(1)
    assert await node.ask(Propose(OVER)) == TooLarge(LIMIT + 1, LIMIT)


@pytest.mark.parametrize(
    ("proposal", "types"),
    [
        (Propose("text", "c1", 1), "str, str and int"),  # type: ignore[arg-type]
        (Propose(b"x", 7, 1), "bytes, int and int"),  # type: ignore[arg-type]
        (Propose(b"x", "c1", "1"), "bytes, str and str"),  # type: ignore[arg-type]
    ],
)
@pytest.mark.parametrize("role", ["leader", "follower"])
async def test_a_malformed_proposal_is_refused_and_the_node_keeps_running(
    proposal: Propose, types: str, role: str
) -> None:
    """A Propose with a non-bytes command, a non-str client or a non-int seq is refused by name; nothing is logged."""
    node = await (leader_of() if role == "leader" else follower_with_log(1))
    last = node.raft.log_store.last_index()
    answer = await node.ask(proposal)
    assert isinstance(answer, ApplyFailed)
    assert answer.error.startswith("malformed Propose")
    assert answer.error.endswith(types)
    assert node.raft.log_store.last_index() == last
    assert await node.ask(Propose(OVER)) == TooLarge(LIMIT + 1, LIMIT)  # still running, still answering


async def test_a_leader_refuses_a_member_whose_name_is_oversized() -> None:
    """A membership change whose config entry would be over the limit is refused, not replicated."""
    node = await leader_of()
    await node.cast(AppendReply(1, "b", True, 1))
    answer = await node.ask(ChangeMembers(add="n" * (LIMIT + 1)))
    assert isinstance(answer, TooLarge)
    assert node.raft.log_store.last_index() == 1


# -- a cluster: every path ----------------------------------------------------------------------------


async def test_an_oversized_proposal_is_refused_on_every_path_and_no_node_crashes() -> None:
    """From the leader's node, from another node, through a follower, over the frame limit: CommandTooLarge."""
    async with Simulation(seed=51) as sim:
        cluster = Cluster(sim)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        follower = next(node for node in "abc" if node != leader)
        checked = await cluster.client("checked")
        with pytest.raises(CommandTooLarge) as caught:
            await checked.propose(OVER)  # the client knows the limit: nothing is sent
        assert (caught.value.limit, caught.value.size) == (LIMIT, LIMIT + 1 + len("checked"))
        on_leader = await cluster.client("here", node=leader, max_command_bytes=NO_CLIENT_CHECK)
        elsewhere = await cluster.client("there", max_command_bytes=NO_CLIENT_CHECK)
        for client in (on_leader, elsewhere):
            with pytest.raises(CommandTooLarge, match="over max_command_bytes=524288"):
                await client.propose(OVER)
        with pytest.raises(CommandTooLarge, match="cannot be sent"):
            await elsewhere.propose(HUGE)  # over the frame limit: refused by the client's own codec
        assert await cluster.call(follower, Propose(OVER), via="client") == TooLarge(LIMIT + 1, LIMIT)
        with pytest.raises(RequestRejected):  # CommandTooLarge is a RequestRejected
            await on_leader.propose(HUGE)  # on the leader's node: no codec on the way, the leader refuses it
        assert await checked.propose(KVMachine.put("after", "all that")) == "ok"
        assert sorted(cluster.running_nodes()) == ["a", "b", "c"]  # a crashed RaftNode is not running


async def test_an_answer_too_large_for_the_wire_does_not_crash_the_leader() -> None:
    """A read whose answer cannot be encoded goes unanswered (the client times out); the leader keeps leading."""
    async with Simulation(seed=52) as sim:
        cluster = Cluster(sim, machine=ListMachine)
        await cluster.start()
        leader = await cluster.wait_for_leader()
        client = await cluster.client(timeout=5.0)
        for _ in range(3):
            await client.propose(b"y" * 400_000)
        with pytest.raises(NoQuorum):
            await client.read(b"all")  # 1.2 MB: over the frame limit
        assert await client.read(b"") == 3
        assert (await cluster.status(leader)).role == "leader"


# -- every append fits a frame ----------------------------------------------------------------------------

CODEC = Codec()
default_registry.install(CODEC)


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(0, LIMIT - 64), min_size=1, max_size=12),
    client=st.text(min_size=1, max_size=64),
    batch=st.integers(1024, 256 * 1024),
)
def test_every_append_a_leader_builds_encodes_under_the_frame_limit(sizes: list[int], client: str, batch: int) -> None:
    """Whatever the commands' sizes and the batch limit, each Append encodes to at most MAX_MESSAGE_BYTES."""

    async def run() -> None:
        node = await leader_of(max_batch_bytes=batch, snapshot_every=None)
        for seq, size in enumerate(sizes, start=1):
            await node.call(Propose(b"z" * size, client, seq))
        await node.cast(AppendReply(1, "b", False, 0, hint=1))  # b has nothing: resend it everything
        for _ in range(len(sizes) + 2):
            await node.cast(AppendReply(1, "b", True, node.raft.leading.progress["b"].next - 1))
        appends = [sent.message for sent in node.take(Append)]
        assert appends
        for append in appends:
            encoded = len(CODEC.encode(append))
            assert encoded <= MAX_MESSAGE_BYTES
            if len(append.entries) > 1:
                assert sum(entry.size() for entry in append.entries) <= batch
            assert encoded <= sum(entry.size() for entry in append.entries) + 64 + len(append.leader)

    anyio.run(run)
