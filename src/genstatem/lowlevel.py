"""The runtime's low-level API: what ``statem``, ``supervision`` and ``net`` are built on.

Everything the layers above the core use is public here or in
``genstatem``, so a new behaviour (a ``gen_server``, say) or a new
transport can be written the way genstatem's own are. Most programs never
need this module. See ``docs/lowlevel.md``.

Writing a behaviour:
    :class:`Behaviour` is what ``ActorSystem.start`` runs; its
    ``actor_init`` gets an :class:`Actor`, the handle on its own actor
    (mailbox, clock, links, monitors). Mailbox items are ``(kind, content)``
    with ``kind`` one of ``Call(caller)``, :data:`CAST`, :data:`INFO` or
    :data:`SYSTEM` (content a :class:`SystemMessage`: :class:`GetState` or
    :class:`StopRequest`).

Writing a network:
    ``ActorSystem(network=...)`` takes a :class:`Network`, whose ``attach``
    returns a :class:`Distribution`. What arrives for a local actor is
    delivered with :func:`deliver_call`, :func:`deliver_state_request`,
    :func:`deliver_stop` and the refs' ``cast``/``send``, and
    :func:`mailbox_size` tells how much of it still waits to be taken; links and monitors
    across nodes go through :class:`Peer`, which a remote proxy implements
    and ``ActorSystem.peer`` returns for a local actor.
"""

from ._core import CALLER_TYPES as CALLER_TYPES
from ._core import CAST as CAST
from ._core import EVENT_BUDGET as EVENT_BUDGET
from ._core import IGNORED as IGNORED
from ._core import INFO as INFO
from ._core import SYSTEM as SYSTEM
from ._core import Actor as Actor
from ._core import Behaviour as Behaviour
from ._core import Distribution as Distribution
from ._core import GetState as GetState
from ._core import InitIgnored as InitIgnored
from ._core import InitStopped as InitStopped
from ._core import LocalRef as LocalRef
from ._core import Mailbox as Mailbox
from ._core import Network as Network
from ._core import NeverIgnores as NeverIgnores
from ._core import Peer as Peer
from ._core import StopRequest as StopRequest
from ._core import SystemMessage as SystemMessage
from ._core import TimerHandle as TimerHandle
from ._core import Tracer as Tracer
from ._core import behaviour_of as behaviour_of
from ._core import call_timed_out as call_timed_out
from ._core import current_system as current_system
from ._core import deliver_call as deliver_call
from ._core import deliver_state_request as deliver_state_request
from ._core import deliver_stop as deliver_stop
from ._core import find_actor as find_actor
from ._core import forget_caller as forget_caller
from ._core import get_logger as get_logger
from ._core import get_system as get_system
from ._core import is_clean_exit as is_clean_exit
from ._core import mailbox_size as mailbox_size
from ._core import new_caller as new_caller
from ._core import running_on_asyncio as running_on_asyncio

__all__ = [
    "CALLER_TYPES",
    "CAST",
    "EVENT_BUDGET",
    "IGNORED",
    "INFO",
    "SYSTEM",
    "Actor",
    "Behaviour",
    "Distribution",
    "GetState",
    "InitIgnored",
    "InitStopped",
    "LocalRef",
    "Mailbox",
    "NeverIgnores",
    "Network",
    "Peer",
    "StopRequest",
    "SystemMessage",
    "TimerHandle",
    "Tracer",
    "behaviour_of",
    "call_timed_out",
    "current_system",
    "deliver_call",
    "deliver_state_request",
    "deliver_stop",
    "find_actor",
    "forget_caller",
    "get_logger",
    "get_system",
    "is_clean_exit",
    "mailbox_size",
    "new_caller",
    "running_on_asyncio",
]
