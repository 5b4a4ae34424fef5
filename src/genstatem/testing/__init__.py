"""Tools for testing actors and protocols: virtual time, the simulator, a handler driver, diagrams, linearizability."""

from ..statem import StateMachineDriver as StateMachineDriver
from ..statem import Step as Step
from ._disk import DiskStatistics as DiskStatistics
from ._disk import SimulatedDisk as SimulatedDisk
from ._history import PENDING as PENDING
from ._history import HistoryRecorder as HistoryRecorder
from ._history import Invocation as Invocation
from ._history import Operation as Operation
from ._linearizability import CheckResult as CheckResult
from ._linearizability import KVModel as KVModel
from ._linearizability import Model as Model
from ._linearizability import check as check
from ._mermaid import sequence_diagram as sequence_diagram
from ._mermaid import state_diagram as state_diagram
from ._nemesis import Nemesis as Nemesis
from ._nemesis_run import NemesisReport as NemesisReport
from ._nemesis_run import run_nemesis as run_nemesis
from ._raft_checks import InvariantViolation as InvariantViolation
from ._raft_checks import RaftInvariants as RaftInvariants
from ._raft_cluster import RaftCluster as RaftCluster
from ._records import MessageRecord as MessageRecord
from ._simulator import Faults as Faults
from ._simulator import SimRecord as SimRecord
from ._simulator import Simulation as Simulation
from ._virtual_time import VirtualTimeEventLoop as VirtualTimeEventLoop
from ._workload import KVWorkload as KVWorkload

__all__ = [
    "PENDING",
    "CheckResult",
    "DiskStatistics",
    "Faults",
    "HistoryRecorder",
    "InvariantViolation",
    "Invocation",
    "KVModel",
    "KVWorkload",
    "MessageRecord",
    "Model",
    "Nemesis",
    "NemesisReport",
    "Operation",
    "RaftCluster",
    "RaftInvariants",
    "SimRecord",
    "SimulatedDisk",
    "Simulation",
    "StateMachineDriver",
    "Step",
    "VirtualTimeEventLoop",
    "check",
    "run_nemesis",
    "sequence_diagram",
    "state_diagram",
]
