"""Module-level ``call``/``cast``/``send``/``stop``/``whereis``/``reply``.

They take a ref or a registered name and act in the current system, so code
inside an actor or an ``async with ActorSystem()`` block needs no handle on
the system.
"""

from __future__ import annotations

from typing import Any

from ._caller import Caller
from ._context import get_system
from ._ref import ActorRef


def _ref(target: ActorRef | Any) -> ActorRef:
    if isinstance(target, ActorRef):
        return target
    return get_system()._resolve(target).ref


async def call(target: ActorRef | Any, request: Any, timeout: float | None = 5.0) -> Any:
    """``ActorRef.call`` on a ref or a registered name.

    Raises:
        NoProcess: the name is not registered, or the actor is not alive.
    """
    return await _ref(target).call(request, timeout)


def cast(target: ActorRef | Any, msg: Any) -> None:
    """``ActorRef.cast`` on a ref or a registered name (``NoProcess`` for an unknown name)."""
    _ref(target).cast(msg)


def send(target: ActorRef | Any, msg: Any) -> None:
    """``ActorRef.send`` on a ref or a registered name (``NoProcess`` for an unknown name)."""
    _ref(target).send(msg)


async def stop(target: ActorRef | Any, reason: Any = "normal", timeout: float | None = None) -> None:
    """``ActorRef.stop`` on a ref or a registered name."""
    await _ref(target).stop(reason, timeout)


def whereis(name: Any) -> ActorRef | None:
    """The live actor registered under ``name`` in the current system, or ``None``."""
    return get_system().whereis(name)


def reply(caller: Caller, value: Any) -> None:
    """Answer a call now, from anywhere (another actor too), like ``gen_statem:reply/2``.

    A reply to a caller that already has its answer, or gave up, is dropped.
    """
    caller.resolve(value)
