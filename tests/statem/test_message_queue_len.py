"""``message_queue_len()``: a machine can see how many messages wait behind the one it handles (to batch work)."""

from __future__ import annotations

from typing import Any

import pytest

import genstatem as gs
from genstatem.testing import StateMachineDriver

pytestmark = pytest.mark.anyio


class Counting(gs.GenStateMachine):
    """Records ``message_queue_len()`` at every event; a call ``"seen"`` answers the record."""

    async def init(self, arg: Any) -> gs.Init:
        return gs.Init("up", [])

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        data.append((content, self.message_queue_len()))
        if isinstance(event_type, gs.Call):
            return gs.KeepState(actions=gs.Reply(event_type.caller, list(data)))
        if content == "next":
            return gs.KeepState(actions=gs.NextEvent(gs.Internal(), "inserted"))
        return None


async def test_the_count_is_of_the_messages_still_waiting_in_the_mailbox() -> None:
    """Five casts sent together, then a call: each cast sees the messages behind it, the call none."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Counting)
        for i in range(5):
            ref.cast(i)
        assert await ref.call("seen") == [(0, 5), (1, 4), (2, 3), (3, 2), (4, 1), ("seen", 0)]


async def test_events_the_engine_queued_itself_are_not_counted() -> None:
    """An inserted event runs before the mailbox and is not a message: the count is the mailbox's alone."""
    async with gs.ActorSystem() as system:
        ref = await system.start(Counting)
        ref.cast("next")
        assert await ref.call("seen") == [("next", 1), ("inserted", 1), ("seen", 0)]


async def test_a_driver_counts_the_events_fed_together_after_the_one_handled() -> None:
    """``feed`` hands one event (nothing waits); ``feed_queued`` hands several as if they sat in the mailbox."""
    driver = await StateMachineDriver.start(Counting)
    await driver.feed(gs.Cast(), "alone")
    steps = await driver.feed_queued([(gs.Cast(), "a"), (gs.Cast(), "b"), (gs.Cast(), "c")])
    assert len(steps) == 3
    await driver.feed(gs.Cast(), "after")
    assert driver.data == [("alone", 0), ("a", 2), ("b", 1), ("c", 0), ("after", 0)]
