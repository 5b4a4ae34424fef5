"""The supervisor's request/reply protocol: the calls its API functions make, and the replies.

The API functions are ``call``s the supervisor answers between events; an
error is sent back wrapped in :class:`Failed` and raised in the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._core import ActorRef, call
from ._spec import ChildSpec

if TYPE_CHECKING:
    from ._base import Child


class Request:
    """Base of the calls the API functions make; anything else is not ours."""

    __slots__ = ()


class StartChild(Request):
    __slots__ = ("spec",)

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec


class ChildRequest(Request):
    """A request about one child: by id, or by ref for a ``DynamicSupervisor``."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key


class TerminateChild(ChildRequest):
    __slots__ = ()


class RestartChild(ChildRequest):
    __slots__ = ()


class DeleteChild(ChildRequest):
    __slots__ = ()


class WhichChildren(Request):
    __slots__ = ()


class CountChildren(Request):
    __slots__ = ()


class Failed:
    """A reply that is an error, to be raised in the caller."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class TryAgain:
    """Cast to itself after a failed restart, so calls are answered between retries (OTP's try_again_restart)."""

    __slots__ = ("child",)

    def __init__(self, child: Child) -> None:
        self.child = child


async def request(sup: ActorRef | Any, message: Request, timeout: float | None) -> Any:
    """Send ``message`` to the supervisor ``sup`` (a ref or a name); raise the error it replies with."""
    reply = await call(sup, message, timeout)
    if reply.__class__ is Failed:
        raise reply.error
    return reply
