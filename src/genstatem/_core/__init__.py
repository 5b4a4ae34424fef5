"""The actor runtime: processes, mailboxes, refs, calls, links, monitors, registry.

It imports nothing from the layers above it (``statem``, ``supervision``,
``net``); they build on the names exported here, and every one of them is
public in ``genstatem`` or ``genstatem.lowlevel`` (a test checks it).
"""

from ._api import call as call
from ._api import cast as cast
from ._api import reply as reply
from ._api import send as send
from ._api import stop as stop
from ._api import whereis as whereis
from ._backend import TimerHandle as TimerHandle
from ._backend import running_on_asyncio as running_on_asyncio
from ._behaviour import IGNORED as IGNORED
from ._behaviour import Actor as Actor
from ._behaviour import Behaviour as Behaviour
from ._behaviour import InitIgnored as InitIgnored
from ._behaviour import InitStopped as InitStopped
from ._caller import CALLER_TYPES as CALLER_TYPES
from ._caller import Caller as Caller
from ._context import current_system as current_system
from ._context import get_system as get_system
from ._distribution import Distribution as Distribution
from ._distribution import Network as Network
from ._distribution import deliver_call as deliver_call
from ._distribution import deliver_state_request as deliver_state_request
from ._distribution import deliver_stop as deliver_stop
from ._distribution import find_actor as find_actor
from ._distribution import forget_caller as forget_caller
from ._distribution import mailbox_size as mailbox_size
from ._distribution import new_caller as new_caller
from ._errors import ActorError as ActorError
from ._errors import ActorExited as ActorExited
from ._errors import AlreadyStarted as AlreadyStarted
from ._errors import CallingSelf as CallingSelf
from ._errors import CallTimeout as CallTimeout
from ._errors import MailboxFull as MailboxFull
from ._errors import NoProcess as NoProcess
from ._errors import StartError as StartError
from ._errors import call_timed_out as call_timed_out
from ._errors import is_clean_exit as is_clean_exit
from ._log import get_logger as get_logger
from ._mailbox import Mailbox as Mailbox
from ._messages import CAST as CAST
from ._messages import INFO as INFO
from ._messages import SYSTEM as SYSTEM
from ._messages import Call as Call
from ._messages import Cast as Cast
from ._messages import Down as Down
from ._messages import Exit as Exit
from ._messages import GetState as GetState
from ._messages import Info as Info
from ._messages import Monitor as Monitor
from ._messages import StopRequest as StopRequest
from ._messages import SystemMessage as SystemMessage
from ._process import EVENT_BUDGET as EVENT_BUDGET
from ._process import Peer as Peer
from ._ref import ActorRef as ActorRef
from ._ref import LocalRef as LocalRef
from ._system import ActorSystem as ActorSystem
from ._system import NeverIgnores as NeverIgnores
from ._system import behaviour_of as behaviour_of
from ._trace import TraceEvent as TraceEvent
from ._trace import Tracer as Tracer
