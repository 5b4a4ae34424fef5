"""genstatem: Erlang/Elixir ``gen_statem`` for Python, on anyio.

Everything public is importable from here: ``import genstatem as gs``.
"""

from . import lowlevel as lowlevel
from ._core import ActorError as ActorError
from ._core import ActorExited as ActorExited
from ._core import ActorRef as ActorRef
from ._core import ActorSystem as ActorSystem
from ._core import AlreadyStarted as AlreadyStarted
from ._core import Call as Call
from ._core import Caller as Caller
from ._core import CallingSelf as CallingSelf
from ._core import CallTimeout as CallTimeout
from ._core import Cast as Cast
from ._core import Down as Down
from ._core import Exit as Exit
from ._core import Info as Info
from ._core import MailboxFull as MailboxFull
from ._core import Monitor as Monitor
from ._core import NoProcess as NoProcess
from ._core import StartError as StartError
from ._core import TraceEvent as TraceEvent
from ._core import call as call
from ._core import cast as cast
from ._core import reply as reply
from ._core import send as send
from ._core import stop as stop
from ._core import whereis as whereis
from .statem import BadReturn as BadReturn
from .statem import Enter as Enter
from .statem import EventTimeout as EventTimeout
from .statem import GenericTimeout as GenericTimeout
from .statem import GenStateMachine as GenStateMachine
from .statem import Ignore as Ignore
from .statem import Init as Init
from .statem import Internal as Internal
from .statem import KeepState as KeepState
from .statem import NextEvent as NextEvent
from .statem import NextState as NextState
from .statem import Postpone as Postpone
from .statem import RepeatState as RepeatState
from .statem import Reply as Reply
from .statem import StateTimeout as StateTimeout
from .statem import Stop as Stop
from .supervision import ChildCounts as ChildCounts
from .supervision import ChildInfo as ChildInfo
from .supervision import ChildRunning as ChildRunning
from .supervision import ChildSpec as ChildSpec
from .supervision import DynamicSupervisor as DynamicSupervisor
from .supervision import DynamicSupervisorSpec as DynamicSupervisorSpec
from .supervision import MaxChildren as MaxChildren
from .supervision import NoSuchChild as NoSuchChild
from .supervision import Supervisor as Supervisor
from .supervision import SupervisorSpec as SupervisorSpec

__version__ = "0.1.0"

__all__ = [
    "ActorError",
    "ActorExited",
    "ActorRef",
    "ActorSystem",
    "AlreadyStarted",
    "BadReturn",
    "Call",
    "CallTimeout",
    "CallingSelf",
    "Caller",
    "Cast",
    "ChildCounts",
    "ChildInfo",
    "ChildRunning",
    "ChildSpec",
    "Down",
    "DynamicSupervisor",
    "DynamicSupervisorSpec",
    "Enter",
    "EventTimeout",
    "Exit",
    "GenStateMachine",
    "GenericTimeout",
    "Ignore",
    "Info",
    "Init",
    "Internal",
    "KeepState",
    "MailboxFull",
    "MaxChildren",
    "Monitor",
    "NextEvent",
    "NextState",
    "NoProcess",
    "NoSuchChild",
    "Postpone",
    "RepeatState",
    "Reply",
    "StartError",
    "StateTimeout",
    "Stop",
    "Supervisor",
    "SupervisorSpec",
    "TraceEvent",
    "call",
    "cast",
    "reply",
    "send",
    "stop",
    "whereis",
]
