"""How an ActorSystem joins a network, seen from the core.

The core knows only the two protocols here; ``genstatem.net`` implements
them (in memory, simulated, TCP), so the runtime stays free of any network
code. A node delivers what arrives for local actors through the functions
below, and links and monitors across nodes through the ``Peer`` protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ._errors import MailboxFull
from ._messages import SYSTEM, Call, GetState, StopRequest

if TYPE_CHECKING:
    from ._caller import Caller
    from ._process import Peer
    from ._ref import ActorRef, LocalRef
    from ._system import ActorSystem


class Distribution(Protocol):
    """A running system's connection to other nodes."""

    def remote_ref(self, node: str, name: Any) -> ActorRef:
        """A ref to the actor registered as ``name`` on ``node``."""
        ...

    def peer(self, ref: ActorRef) -> Peer:
        """What this system's links and monitors talk to for ``ref``, an actor elsewhere."""
        ...

    async def stop(self) -> None:
        """Leave the network."""
        ...


class Network(Protocol):
    """Something an ``ActorSystem(node=..., network=...)`` can join."""

    async def attach(self, system: ActorSystem) -> Distribution:
        """Join ``system`` (named ``system.node``) to this network."""
        ...


# -- delivery: what a node does to the local actors, on behalf of other nodes ----------


def find_actor(system: ActorSystem, actor_id: int) -> LocalRef | None:
    """The ref of ``system``'s live actor with this id (``LocalRef.id``), or ``None``.

    A node reads ids off the wire: this turns one back into a ref.
    """
    process = system._process_by_id(actor_id)
    return None if process is None else process.ref


def new_caller(system: ActorSystem) -> Caller:
    """A fresh reply handle on ``system``'s event loop, to await an answer from another node."""
    return system._loop.new_caller()


def deliver_call(ref: LocalRef, caller: Caller, request: Any) -> bool:
    """Put ``(Call(caller), request)`` in the mailbox of the local actor ``ref``, as ``call`` does.

    The actor answers through ``caller``; if it exits first, it fails
    ``caller`` with ``ActorExited``; if its mailbox is at its limit, ``caller``
    fails at once with ``MailboxFull``. Once ``caller`` is answered, tell the
    actor with :func:`forget_caller`.

    Returns:
        ``False`` (and nothing delivered) when the actor is not alive.
    """
    process = ref._process
    if not process.alive:
        return False
    mailbox = process.mailbox
    if not mailbox.offer((Call(caller), request)):
        caller.fail(MailboxFull(ref, mailbox.limit or 0))
        return True
    process.callers[caller] = None
    return True


def deliver_state_request(ref: LocalRef, caller: Caller) -> bool:
    """Ask the local actor ``ref`` for ``(state, data)`` through ``caller``, as ``get_state`` does.

    Returns:
        ``False`` (and nothing delivered) when the actor is not alive.
    """
    process = ref._process
    if not process.alive:
        return False
    process.callers[caller] = None
    process.mailbox.put((SYSTEM, GetState(caller)))
    return True


def mailbox_size(ref: LocalRef) -> int:
    """How many messages wait in the mailbox of the local actor ``ref``; ``0`` once it is gone.

    Mailboxes are first in, first out, so a network that knows the sizes of
    the last messages it put in a mailbox learns from this how many of them
    the actor has taken: that is how a node bounds what a peer may leave
    queued before it stops reading that peer's connection.
    """
    process = ref._process
    if not process.alive:
        return 0
    return len(process.mailbox.items)


def forget_caller(ref: LocalRef, caller: Caller) -> None:
    """``caller``, given to :func:`deliver_call` or :func:`deliver_state_request`, has its answer."""
    ref._process.callers.pop(caller, None)


def deliver_stop(ref: LocalRef, reason: Any, waiter: Caller) -> bool:
    """Queue a stop with ``reason`` to the local actor ``ref``, as ``stop`` does.

    ``waiter`` is resolved with the actor's exit reason once it is gone.

    Returns:
        ``False`` (and nothing delivered) when the actor is not alive.
    """
    process = ref._process
    if not process.alive:
        return False
    if process.exit_waiters is None:
        process.exit_waiters = []
    process.exit_waiters.append(waiter)
    process.mailbox.put((SYSTEM, StopRequest(reason)))
    return True
