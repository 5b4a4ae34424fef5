"""The errors of the actor runtime, shared by every layer above it."""

from __future__ import annotations

import reprlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._ref import ActorRef


class ActorError(Exception):
    """Base class of every error genstatem raises about actors."""


class StartError(ActorError):
    """An actor's ``init`` failed: it returned ``Stop``, a bad value, or raised.

    Attributes:
        reason: the ``Stop`` reason, or the exception ``init`` raised.
    """

    def __init__(self, reason: Any) -> None:
        super().__init__(f"actor failed to start: {reason!r}")
        self.reason = reason


class AlreadyStarted(ActorError):
    """The name asked for is registered to a live actor.

    Attributes:
        ref: the actor holding the name.
    """

    def __init__(self, name: Any, ref: ActorRef) -> None:
        super().__init__(f"name {name!r} is already registered to {ref!r}")
        self.ref = ref


class CallTimeout(ActorError, TimeoutError):
    """No reply came within the call's timeout; a later reply is dropped."""


class NoProcess(ActorError):
    """The actor addressed is not alive (or no actor has that name)."""


class CallingSelf(ActorError):
    """An actor called, stopped or read the state of itself: it would wait for ever on its own answer.

    Like OTP's ``calling_self``: raised at once instead of a deadlock that
    lasts until the timeout.
    """


class MailboxFull(ActorError):
    """A call found the actor's mailbox at its ``mailbox_limit``: the request was not delivered.

    The actor is alive but behind; the caller decides whether to retry later,
    shed the work or give up. Casts and sends over the limit are dropped
    instead (they never raise), and counted.

    Attributes:
        limit: the mailbox limit the actor was started with.
    """

    def __init__(self, ref: ActorRef, limit: int) -> None:
        super().__init__(f"the mailbox of {ref!r} is full ({limit} messages): the call was not delivered")
        self.limit = limit


class ActorExited(ActorError):
    """The actor exited before it replied.

    Attributes:
        reason: its exit reason.
    """

    def __init__(self, reason: Any) -> None:
        super().__init__(f"actor exited before replying: {reason!r}")
        self.reason = reason


def call_timed_out(ref: Any, request: Any, timeout: float | None) -> CallTimeout:
    """The error of a call that got no reply: which actor, what was asked, how long it waited.

    A handler that does not match a request and returns ``None`` keeps it
    unanswered, so the message says so: that is the usual cause.
    """
    return CallTimeout(
        f"call to {ref!r} timed out after {timeout}s; request: {_short(request)}. "
        "The actor may be busy, or its handler did not reply (an event no clause matches "
        "returns None, which keeps the state and sends no reply)"
    )


def _short(value: Any) -> str:
    try:
        return _SHORT.repr(value)
    except Exception as exc:  # a broken __repr__ must not hide the timeout
        return f"<unrepresentable: {type(exc).__name__}>"


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60


def is_clean_exit(reason: Any) -> bool:
    """``"normal"``, ``"shutdown"`` and ``("shutdown", detail)`` are clean exits."""
    if reason == "normal" or reason == "shutdown":
        return True
    return isinstance(reason, tuple) and len(reason) == 2 and reason[0] == "shutdown"
