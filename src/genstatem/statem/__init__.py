"""gen_statem for Python: ``GenStateMachine``, its events, results and actions.

Also ``StateMachineDriver``, the engine run with no actor for unit tests of
handlers, which ``genstatem.testing`` re-exports.
"""

from ._driver import StateMachineDriver as StateMachineDriver
from ._driver import Step as Step
from ._errors import BadReturn as BadReturn
from ._events import Enter as Enter
from ._events import EventTimeout as EventTimeout
from ._events import GenericTimeout as GenericTimeout
from ._events import Internal as Internal
from ._events import StateTimeout as StateTimeout
from ._machine import GenStateMachine as GenStateMachine
from ._results import Ignore as Ignore
from ._results import Init as Init
from ._results import KeepState as KeepState
from ._results import NextEvent as NextEvent
from ._results import NextState as NextState
from ._results import Postpone as Postpone
from ._results import RepeatState as RepeatState
from ._results import Reply as Reply
from ._results import Stop as Stop

__all__ = [
    "BadReturn",
    "Enter",
    "EventTimeout",
    "GenStateMachine",
    "GenericTimeout",
    "Ignore",
    "Init",
    "Internal",
    "KeepState",
    "NextEvent",
    "NextState",
    "Postpone",
    "RepeatState",
    "Reply",
    "StateMachineDriver",
    "Step",
    "Stop",
]
