"""Group commit on the leader: proposals that wait together are appended, synced and sent together.

A proposal taken while other messages wait in the leader's mailbox joins a
batch; the batch is appended with one sync and sent in one ``Append`` per
follower once the mailbox is empty (or the batch is full). A lone proposal
goes at once, in its own event. The node is driven by hand (``OneNode``);
``call_queued`` delivers requests as if they all sat in the mailbox.
"""

from __future__ import annotations

from typing import Any

import pytest

import genstatem as gs
from genstatem.raft._rpc import Append, AppendReply, Ok, Propose, Read, Unknown

from .helpers import OneNode, leader_of

pytestmark = pytest.mark.anyio


def count_syncs(node: OneNode) -> list[int]:
    """Count the leader's log syncs from now on: the list's length is the count."""
    store = node.raft.log_store
    sync = store.sync
    syncs: list[int] = []

    async def counted() -> None:
        syncs.append(store.last_index())
        await sync()

    store.sync = counted  # type: ignore[method-assign]
    return syncs


async def test_proposals_waiting_together_are_appended_with_one_sync_and_sent_in_one_append_per_follower() -> None:
    """Eight proposals queued at once: one sync, one Append to each follower with all eight, answers at commit."""
    node = await leader_of()
    await node.cast(AppendReply(1, "b", True, 1))
    node.take()
    syncs = count_syncs(node)
    callers = await node.call_queued(*(Propose(f"x{i}".encode()) for i in range(8)))
    assert syncs == [9]
    sent = node.take(Append)
    assert sorted(s.to for s in sent) == ["b", "c"]
    for s in sent:
        assert [e.index for e in s.message.entries] == list(range(2, 10))
        assert s.durable.entries[-1].index == 1  # sent before the leader's own sync: the two overlap
    assert [node.answers(c) for c in callers] == [[]] * 8  # not committed yet
    assert node.storage.durable().entries[-1].index == 9  # synced in the same event
    await node.cast(AppendReply(1, "c", True, 9))
    assert [node.answers(c) for c in callers] == [[Ok(i + 1)] for i in range(8)]


async def test_a_lone_proposal_is_appended_synced_and_sent_in_its_own_event() -> None:
    """With nothing else waiting, a proposal is appended, synced and sent at once: one client waits no longer."""
    node = await leader_of()
    syncs = count_syncs(node)
    await node.call(Propose(b"x"))
    assert syncs == [2]
    sent = node.take(Append)
    assert sorted(s.to for s in sent) == ["b", "c"]
    assert all([e.command for e in s.message.entries][-1:] == [b"x"] for s in sent)


async def test_proposals_wait_for_the_last_queued_message_whatever_it_is() -> None:
    """The batch goes when the mailbox empties: after the reply queued behind the proposals, not before it."""
    node = await leader_of()
    syncs = count_syncs(node)
    caller_1, caller_2 = node.driver.caller(), node.driver.caller()
    steps = await node.feed_queued(
        (gs.Call(caller_1), Propose(b"x")),
        (gs.Call(caller_2), Propose(b"y")),
        (gs.Cast(), AppendReply(1, "b", True, 1)),
    )
    assert len(steps) == 3
    assert syncs == [3]
    [to_b] = node.take(Append, to="b")
    assert [e.command for e in to_b.message.entries] == [b"x", b"y"]
    await node.cast(AppendReply(1, "b", True, 3))
    assert (node.answers(caller_1), node.answers(caller_2)) == ([Ok(1)], [Ok(2)])


async def test_a_full_batch_goes_without_waiting_for_the_mailbox_to_empty() -> None:
    """A batch that reaches ``max_batch_entries`` is appended and sent at once; the rest form the next batch."""
    node = await leader_of(max_batch_entries=3)
    await node.cast(AppendReply(1, "b", True, 1))
    node.take()
    syncs = count_syncs(node)
    await node.call_queued(*(Propose(f"x{i}".encode()) for i in range(7)))
    assert syncs == [4, 7, 8]
    assert [[e.index for e in s.message.entries] for s in node.take(Append, to="b")] == [[2, 3, 4], [5, 6, 7], [8]]


async def test_a_leader_that_steps_down_with_a_batch_waiting_never_appends_it() -> None:
    """A newer term queued behind proposals: the leader steps down, the batch is dropped, its proposers told."""
    node = await leader_of()
    callers: list[Any] = [node.driver.caller(), node.driver.caller()]
    await node.feed_queued(
        (gs.Call(callers[0]), Propose(b"x")),
        (gs.Call(callers[1]), Propose(b"y")),
        (gs.Cast(), AppendReply(2, "b", False, 0)),
    )
    assert node.role == "follower"
    assert node.status.last_index == 1  # only the no-op
    assert [node.answers(c) for c in callers] == [[Unknown("leadership lost before the entry committed")]] * 2


async def test_reads_waiting_together_join_one_confirmation_round() -> None:
    """Three reads queued at once: one heartbeat round to each follower, and one quorum answer serves them all."""
    node = await leader_of()
    await node.cast(AppendReply(1, "b", True, 1))
    node.take()
    readers = await node.call_queued(Read(b""), Read(b""), Read(b""))
    heartbeats = node.take(Append)
    assert sorted((s.to, s.message.read_seq) for s in heartbeats) == [("b", 1), ("c", 1)]
    await node.cast(AppendReply(1, "c", True, 1, read_seq=1))
    assert [node.answers(r) for r in readers] == [[Ok(0)]] * 3
    assert node.take(Append) == []  # no second round was needed


async def test_a_lone_read_starts_its_confirmation_round_in_its_own_event() -> None:
    """With nothing else waiting, a read's heartbeat round goes at once: one reader waits no longer."""
    node = await leader_of()
    await node.call(Read(b""))
    assert sorted((s.to, s.message.read_seq) for s in node.take(Append)) == [("b", 1), ("c", 1)]


async def test_reads_that_come_while_a_round_is_out_go_together_in_the_next_one() -> None:
    """Reads arriving during a round start none of their own; once it is confirmed, one more round serves them all."""
    node = await leader_of()
    await node.cast(AppendReply(1, "b", True, 1))
    node.take()
    first = await node.call(Read(b""))
    assert sorted((s.to, s.message.read_seq) for s in node.take(Append)) == [("b", 1), ("c", 1)]
    later = [await node.call(Read(b"")), await node.call(Read(b""))]
    assert node.take(Append) == []  # the round is out: they wait for it
    await node.cast(AppendReply(1, "c", True, 1, read_seq=1))
    assert node.answers(first) == [Ok(0)]
    assert [node.answers(r) for r in later] == [[], []]
    assert sorted((s.to, s.message.read_seq) for s in node.take(Append)) == [("b", 2), ("c", 2)]
    await node.cast(AppendReply(1, "b", True, 1, read_seq=2))
    assert [node.answers(r) for r in later] == [[Ok(0)]] * 2
    assert node.take(Append) == []
