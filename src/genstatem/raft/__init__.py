"""Raft, written as a GenStateMachine, with your own replicated state machine.

Start a ``RaftNode`` on each node of a network, then ``propose`` and
``read`` through a ``RaftClient``; plug your own deterministic state machine
in through ``apply``/``query``/``snapshot``/``restore``.
"""

from ..net import default_registry as _registry
from ._client import CommandFailed as CommandFailed
from ._client import CommandTooLarge as CommandTooLarge
from ._client import NoQuorum as NoQuorum
from ._client import RaftClient as RaftClient
from ._client import RaftError as RaftError
from ._client import RequestRejected as RequestRejected
from ._config import RaftConfig as RaftConfig
from ._config import RaftSpec as RaftSpec
from ._file_storage import FileStorage as FileStorage
from ._file_storage import StorageError as StorageError
from ._log import Entry as Entry
from ._memory_storage import MemoryStorage as MemoryStorage
from ._node import RaftNode as RaftNode
from ._rpc import GetStatus as GetStatus
from ._rpc import RaftStatus as RaftStatus
from ._state_machine import KVMachine as KVMachine
from ._state_machine import ListMachine as ListMachine
from ._state_machine import StateMachine as StateMachine
from ._storage import LogStore as LogStore
from ._storage import Snapshot as Snapshot
from ._storage import SnapshotStore as SnapshotStore
from ._storage import Storage as Storage
from ._storage import StorageStatistics as StorageStatistics
from ._storage import TermStore as TermStore
from ._wire import register_raft_messages as _register_raft_messages

_register_raft_messages(_registry)

__all__ = [
    "CommandFailed",
    "CommandTooLarge",
    "Entry",
    "FileStorage",
    "GetStatus",
    "KVMachine",
    "ListMachine",
    "LogStore",
    "MemoryStorage",
    "NoQuorum",
    "RaftClient",
    "RaftConfig",
    "RaftError",
    "RaftNode",
    "RaftSpec",
    "RaftStatus",
    "RequestRejected",
    "Snapshot",
    "SnapshotStore",
    "StateMachine",
    "Storage",
    "StorageError",
    "StorageStatistics",
    "TermStore",
]
