"""``RaftClient``: propose and read against a cluster, wherever its leader is."""

from __future__ import annotations

import uuid
from collections import deque
from typing import Any

import anyio

from .._core import ActorError, ActorExited, ActorRef, ActorSystem, CallTimeout, NoProcess
from ..net import EncodeError, FrameError
from ._config import DEFAULT_MAX_COMMAND_BYTES
from ._rpc import (
    ApplyFailed,
    ChangeMembers,
    NotLeader,
    Ok,
    Propose,
    Read,
    Rejected,
    TooLarge,
    TransferLeadership,
    Unknown,
)


class RaftError(ActorError):
    """Base class of the errors a Raft client raises."""


class NoQuorum(RaftError, TimeoutError):
    """No leader answered within the client's timeout: the cluster has no reachable quorum.

    A proposal that fails this way may or may not have been applied. The
    retries ``propose`` makes itself (timeouts, lost answers, a change of
    leader) reuse one sequence number, so they apply at most once; a new
    ``propose`` call after ``NoQuorum`` is a new command.
    """


class CommandFailed(RaftError):
    """The state machine raised while applying the command (on every node alike).

    Attributes:
        error: the exception's type and message.
    """

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class RequestRejected(RaftError):
    """The leader refused the request and will keep refusing it (e.g. a bad transfer target)."""


class CommandTooLarge(RequestRejected):
    """The command is larger than the cluster accepts: it was not applied, and never will be.

    Raised before anything is sent when the client knows the limit
    (``max_command_bytes``), by the node that refused it otherwise, or when
    the request could not even be encoded for the network (over its frame
    limit). Split the command, or raise ``RaftConfig.max_command_bytes`` on
    every node and the client alike.

    Attributes:
        size: the command's size in bytes (with the client id), if known.
        limit: the limit it broke, if known.
    """

    def __init__(self, message: str, *, size: int | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


_RETRYABLE = (CallTimeout, NoProcess, ActorExited, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
"""A node did not answer: it timed out, is gone, or its connection broke. Ask again, perhaps elsewhere."""


class _Turns:
    """One proposal of a session at a time, in the order they come; cancelling a waiting one is safe.

    ``anyio.Lock`` does the same, but looks up the current task on every
    acquire: a cost on every proposal, where a turn is almost always free.
    """

    __slots__ = ("busy", "_waiting")

    def __init__(self) -> None:
        self.busy = False  # a proposal has the turn (the next waiter gets it straight from ``release``)
        self._waiting: deque[anyio.Event] = deque()

    async def wait(self) -> None:
        """Wait until ``release`` hands this caller the turn (call it only while ``busy``; else take ``busy``)."""
        handed = anyio.Event()
        self._waiting.append(handed)
        try:
            await handed.wait()
        except BaseException:
            if handed.is_set():
                self.release()  # handed the turn as it was cancelled: the next one takes it
            else:
                self._waiting.remove(handed)
            raise

    def release(self) -> None:
        """Give the turn to the next waiter, or free it."""
        if self._waiting:
            self._waiting.popleft().set()
        else:
            self.busy = False


class RaftClient:
    """Talks to a Raft cluster from any node: finds the leader, retries, times out.

    Whatever the network does, its methods raise only ``RaftError``s: a
    node that is gone or a connection that breaks is retried (elsewhere)
    until the client's ``timeout``, then ``NoQuorum``.

    Each client is a session: its proposals carry a sequence number, so one
    retried after a lost answer or a change of leader is applied once.
    Concurrent proposals through one client are sent one at a time, in order.

    Args:
        system: the ActorSystem to call from (a node of the cluster's network).
        members: the cluster's node names.
        name: the name the cluster's RaftNodes are registered under.
        client_id: the session id (unique per client; random by default).
        timeout: seconds a request may take in all, retries included.
        call_timeout: seconds one attempt waits for one node.
        retry_delay: seconds between attempts when no leader is known.
        max_command_bytes: the largest command (with the client id) sent;
            larger ones raise ``CommandTooLarge`` at once. Keep it equal to
            the nodes' ``RaftConfig.max_command_bytes``.
    """

    def __init__(
        self,
        system: ActorSystem,
        members: tuple[str, ...] | list[str],
        *,
        name: str = "raft",
        client_id: str | None = None,
        timeout: float = 10.0,
        call_timeout: float = 1.0,
        retry_delay: float = 0.05,
        max_command_bytes: int = DEFAULT_MAX_COMMAND_BYTES,
    ) -> None:
        self.system = system
        self.members = list(members)
        self.name = name
        self.client_id = client_id or uuid.uuid4().hex
        self.timeout = timeout
        self.call_timeout = call_timeout
        self.retry_delay = retry_delay
        self.max_command_bytes = max_command_bytes
        self.leader: str | None = None
        self._seq = 0
        self._proposing = _Turns()  # one proposal in flight: the session's sequence numbers stay in order
        self._turn = 0
        self._refs: dict[str, ActorRef] = {}

    async def propose(self, command: bytes) -> Any:
        """Append ``command`` to the log; return what ``apply`` returned once it is committed.

        Raises:
            NoQuorum: no leader answered in time (the command may still be applied).
            CommandFailed: ``apply`` raised.
            CommandTooLarge: the command is over ``max_command_bytes`` (here or
                on the nodes): it was not applied.
            TypeError: the command is not ``bytes``; nothing was sent.
        """
        if not isinstance(command, bytes):
            raise TypeError(f"a command is bytes, not {type(command).__name__}")
        size = len(command) + len(self.client_id.encode())
        if size > self.max_command_bytes:
            raise CommandTooLarge(
                f"command of {size} bytes (with the client id) is over max_command_bytes={self.max_command_bytes}",
                size=size,
                limit=self.max_command_bytes,
            )
        turns = self._proposing
        if turns.busy:
            await turns.wait()
        else:
            turns.busy = True  # the usual case, one proposal at a time: no wait, no extra turn of the loop
        try:
            self._seq += 1
            return await self._request(Propose(command, self.client_id, self._seq))
        finally:
            turns.release()

    async def read(self, query: bytes) -> Any:
        """A linearizable read: ``query`` on the leader's machine, reflecting every earlier write.

        Raises:
            NoQuorum: no leader could confirm its leadership in time.
            CommandFailed: ``query`` raised.
        """
        return await self._request(Read(query))

    async def add_member(self, node: str) -> None:
        """Add ``node`` to the cluster as a voter at once (start its RaftNode first); see also ``add_learner``."""
        await self._request(ChangeMembers(add=node))
        if node not in self.members:
            self.members.append(node)

    async def add_learner(self, node: str) -> None:
        """Add ``node`` as a learner (start its RaftNode first): it receives the log, but votes only once promoted.

        This is how a node joins a live cluster without weakening it: the
        quorum is unchanged while the learner catches up, then ``promote``
        makes it a voter (or the leader does, with ``RaftConfig.auto_promote``).
        """
        await self._request(ChangeMembers(add=node, learner=True))
        if node not in self.members:
            self.members.append(node)

    async def promote(self, node: str) -> None:
        """Make the learner ``node`` a voter, once it has caught up with the leader.

        Raises:
            RequestRejected: ``node`` is not caught up yet (the reason says how
                far behind it is), is not a learner, or another membership
                change is in progress: retry later.
            NoQuorum: no leader answered in time.
        """
        await self._request(ChangeMembers(promote=node), give_up_on_rejection=True)

    async def remove_member(self, node: str) -> None:
        """Remove ``node`` from the cluster; a removed leader steps down."""
        await self._request(ChangeMembers(remove=node))

    async def transfer_leadership(self, target: str) -> None:
        """Ask the leader to hand over to ``target`` once it has caught up."""
        await self._request(TransferLeadership(target), give_up_on_rejection=True)

    async def _request(self, request: Any, *, give_up_on_rejection: bool = False) -> Any:
        remaining = self.timeout
        if self.leader is not None and self.call_timeout <= self.timeout:
            # The usual case first, with no cancel scope to set up: the known leader answers within one
            # attempt, which the call's own timeout bounds.
            started = self.system.now()
            done, result, pause = await self._attempt(request, give_up_on_rejection)
            if done:
                return result
            remaining -= self.system.now() - started
            if pause:
                await anyio.sleep(max(0.0, min(self.retry_delay, remaining)))
                remaining -= self.retry_delay
        with anyio.move_on_after(remaining):
            while True:
                done, result, pause = await self._attempt(request, give_up_on_rejection)
                if done:
                    return result
                if pause:
                    await anyio.sleep(self.retry_delay)
        raise NoQuorum(f"no leader of {self.members} answered within {self.timeout}s")

    async def _attempt(self, request: Any, give_up_on_rejection: bool) -> tuple[bool, Any, bool]:
        """Ask the node most likely to lead: ``(done, its result, whether to pause before the next attempt)``."""
        target = self._target()
        try:
            answer = await self._ref(target).call(request, timeout=self.call_timeout)
        except (EncodeError, FrameError) as refused:  # refused at this end: too large for the wire
            raise CommandTooLarge(f"{type(request).__name__} cannot be sent: {refused}") from refused
        except _RETRYABLE:
            self.leader = None
            return False, None, True
        match answer:
            case Ok(result=result):
                self.leader = target
                return True, result, False
            case ApplyFailed(error=error):
                raise CommandFailed(error)
            case NotLeader(leader=leader):
                if leader is not None and leader not in self.members:
                    self.members.append(leader)  # added to the cluster since this client was made
                self.leader = leader
                return False, None, leader is None
            case Rejected(reason=reason):
                if give_up_on_rejection:
                    raise RequestRejected(reason)
                return False, None, True
            case TooLarge(size=size, limit=limit):
                raise CommandTooLarge(
                    f"{target!r} refused a command of {size} bytes: over max_command_bytes={limit}",
                    size=size,
                    limit=limit,
                )
            case Unknown():
                return False, None, False  # same request, same sequence number: applied at most once
            case _:
                raise RaftError(f"unexpected answer from {target!r}: {answer!r}")

    def _ref(self, node: str) -> ActorRef:
        """The RaftNode on ``node``: a ref by name to another node is kept, the name being looked up there."""
        ref = self._refs.get(node)
        if ref is None:
            ref = self.system.remote(node, self.name)
            if node != self.system.node:
                self._refs[node] = ref
        return ref

    def _target(self) -> str:
        if self.leader is not None:
            return self.leader
        self._turn = (self._turn + 1) % len(self.members)
        return self.members[self._turn]
