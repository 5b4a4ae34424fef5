"""``GetStatus``: what a node tells about itself, and on a leader, about its followers."""

from __future__ import annotations

import pytest

from genstatem.raft._rpc import AppendReply, Propose

from .helpers import leader_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The node is driven by hand: plain asyncio."""
    return "asyncio"


async def test_leader_status_carries_each_followers_match_index() -> None:
    """A leader's status lists every follower's match index, sorted by node; a follower's lists none."""
    node = await leader_of()
    for command in (b"x", b"y"):
        await node.call(Propose(command))
    await node.cast(AppendReply(1, "c", True, 3))
    assert node.status.matches == (("b", 0), ("c", 3))
    assert node.status.last_index == 3


async def test_follower_status_has_no_match_indexes() -> None:
    """Only a leader knows its followers' progress: a follower's status has an empty ``matches``."""
    node = await leader_of()
    await node.cast(AppendReply(5, "b", False, 0))  # a higher term: a leader steps down
    assert node.role == "follower"
    assert node.status.matches == ()
