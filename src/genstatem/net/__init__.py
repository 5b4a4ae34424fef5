"""Talking to other nodes: networks, remote refs, the wire codec and framing.

``ActorSystem(node="a", network=MemoryNetwork())`` joins a network; actors
elsewhere are reached with ``system.remote(node, name)``. ``Codec`` turns
messages into msgpack bytes and back, for plain data and the classes
registered with it (``register``); ``encode_frame`` and ``FrameDecoder``
carry those bytes over a stream as length-prefixed, versioned frames.
"""

from ._backlog import NodeStatistics as NodeStatistics
from ._codec import DEFAULT_MAX_DEPTH as DEFAULT_MAX_DEPTH
from ._codec import DEFAULT_MAX_SIZE as DEFAULT_MAX_SIZE
from ._codec import MAX_TYPE_ID as MAX_TYPE_ID
from ._codec import Codec as Codec
from ._codec import DecodeError as DecodeError
from ._codec import EncodeError as EncodeError
from ._frames import DEFAULT_MAX_FRAME_SIZE as DEFAULT_MAX_FRAME_SIZE
from ._frames import FRAME_HEADER_SIZE as FRAME_HEADER_SIZE
from ._frames import FRAME_MAGIC as FRAME_MAGIC
from ._frames import FRAME_VERSION as FRAME_VERSION
from ._frames import MAX_FRAME_SIZE_LIMIT as MAX_FRAME_SIZE_LIMIT
from ._frames import FrameDecoder as FrameDecoder
from ._frames import FrameError as FrameError
from ._frames import FrameStatistics as FrameStatistics
from ._frames import encode_frame as encode_frame
from ._memory import MemoryNetwork as MemoryNetwork
from ._memory import MemoryTransport as MemoryTransport
from ._messages import RemoteError as RemoteError
from ._node import MAX_PEER_ENTRIES as MAX_PEER_ENTRIES
from ._node import Node as Node
from ._registry import FIRST_USER_TYPE_ID as FIRST_USER_TYPE_ID
from ._registry import TypeRegistry as TypeRegistry
from ._registry import default_registry as default_registry
from ._registry import register as register
from ._remote import NodeUnreachable as NodeUnreachable
from ._remote import RemoteRef as RemoteRef
from ._tcp import TcpTransport as TcpTransport
from ._tcp_network import TcpNetwork as TcpNetwork
from ._tcp_options import PeerAddresses as PeerAddresses
from ._tcp_options import TcpOptions as TcpOptions
from ._tcp_statistics import TcpStatistics as TcpStatistics
from ._ticks import DEFAULT_TICK_TIME as DEFAULT_TICK_TIME
from ._transport import Backlog as Backlog
from ._transport import FrameHandler as FrameHandler
from ._transport import PeerHandler as PeerHandler
from ._transport import ReceiveBackpressure as ReceiveBackpressure
from ._transport import RefusalHandler as RefusalHandler
from ._transport import ReportsRefusals as ReportsRefusals
from ._transport import Transport as Transport
from ._transport import ignore_frame as ignore_frame
from ._transport import ignore_peer as ignore_peer

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_TICK_TIME",
    "FIRST_USER_TYPE_ID",
    "FRAME_HEADER_SIZE",
    "FRAME_MAGIC",
    "FRAME_VERSION",
    "MAX_FRAME_SIZE_LIMIT",
    "MAX_TYPE_ID",
    "Backlog",
    "Codec",
    "DecodeError",
    "EncodeError",
    "FrameDecoder",
    "FrameError",
    "FrameHandler",
    "FrameStatistics",
    "MemoryNetwork",
    "MemoryTransport",
    "MAX_PEER_ENTRIES",
    "Node",
    "NodeStatistics",
    "NodeUnreachable",
    "PeerAddresses",
    "PeerHandler",
    "ReceiveBackpressure",
    "RefusalHandler",
    "ReportsRefusals",
    "RemoteError",
    "RemoteRef",
    "TcpNetwork",
    "TcpOptions",
    "TcpStatistics",
    "TcpTransport",
    "Transport",
    "ignore_frame",
    "ignore_peer",
    "TypeRegistry",
    "default_registry",
    "encode_frame",
    "register",
]
