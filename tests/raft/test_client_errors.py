"""Whatever the network does, a RaftClient raises only RaftErrors."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from genstatem.raft import NoQuorum, RaftClient
from genstatem.raft._rpc import Ok

pytestmark = pytest.mark.anyio


class _BrokenThenOk:
    """A node whose first calls fail as a breaking network fails them, then answers."""

    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures

    async def call(self, request: Any, *, timeout: float | None = None) -> Any:
        if self.failures:
            raise self.failures.pop(0)
        return Ok("applied")


class _System:
    """Stands in for an ActorSystem whose network breaks: real transports no longer raise, this one does."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def remote(self, node: str, name: str) -> Any:
        return self.node


async def test_a_broken_connection_is_retried_not_raised() -> None:
    """Broken or closed streams and socket errors under a call are retried like a timeout."""
    failures: list[BaseException] = [anyio.BrokenResourceError(), anyio.ClosedResourceError(), ConnectionResetError()]
    client = RaftClient(_System(_BrokenThenOk(failures)), ["a", "b", "c"], retry_delay=0)  # type: ignore[arg-type]
    assert await client.propose(b"x") == "applied"
    assert failures == []


async def test_a_network_that_never_recovers_ends_in_no_quorum() -> None:
    """A connection that breaks on every attempt ends in NoQuorum, a RaftError, at the client's timeout."""
    failures: list[BaseException] = [anyio.BrokenResourceError() for _ in range(100_000)]
    client = RaftClient(_System(_BrokenThenOk(failures)), ["a"], timeout=0.05, retry_delay=0.001)  # type: ignore[arg-type]
    with pytest.raises(NoQuorum):
        await client.read(b"q")


async def test_a_command_that_is_not_bytes_is_refused_before_anything_is_sent() -> None:
    """propose() with a str command raises TypeError at once: the client never asks a node."""
    node = _BrokenThenOk([AssertionError("the client asked a node")])
    client = RaftClient(_System(node), ["a"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a command is bytes, not str"):
        await client.propose("put k v")  # type: ignore[arg-type]
    assert node.failures  # never called
