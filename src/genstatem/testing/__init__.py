"""Tools for testing actors and state machines: virtual time, a handler driver, diagrams."""

from ._driver import StateMachineDriver as StateMachineDriver
from ._driver import Step as Step
from ._mermaid import sequence_diagram as sequence_diagram
from ._mermaid import state_diagram as state_diagram
from ._records import MessageRecord as MessageRecord
from ._simulator import Faults as Faults
from ._simulator import SimRecord as SimRecord
from ._simulator import Simulation as Simulation
from ._virtual_time import VirtualTimeEventLoop as VirtualTimeEventLoop

__all__ = [
    "Faults",
    "MessageRecord",
    "SimRecord",
    "Simulation",
    "StateMachineDriver",
    "Step",
    "VirtualTimeEventLoop",
    "sequence_diagram",
    "state_diagram",
]
