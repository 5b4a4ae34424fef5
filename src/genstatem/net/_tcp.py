"""The TCP transport: nodes on different hosts exchange frames over authenticated connections.

Each node listens on one TCP port and keeps at most one connection to each
other node, dialled on the first ``send`` to it. Before a frame crosses a new
connection both ends prove, with HMAC-SHA256 over fresh nonces, that they hold
the cluster's shared secret, and the dialling side names the node it means to
reach; optional TLS encrypts the stream underneath. Frames to a node wait in a
bounded buffer while the connection is made, and are dropped with it if it is
lost: the node above learns of the loss from ``on_peer_down``, as Erlang's
distribution does, and every frame either arrives in order or not at all.

The handshake, version 1, is four frames (each a small payload starting
``b"GSH"``, the version and the message kind, then length-prefixed fields)::

    dialler  -> listener  HELLO      my name, the name I expect, my nonce, my incarnation
    listener -> dialler   CHALLENGE  my name, my nonce, my incarnation      (or REFUSED)
    dialler  -> listener  PROOF      HMAC(secret, "client", names, nonces, incarnations)
    listener -> dialler   ACCEPT     HMAC(secret, "server", names, nonces, incarnations)  (or REFUSED)

The incarnation is random per started transport, so a node that restarted
under the same name is told apart from a second connection of the same node.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import hmac
import random
import secrets
import ssl
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final, NoReturn

import anyio
import attrs
from anyio.abc import ByteStream, SocketAttribute, SocketListener, SocketStream, TaskGroup
from anyio.streams.tls import TLSStream

from .._core import get_logger
from ._frames import DEFAULT_MAX_FRAME_SIZE, FrameDecoder, FrameError, encode_frame
from ._transport import FrameHandler, PeerHandler

log = get_logger("genstatem.net")

PeerAddresses = Mapping[str, tuple[str, int]] | Callable[[str], tuple[str, int] | None]
"""Where each node listens: a mapping, or a function returning ``None`` for an unknown node."""

HANDSHAKE_VERSION: Final = 1
"""The version of the connection handshake this module speaks."""

_HANDSHAKE_MAGIC: Final = b"GSH"
_HANDSHAKE_MAX_FRAME: Final = 1024  # what an unauthenticated peer can make us buffer
_NONCE_SIZE: Final = 32
_INCARNATION_SIZE: Final = 16
_MAX_NAME_BYTES: Final = 255
_READ_CHUNK: Final = 65536
_WRITE_BATCH: Final = 65536
_ACCEPT_RETRY_DELAY: Final = 0.1

_CLIENT_ROLE: Final = b"client"
_SERVER_ROLE: Final = b"server"

# Refusals that are part of normal operation, not a failure: two nodes dialled
# each other at once, or a peer dialled again before seeing the old connection go.
_SIMULTANEOUS: Final = "simultaneous connect; the other connection wins"
_ALREADY_CONNECTED: Final = "already connected"
_SUPERSEDED: Final = "superseded by another connection"
_CLOSED_IN_HANDSHAKE: Final = "connection closed during the handshake"
_BENIGN: Final = frozenset({_SIMULTANEOUS, _ALREADY_CONNECTED, _SUPERSEDED})


class _Kind(enum.IntEnum):
    HELLO = 1
    CHALLENGE = 2
    PROOF = 3
    ACCEPT = 4
    REFUSED = 5


_ARITY: Final = {_Kind.HELLO: 4, _Kind.CHALLENGE: 3, _Kind.PROOF: 1, _Kind.ACCEPT: 1, _Kind.REFUSED: 1}


@attrs.frozen
class TcpStatistics:
    """A snapshot of a ``TcpTransport``'s counters.

    Attributes:
        frames_sent: frames handed to a connection's socket (as with any
            TCP write, the last ones before a connection fails may not arrive).
        frames_received: frames delivered to ``on_frame``.
        frames_dropped: frames lost: refused by a full send buffer (``send``
            returned ``False``), queued for a connection that was lost or for
            a node with no known address, or sent after ``stop``.
        connections_established: connections that completed the handshake.
        connections_lost: established connections that went down.
        handshake_failures: connections refused or abandoned during the
            handshake: wrong secret, wrong node, bad or timed-out handshake.
        connect_failures: outgoing TCP connects that failed (peer not listening).
        connections_refused: incoming connections closed unread because too
            many handshakes were already in progress.
        connected_peers: nodes with a working connection now.
        buffered_frames: frames waiting in send buffers now.
    """

    frames_sent: int
    frames_received: int
    frames_dropped: int
    connections_established: int
    connections_lost: int
    handshake_failures: int
    connect_failures: int
    connections_refused: int
    connected_peers: int
    buffered_frames: int


class _HandshakeError(Exception):
    """The handshake cannot go on; ``benign`` when that is normal (a lost race)."""

    def __init__(self, reason: str, *, benign: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.benign = benign


class _SerializedSends(ByteStream):
    """A socket stream whose sends take turns.

    ``TLSStream`` may send from its reading side too (TLS has records to
    answer); the lock keeps that from colliding with the writer task.
    """

    def __init__(self, stream: SocketStream) -> None:
        self._stream = stream
        self._lock = anyio.Lock()

    async def send(self, item: bytes) -> None:
        async with self._lock:
            await self._stream.send(item)

    async def receive(self, max_bytes: int = _READ_CHUNK) -> bytes:
        return await self._stream.receive(max_bytes)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self._stream.extra_attributes


class _Dialer:
    """One node's attempts to connect to a peer; cancelled when another connection wins."""

    __slots__ = ("cancelled", "scope")

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()


class _Peer:
    """What a transport keeps per remote node: its send buffer and its connection."""

    __slots__ = ("backoff", "connection", "dialer", "name", "queue", "queued_bytes", "queued_frames", "room")

    def __init__(self, name: str, backoff: float) -> None:
        self.name = name
        # Encoded frames not yet handed to a connection's socket.
        self.queue: deque[bytes] = deque()
        self.queued_frames = 0
        self.queued_bytes = 0
        self.connection: _Connection | None = None
        self.dialer: _Dialer | None = None
        self.room: anyio.Event | None = None
        self.backoff = backoff


class _Connection:
    """An authenticated connection to a peer, from ``on_peer_up`` to ``on_peer_down``."""

    __slots__ = ("closed", "decoder", "greeting", "incarnation", "outgoing", "peer", "scope", "stream", "wakeup")

    def __init__(
        self, peer: _Peer, stream: ByteStream, decoder: FrameDecoder, *, outgoing: bool, incarnation: bytes
    ) -> None:
        self.peer = peer
        self.stream = stream
        self.decoder = decoder
        self.outgoing = outgoing
        self.incarnation = incarnation
        self.scope = anyio.CancelScope()
        self.wakeup = anyio.Event()
        self.closed = False
        # Written before any frame: the listener's ACCEPT, sent by the writer so
        # that the handshake's deadline never cuts a connection already up.
        self.greeting = b""


@attrs.define
class _Attempt:
    """A connection in its handshake, for the log."""

    direction: str
    address: str
    stream: ByteStream | None = None
    peer: str | None = None


class TcpTransport:
    """A node's endpoint on a TCP network of nodes sharing a secret.

    Implements ``Transport``. Its listener and connections run in a task
    group of their own, from ``start`` to ``stop``.

    Args:
        host: the address to listen on.
        port: the port to listen on; ``0`` picks a free one (see ``port``).
        secret: the key every node of the network shares; never sent, only
            used to prove knowledge of it.
        peers: where the other nodes listen, as a mapping (read at each
            connect, so it may be updated) or a function of the node name
            returning ``None`` for an unknown node.
        server_ssl_context: with ``client_ssl_context``, run every connection
            over TLS; this one for connections accepted.
        client_ssl_context: the context for connections dialled; the peer's
            certificate is checked against the host from ``peers``.
        max_frame_size: the largest frame, in bytes, sent or accepted; give
            every node the same.
        send_buffer_frames: frames a peer's send buffer holds before ``send``
            refuses more.
        send_buffer_bytes: bytes a peer's send buffer holds before ``send``
            refuses more (a frame is accepted while the buffer is below it).
        handshake_timeout: seconds a new connection has to connect, finish
            TLS and the handshake.
        max_handshakes: incoming connections allowed in their handshake at
            once; more are closed unread.
        reconnect_initial_delay: seconds before retrying a failed connect;
            doubled at each failure, with jitter.
        reconnect_max_delay: the cap on that delay.

    Raises:
        ValueError: an empty secret, only one TLS context, or a limit out of range.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        secret: bytes,
        peers: PeerAddresses | None = None,
        server_ssl_context: ssl.SSLContext | None = None,
        client_ssl_context: ssl.SSLContext | None = None,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        send_buffer_frames: int = 1024,
        send_buffer_bytes: int = 8 << 20,
        handshake_timeout: float = 5.0,
        max_handshakes: int = 64,
        reconnect_initial_delay: float = 0.1,
        reconnect_max_delay: float = 5.0,
    ) -> None:
        if not secret:
            raise ValueError("secret must not be empty")
        if (server_ssl_context is None) != (client_ssl_context is None):
            raise ValueError("give both server_ssl_context and client_ssl_context, or neither")
        if send_buffer_frames < 1 or send_buffer_bytes < 1 or max_handshakes < 1:
            raise ValueError("send buffer limits and max_handshakes must be at least 1")
        if handshake_timeout <= 0 or not 0 < reconnect_initial_delay <= reconnect_max_delay:
            raise ValueError("timeouts must be positive, and reconnect_initial_delay <= reconnect_max_delay")
        FrameDecoder(max_frame_size=max_frame_size)  # validates the size
        self._host = host
        self._requested_port = port
        self._secret = secret
        self._addresses: PeerAddresses = {} if peers is None else peers
        self._server_ssl = server_ssl_context
        self._client_ssl = client_ssl_context
        self._max_frame_size = max_frame_size
        self._send_buffer_frames = send_buffer_frames
        self._send_buffer_bytes = send_buffer_bytes
        self._handshake_timeout = handshake_timeout
        self._max_handshakes = max_handshakes
        self._reconnect_initial = reconnect_initial_delay
        self._reconnect_max = reconnect_max_delay

        self._state = "new"
        self._node = ""
        self._incarnation = b""
        self._on_frame: FrameHandler = _ignore_frame
        self._on_peer_up: PeerHandler = _ignore_peer
        self._on_peer_down: PeerHandler = _ignore_peer
        self.on_connect_failed: PeerHandler = _ignore_peer
        """Called with the peer's name when an attempt to connect to it fails (it is retried)."""
        self._task_group: TaskGroup | None = None
        self._stop_requested: anyio.Event | None = None
        self._finished: anyio.Event | None = None
        self._listeners: list[SocketListener] = []
        self._address: tuple[str, int] | None = None
        self._peers: dict[str, _Peer] = {}
        self._handshaking = 0

        self._frames_sent = 0
        self._frames_received = 0
        self._frames_dropped = 0
        self._connections_established = 0
        self._connections_lost = 0
        self._handshake_failures = 0
        self._connect_failures = 0
        self._connections_refused = 0

    def __repr__(self) -> str:
        where = "" if self._address is None else f" at {self._address[0]}:{self._address[1]}"
        return f"<TcpTransport {self._node or '(not started)'}{where} {self._state}>"

    @property
    def node(self) -> str:
        """This node's name, as given to ``start``."""
        return self._node

    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` this transport listens on.

        Raises:
            RuntimeError: not started yet.
        """
        if self._address is None:
            raise RuntimeError("the transport is not started")
        return self._address

    @property
    def port(self) -> int:
        """The port this transport listens on (the one picked, when created with ``port=0``)."""
        return self.address[1]

    def statistics(self) -> TcpStatistics:
        """Return the transport's counters and current buffer state."""
        return TcpStatistics(
            frames_sent=self._frames_sent,
            frames_received=self._frames_received,
            frames_dropped=self._frames_dropped,
            connections_established=self._connections_established,
            connections_lost=self._connections_lost,
            handshake_failures=self._handshake_failures,
            connect_failures=self._connect_failures,
            connections_refused=self._connections_refused,
            connected_peers=sum(peer.connection is not None for peer in self._peers.values()),
            buffered_frames=sum(peer.queued_frames for peer in self._peers.values()),
        )

    # -- the Transport protocol ----------------------------------------------------------

    async def start(
        self,
        node: str,
        on_frame: FrameHandler,
        on_peer_up: PeerHandler,
        on_peer_down: PeerHandler,
    ) -> None:
        """Listen as ``node``; from now on arriving frames go to ``on_frame``.

        The callbacks run in the transport's tasks and must not block.
        ``on_peer_up`` and ``on_peer_down`` fire once per connection, in
        pairs; ``stop`` fires ``on_peer_down`` for each connection still up.

        Raises:
            RuntimeError: the transport was started before.
            ValueError: ``node`` is not a valid node name.
            OSError: the port cannot be listened on.
        """
        if self._state != "new":
            raise RuntimeError(f"the transport was already started ({self._state})")
        _check_name(node)
        listener = await anyio.create_tcp_listener(local_host=self._host, local_port=self._requested_port)
        self._listeners = [sub for sub in listener.listeners if isinstance(sub, SocketListener)]
        local = self._listeners[0].extra(SocketAttribute.local_address)
        assert isinstance(local, tuple)
        self._address = (str(local[0]), int(local[1]))
        self._node = node
        self._incarnation = secrets.token_bytes(_INCARNATION_SIZE)
        self._on_frame, self._on_peer_up, self._on_peer_down = on_frame, on_peer_up, on_peer_down
        self._stop_requested = stop_requested = anyio.Event()
        self._finished = anyio.Event()
        running = anyio.Event()
        _spawn_system_task(lambda: self._main(running, stop_requested))
        with anyio.CancelScope(shield=True):  # it is set at the task's first step
            await running.wait()
        if self._state != "running":
            raise RuntimeError("the transport failed to start; see the log")
        log.info("tcp transport listening", node=node, address=_format(self._address))

    async def _main(self, running: anyio.Event, stop_requested: anyio.Event) -> None:
        """Own the task group of the listener and the connections, from ``start`` to ``stop``.

        It runs in a task of its own, so that transports can be started and
        stopped in any order, from any task.
        """
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                self._state = "running"
                for listener in self._listeners:
                    task_group.start_soon(self._accept_loop, listener)
                running.set()
                await stop_requested.wait()
                task_group.cancel_scope.cancel()
        except Exception:  # a bug: say so, and never take the event loop down
            log.exception("tcp transport failed", node=self._node)
        finally:
            self._state = "stopped"
            running.set()
            with anyio.CancelScope(shield=True):
                for listener in self._listeners:
                    await listener.aclose()
            assert self._finished is not None
            self._finished.set()
            log.info("tcp transport stopped", node=self._node)

    def send(self, peer: str, frame: bytes) -> bool:
        """Queue ``frame`` for ``peer`` without blocking; connect first if need be.

        Returns:
            ``True`` when queued; ``False`` when dropped because the send
            buffer to ``peer`` is full (``drain`` waits for room) or the
            transport has stopped.

        Raises:
            RuntimeError: the transport is not started.
            ValueError: ``peer`` is this node or not a valid node name.
            FrameError: ``frame`` is larger than ``max_frame_size``.
        """
        if self._state == "new":
            raise RuntimeError("the transport is not started")
        if peer == self._node:
            raise ValueError(f"a node does not send to itself over the network ({peer!r})")
        data = encode_frame(frame, max_frame_size=self._max_frame_size)
        if self._state != "running":
            self._frames_dropped += 1
            return False
        state = self._peer(peer)
        if self._full(state):
            self._frames_dropped += 1
            return False
        state.queue.append(data)
        state.queued_frames += 1
        state.queued_bytes += len(data)
        if state.connection is not None:
            state.connection.wakeup.set()
        elif state.dialer is None:
            self._start_dialer(state)
        return True

    async def drain(self, peer: str) -> None:
        """Wait until the send buffer to ``peer`` has room again (backpressure).

        Returns at once when it has room; the buffer also empties when the
        connection is lost or the transport stops.
        """
        state = self._peers.get(peer)
        while state is not None and self._full(state):
            if state.room is None:
                state.room = anyio.Event()
            await state.room.wait()

    def disconnect(self, peer: str) -> None:
        """Drop the connection to ``peer`` and every frame queued for it.

        ``on_peer_down`` fires on both sides if a connection was up; a later
        ``send`` connects again.
        """
        state = self._peers.get(peer)
        if state is None:
            return
        if state.dialer is not None:
            state.dialer.cancel()
            state.dialer = None
        if state.connection is not None:
            self._lose(state.connection, "disconnected locally")
        self._drop_queue(state)

    async def stop(self) -> None:
        """Close every connection (firing ``on_peer_down``) and stop listening; idempotent."""
        if self._state == "new":
            self._state = "stopped"
            return
        if self._state == "running":
            self._state = "stopping"
            for state in list(self._peers.values()):
                if state.dialer is not None:
                    state.dialer.cancel()
                    state.dialer = None
                if state.connection is not None:
                    self._lose(state.connection, "transport stopped")
                self._drop_queue(state)
            assert self._stop_requested is not None
            self._stop_requested.set()
        if self._finished is not None:
            await self._finished.wait()

    # -- send buffers --------------------------------------------------------------------

    def _peer(self, name: str) -> _Peer:
        state = self._peers.get(name)
        if state is None:
            _check_name(name)
            state = self._peers[name] = _Peer(name, self._reconnect_initial)
        return state

    def _full(self, state: _Peer) -> bool:
        return state.queued_frames >= self._send_buffer_frames or state.queued_bytes >= self._send_buffer_bytes

    def _notify_room(self, state: _Peer) -> None:
        if state.room is not None and not self._full(state):
            state.room.set()
            state.room = None

    def _drop_queue(self, state: _Peer) -> int:
        dropped = state.queued_frames
        self._frames_dropped += dropped
        state.queue.clear()
        state.queued_frames = state.queued_bytes = 0
        self._notify_room(state)
        return dropped

    # -- connections up and down ---------------------------------------------------------

    def _connection_up(self, conn: _Connection) -> None:
        state = conn.peer
        state.connection = conn
        state.backoff = self._reconnect_initial
        self._connections_established += 1
        log.info(
            "tcp connection up",
            node=self._node,
            peer=state.name,
            direction="outgoing" if conn.outgoing else "incoming",
        )
        if state.queue:
            conn.wakeup.set()
        self._call_peer_handler(self._on_peer_up, state.name)

    def _lose(self, conn: _Connection, reason: str, *, warn: bool = False) -> None:
        """Take ``conn`` down once: drop its unsent frames and tell the node."""
        if conn.closed:
            return
        conn.closed = True
        conn.scope.cancel()
        state = conn.peer
        if state.connection is not conn:
            return
        state.connection = None
        dropped = self._drop_queue(state)
        self._connections_lost += 1
        (log.warning if warn else log.info)(
            "tcp connection lost", node=self._node, peer=state.name, reason=reason, frames_dropped=dropped
        )
        self._call_peer_handler(self._on_peer_down, state.name)

    def _call_peer_handler(self, handler: PeerHandler, peer: str) -> None:
        try:
            handler(peer)
        except Exception:
            log.exception("tcp peer handler raised", node=self._node, peer=peer)

    def _admit(self, name: str, incarnation: bytes) -> str | None:
        """Decide whether an authenticated incoming connection may become the one; why not if not.

        Of two nodes dialling each other at once, the connection dialled by the
        smaller name wins, so both ends decide alike. A second dial from the
        peer that its own connection came from, or from a restarted peer,
        means the peer has let the old one go: the new one replaces it.
        """
        state = self._peer(name)
        conn = state.connection
        if conn is not None:
            if conn.outgoing and conn.incarnation == incarnation:
                return _ALREADY_CONNECTED
            self._lose(conn, "replaced by a new connection from the peer")
        elif state.dialer is not None:
            if self._node < name:
                return _SIMULTANEOUS
            state.dialer.cancel()
            state.dialer = None
        return None

    async def _run_connection(self, conn: _Connection, first_frames: list[bytes]) -> None:
        """Carry frames both ways until the connection is lost."""
        try:
            with conn.scope:
                async with anyio.create_task_group() as task_group:
                    task_group.start_soon(self._write_loop, conn)
                    self._deliver(conn, first_frames)
                    reason, warn = await self._read_loop(conn)
                    self._lose(conn, reason, warn=warn)
        except Exception as exc:  # a bug: keep the node running, and say so
            log.exception("tcp connection failed", node=self._node, peer=conn.peer.name)
            self._lose(conn, f"internal error: {exc!r}", warn=True)
        finally:
            self._lose(conn, "connection closed")
            await anyio.aclose_forcefully(conn.stream)

    async def _read_loop(self, conn: _Connection) -> tuple[str, bool]:
        while not conn.closed:
            try:
                chunk = await conn.stream.receive(_READ_CHUNK)
            except anyio.EndOfStream:
                try:
                    conn.decoder.eof()
                except FrameError as exc:
                    return f"bad frame: {exc.reason}", True
                return "closed by the peer", False
            except Exception as exc:
                return f"connection broken: {exc!r}", False
            try:
                frames = conn.decoder.feed(chunk)
            except FrameError as exc:
                return f"bad frame: {exc.reason}", True
            self._deliver(conn, frames)
        return "connection closed", False

    def _deliver(self, conn: _Connection, frames: list[bytes]) -> None:
        for frame in frames:
            if conn.closed:
                return
            self._frames_received += 1
            try:
                self._on_frame(conn.peer.name, frame)
            except Exception as exc:
                log.exception("tcp frame handler raised", node=self._node, peer=conn.peer.name)
                self._lose(conn, f"frame handler raised {exc!r}", warn=True)

    async def _write_loop(self, conn: _Connection) -> None:
        state = conn.peer
        try:
            if conn.greeting:
                await conn.stream.send(conn.greeting)
            while not conn.closed:
                if not state.queue:
                    await conn.wakeup.wait()
                    conn.wakeup = anyio.Event()
                    continue
                batch: list[bytes] = []
                size = 0
                while state.queue and size < _WRITE_BATCH:
                    data = state.queue.popleft()
                    batch.append(data)
                    size += len(data)
                # The batch leaves the buffer as it is handed to the socket: it
                # counts as sent, as anything written to TCP does, even if the
                # connection fails before the peer reads it.
                state.queued_frames -= len(batch)
                state.queued_bytes -= size
                self._frames_sent += len(batch)
                self._notify_room(state)
                await conn.stream.send(b"".join(batch))
        except Exception as exc:
            self._lose(conn, f"connection broken: {exc!r}")

    # -- accepting -----------------------------------------------------------------------

    async def _accept_loop(self, listener: SocketListener) -> None:
        while True:
            try:
                stream = await listener.accept()
            except anyio.ClosedResourceError:
                return
            except OSError as exc:  # e.g. out of file descriptors: let some close
                log.warning("tcp accept failed", node=self._node, reason=repr(exc))
                await anyio.sleep(_ACCEPT_RETRY_DELAY)
                continue
            if self._handshaking >= self._max_handshakes:
                self._connections_refused += 1
                log.warning(
                    "tcp connection refused",
                    node=self._node,
                    address=_remote(stream),
                    reason="too many handshakes in progress",
                )
                await anyio.aclose_forcefully(stream)
                continue
            self._handshaking += 1
            assert self._task_group is not None
            self._task_group.start_soon(self._serve, stream)

    async def _serve(self, stream: SocketStream) -> None:
        attempt = _Attempt("incoming", _remote(stream), stream)
        conn: _Connection | None = None
        try:
            with anyio.move_on_after(self._handshake_timeout):
                conn = await self._accept_handshake(attempt)
            if conn is None:
                raise _HandshakeError("handshake timed out")
        except Exception as exc:
            self._handshake_failed(attempt, exc)
        finally:
            self._handshaking -= 1
            if conn is None:
                await anyio.aclose_forcefully(attempt.stream or stream)
        if conn is not None:
            await self._run_connection(conn, [])

    async def _accept_handshake(self, attempt: _Attempt) -> _Connection:
        assert attempt.stream is not None
        stream = attempt.stream
        if self._server_ssl is not None:
            assert isinstance(stream, SocketStream)
            stream = attempt.stream = await TLSStream.wrap(
                _SerializedSends(stream), server_side=True, ssl_context=self._server_ssl, standard_compatible=False
            )
        decoder = FrameDecoder(max_frame_size=_HANDSHAKE_MAX_FRAME)

        async def refuse(reason: str, *, benign: bool = False) -> NoReturn:
            with contextlib.suppress(Exception):  # the reason is logged here either way
                await stream.send(_pack(_Kind.REFUSED, reason.encode()))
            raise _HandshakeError(reason, benign=benign)

        try:
            _, (client_raw, expected_raw, client_nonce, client_incarnation) = _unpack(
                await _receive_only(stream, decoder), _Kind.HELLO
            )
            client, expected = _decode_name(client_raw), _decode_name(expected_raw)
            if len(client_nonce) != _NONCE_SIZE or len(client_incarnation) != _INCARNATION_SIZE:
                raise _HandshakeError("malformed handshake: bad nonce or incarnation")
        except _HandshakeError as exc:
            await refuse(exc.reason)
        attempt.peer = client
        if expected != self._node:
            await refuse(f"wrong node: this is {self._node!r}, not {expected!r}")
        if client == self._node:
            await refuse(f"the peer claims this node's own name {client!r}")
        server_nonce = secrets.token_bytes(_NONCE_SIZE)
        await stream.send(_pack(_Kind.CHALLENGE, self._node.encode(), server_nonce, self._incarnation))
        transcript = (client, self._node, client_nonce, server_nonce, client_incarnation, self._incarnation)
        try:
            _, (proof,) = _unpack(await _receive_only(stream, decoder), _Kind.PROOF)
        except _HandshakeError as exc:
            await refuse(exc.reason)
        if not hmac.compare_digest(proof, _mac(self._secret, _CLIENT_ROLE, *transcript)):
            await refuse("bad secret: the peer's proof does not match")
        if self._state != "running":
            await refuse("transport stopping", benign=True)
        refusal = self._admit(client, client_incarnation)
        if refusal is not None:
            await refuse(refusal, benign=True)
        conn = _Connection(
            self._peer(client),
            stream,
            FrameDecoder(max_frame_size=self._max_frame_size),
            outgoing=False,
            incarnation=client_incarnation,
        )
        conn.greeting = _pack(_Kind.ACCEPT, _mac(self._secret, _SERVER_ROLE, *transcript))
        self._connection_up(conn)
        return conn

    # -- dialling ------------------------------------------------------------------------

    def _start_dialer(self, state: _Peer) -> None:
        assert self._task_group is not None
        dialer = state.dialer = _Dialer()
        self._task_group.start_soon(self._dial, state, dialer)

    async def _dial(self, state: _Peer, dialer: _Dialer) -> None:
        """Connect to ``state``'s node, retrying with backoff while there is something to send."""
        dialer.scope = anyio.CancelScope()
        if dialer.cancelled:
            return
        try:
            with dialer.scope:
                while state.dialer is dialer and state.connection is None and state.queue:
                    address = self._resolve(state.name)
                    if address is None:
                        dropped = self._drop_queue(state)
                        log.warning("tcp peer has no address", node=self._node, peer=state.name, frames_dropped=dropped)
                        return
                    attempt = _Attempt("outgoing", _format(address), peer=state.name)
                    result = await self._dial_once(state, dialer, address, attempt)
                    if result is not None:
                        await self._run_connection(*result)
                        return
                    if state.connection is None:
                        self._call_peer_handler(self.on_connect_failed, state.name)
                    delay = state.backoff
                    state.backoff = min(delay * 2, self._reconnect_max)
                    await anyio.sleep(delay * random.uniform(0.5, 1.0))
        finally:
            if state.dialer is dialer:
                state.dialer = None

    async def _dial_once(
        self, state: _Peer, dialer: _Dialer, address: tuple[str, int], attempt: _Attempt
    ) -> tuple[_Connection, list[bytes]] | None:
        result = None
        try:
            with anyio.move_on_after(self._handshake_timeout):
                try:
                    attempt.stream = await anyio.connect_tcp(*address)
                except OSError as exc:
                    self._connect_failures += 1
                    log.info(
                        "tcp connect failed",
                        node=self._node,
                        peer=state.name,
                        address=attempt.address,
                        reason=repr(exc),
                    )
                    return None
                result = await self._connect_handshake(state, dialer, address, attempt)
            if result is None:
                raise _HandshakeError("handshake timed out")
        except Exception as exc:
            self._handshake_failed(attempt, exc)
        finally:
            if result is None and attempt.stream is not None:
                await anyio.aclose_forcefully(attempt.stream)
        return result

    async def _connect_handshake(
        self, state: _Peer, dialer: _Dialer, address: tuple[str, int], attempt: _Attempt
    ) -> tuple[_Connection, list[bytes]]:
        stream = attempt.stream
        assert isinstance(stream, SocketStream)
        if self._client_ssl is not None:
            stream = attempt.stream = await TLSStream.wrap(
                _SerializedSends(stream),
                server_side=False,
                hostname=address[0],
                ssl_context=self._client_ssl,
                standard_compatible=False,
            )
        # Frames may follow the ACCEPT at once, so this decoder goes on to read the connection.
        decoder = FrameDecoder(max_frame_size=max(self._max_frame_size, _HANDSHAKE_MAX_FRAME))
        client_nonce = secrets.token_bytes(_NONCE_SIZE)
        await stream.send(_pack(_Kind.HELLO, self._node.encode(), state.name.encode(), client_nonce, self._incarnation))
        kind, fields = _unpack(await _receive_only(stream, decoder), _Kind.CHALLENGE)
        _raise_if_refused(kind, fields)
        server_raw, server_nonce, server_incarnation = fields
        if _decode_name(server_raw) != state.name:
            raise _HandshakeError(f"wrong node: reached {_decode_name(server_raw)!r}, not {state.name!r}")
        if len(server_nonce) != _NONCE_SIZE or len(server_incarnation) != _INCARNATION_SIZE:
            raise _HandshakeError("malformed handshake: bad nonce or incarnation")
        transcript = (self._node, state.name, client_nonce, server_nonce, self._incarnation, server_incarnation)
        await stream.send(_pack(_Kind.PROOF, _mac(self._secret, _CLIENT_ROLE, *transcript)))
        payload, first_frames = await _receive_frames(stream, decoder)
        kind, fields = _unpack(payload, _Kind.ACCEPT)
        _raise_if_refused(kind, fields)
        if not hmac.compare_digest(fields[0], _mac(self._secret, _SERVER_ROLE, *transcript)):
            raise _HandshakeError("bad secret: the peer's proof does not match")
        if state.dialer is not dialer or state.connection is not None or self._state != "running":
            raise _HandshakeError(_SUPERSEDED, benign=True)
        state.dialer = None
        conn = _Connection(state, stream, decoder, outgoing=True, incarnation=server_incarnation)
        self._connection_up(conn)
        return conn, first_frames

    def _resolve(self, name: str) -> tuple[str, int] | None:
        addresses = self._addresses
        try:
            if isinstance(addresses, Mapping):
                return addresses.get(name)
            return addresses(name)
        except LookupError:
            return None
        except Exception:
            log.exception("tcp peer address lookup raised", node=self._node, peer=name)
            return None

    def _handshake_failed(self, attempt: _Attempt, exc: Exception) -> None:
        if isinstance(exc, _HandshakeError):
            reason, benign = exc.reason, exc.benign
        elif isinstance(exc, FrameError):
            reason, benign = f"bad frame: {exc.reason}", False
        else:
            reason, benign = repr(exc), False
        if not benign and _is_closed(exc) and attempt.direction == "incoming" and attempt.peer is not None:
            # A peer dialling us at the same time as we dial it drops its own
            # attempt when ours wins; that is the race resolving, not a failure.
            state = self._peers.get(attempt.peer)
            benign = state is not None and (state.dialer is not None or state.connection is not None)
        fields = {
            "node": self._node,
            "peer": attempt.peer,
            "address": attempt.address,
            "direction": attempt.direction,
            "reason": reason,
        }
        if benign:
            log.debug("tcp handshake abandoned", **fields)
        else:
            self._handshake_failures += 1
            log.warning("tcp handshake failed", **fields)


# -- handshake messages --------------------------------------------------------------------


def _pack(kind: _Kind, *fields: bytes) -> bytes:
    parts = [_HANDSHAKE_MAGIC, bytes((HANDSHAKE_VERSION, kind))]
    for field in fields:
        parts += (len(field).to_bytes(2, "big"), field)
    return encode_frame(b"".join(parts), max_frame_size=_HANDSHAKE_MAX_FRAME)


def _unpack(payload: bytes, expected: _Kind) -> tuple[_Kind, list[bytes]]:
    """Parse a handshake message that must be ``expected`` (or a refusal)."""
    if payload[: len(_HANDSHAKE_MAGIC)] != _HANDSHAKE_MAGIC:
        raise _HandshakeError("malformed handshake: not a handshake message")
    position = len(_HANDSHAKE_MAGIC)
    if len(payload) < position + 2:
        raise _HandshakeError("malformed handshake: truncated header")
    version, kind_code = payload[position], payload[position + 1]
    if version != HANDSHAKE_VERSION:
        raise _HandshakeError(f"unsupported handshake version {version} (this node speaks {HANDSHAKE_VERSION})")
    if kind_code not in (expected, _Kind.REFUSED):
        raise _HandshakeError(f"malformed handshake: expected {expected.name}, got message kind {kind_code}")
    kind = _Kind(kind_code)
    position += 2
    fields: list[bytes] = []
    while position < len(payload):
        size = int.from_bytes(payload[position : position + 2], "big")
        field = payload[position + 2 : position + 2 + size]
        if position + 2 > len(payload) or len(field) != size:
            raise _HandshakeError("malformed handshake: truncated field")
        fields.append(field)
        position += 2 + size
    if len(fields) != _ARITY[kind]:
        raise _HandshakeError(f"malformed handshake: {kind.name} with {len(fields)} fields")
    return kind, fields


def _raise_if_refused(kind: _Kind, fields: list[bytes]) -> None:
    if kind is _Kind.REFUSED:
        reason = fields[0].decode(errors="replace")
        raise _HandshakeError(f"refused by the peer: {reason}", benign=reason in _BENIGN)


def _mac(
    secret: bytes,
    role: bytes,
    client: str,
    server: str,
    client_nonce: bytes,
    server_nonce: bytes,
    client_incarnation: bytes,
    server_incarnation: bytes,
) -> bytes:
    """The proof a side sends: bound to its role, both names, both nonces and both incarnations."""
    parts = (
        b"genstatem tcp handshake",
        bytes((HANDSHAKE_VERSION,)),
        role,
        client.encode(),
        server.encode(),
        client_nonce,
        server_nonce,
        client_incarnation,
        server_incarnation,
    )
    message = b"".join(len(part).to_bytes(2, "big") + part for part in parts)
    return hmac.new(secret, message, hashlib.sha256).digest()


async def _receive_frames(stream: ByteStream, decoder: FrameDecoder) -> tuple[bytes, list[bytes]]:
    """The next frame, and any that arrived with it."""
    while True:
        try:
            chunk = await stream.receive(_READ_CHUNK)
        except anyio.EndOfStream:
            raise _HandshakeError(_CLOSED_IN_HANDSHAKE) from None
        frames = decoder.feed(chunk)
        if frames:
            return frames[0], frames[1:]


async def _receive_only(stream: ByteStream, decoder: FrameDecoder) -> bytes:
    """The next frame, which the peer must not have followed with anything."""
    frame, more = await _receive_frames(stream, decoder)
    if more or decoder.statistics().buffered_bytes:
        raise _HandshakeError("unexpected data during the handshake")
    return frame


# -- small helpers -------------------------------------------------------------------------


def _is_closed(exc: Exception) -> bool:
    """Whether ``exc`` says only that the peer went away."""
    if isinstance(exc, _HandshakeError):
        return exc.reason == _CLOSED_IN_HANDSHAKE
    return isinstance(exc, anyio.BrokenResourceError | ConnectionError)


def _spawn_system_task(function: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``function`` in a new task that belongs to no task group of the caller's.

    A transport outlives the call that starts it, and transports stop in
    any order, which a task group entered by ``start`` could not allow.
    """
    try:
        on_asyncio = asyncio.current_task() is not None
    except RuntimeError:
        on_asyncio = False
    if on_asyncio:
        task = asyncio.get_running_loop().create_task(function())
        _system_tasks.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(_system_tasks.discard)
    else:
        import trio

        trio.lowlevel.spawn_system_task(function)


_system_tasks: set[asyncio.Task[None]] = set()


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name or len(name.encode()) > _MAX_NAME_BYTES:
        raise ValueError(f"a node name is a non-empty str of at most {_MAX_NAME_BYTES} UTF-8 bytes, not {name!r}")


def _decode_name(raw: bytes) -> str:
    try:
        name = raw.decode()
    except UnicodeDecodeError:
        raise _HandshakeError("malformed handshake: a node name is not UTF-8") from None
    if not name:
        raise _HandshakeError("malformed handshake: empty node name")
    return name


def _format(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def _remote(stream: SocketStream) -> str:
    try:
        address = stream.extra(SocketAttribute.remote_address)
    except Exception:
        return "?"
    return _format((str(address[0]), int(address[1]))) if isinstance(address, tuple) else str(address)


def _ignore_frame(peer: str, frame: bytes) -> None:
    """The frame handler before ``start``."""


def _ignore_peer(peer: str) -> None:
    """The peer handler before ``start``."""
