"""A RaftClient session's turns: one proposal at a time, in the order they come, safe to cancel while waiting."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from genstatem.raft._client import _Turns

pytestmark = pytest.mark.anyio


async def _take(turns: _Turns) -> None:
    if turns.busy:
        await turns.wait()
    else:
        turns.busy = True


async def test_turns_go_one_at_a_time_in_the_order_asked() -> None:
    """Proposals that wait for a busy turn get it one after another, first come first served."""
    turns, asked, order = _Turns(), [], []

    async def propose(name: str) -> None:
        asked.append(name)
        await _take(turns)
        order.append(name)
        await anyio.lowlevel.checkpoint()  # holds the turn across a checkpoint, as a proposal in flight does
        order.append(f"/{name}")
        turns.release()

    async with anyio.create_task_group() as tg:
        for name in "abc":
            tg.start_soon(propose, name)
    assert order == [step for name in asked for step in (name, f"/{name}")]
    assert not turns.busy


async def test_a_waiter_cancelled_before_its_turn_leaves_the_queue() -> None:
    """A proposal cancelled while it waits is dropped from the queue; the turn then goes free."""
    turns = _Turns()
    turns.busy = True
    with anyio.move_on_after(0.01):
        await turns.wait()
    turns.release()
    assert not turns.busy


async def test_a_waiter_cancelled_as_it_is_handed_the_turn_passes_it_on() -> None:
    """A proposal handed the turn just as it is cancelled gives it on (or takes it, if it ran first): none is lost."""
    turns, got = _Turns(), []

    async def waiter(name: str, scope: anyio.CancelScope | None = None) -> None:
        with scope or anyio.CancelScope():
            await turns.wait()
            got.append(name)
            turns.release()

    turns.busy = True
    first = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "first", first)
        tg.start_soon(waiter, "second")
        await anyio.sleep(0.01)  # both wait now
        turns.release()  # the turn goes to the first ...
        first.cancel()  # ... which is cancelled before it runs
    assert got in (["second"], ["first", "second"])
    assert not turns.busy
