"""The TCP transport: nodes on different hosts exchange frames over authenticated connections.

Each node listens on one TCP port and keeps at most one connection to each
other node, dialled on the first ``send`` to it. Before a frame crosses a new
connection both ends prove, with HMAC-SHA256 over fresh nonces, that they hold
the cluster's shared secret, and the dialling side names the node it means to
reach (``_handshake.py``); optional TLS encrypts the stream after its first
message, the HELLO. Frames to a node wait in a bounded buffer while the
connection is made, and are dropped with it if it is lost: the node above
learns of the loss from ``on_peer_down``, as Erlang's distribution does, and
every frame either arrives in order or not at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, Final

import anyio
from anyio.abc import ByteStream, SocketAttribute, SocketListener, SocketStream, TaskGroup

from .._core import get_logger
from . import _handshake as handshake
from ._frames import FrameError, encode_frame
from ._handshake import Attempt, Authenticated, HandshakeError, Identity, SeenHellos
from ._tasks import spawn_system_task
from ._tcp_admission import Admission, Slot
from ._tcp_dial import _LOGGED_COUNTS, Dialing, _format
from ._tcp_keepalive import enable_keepalive
from ._tcp_options import TcpOptions
from ._tcp_peers import Connection, Dialer, Peer
from ._tcp_statistics import Counters, TcpStatistics
from ._transport import Backlog, FrameHandler, PeerHandler, RefusalHandler, ignore_frame, ignore_peer

log = get_logger("genstatem.net")

_MAX_NAME_BYTES: Final = 255
_WRITE_BATCH: Final = 65536
_ACCEPT_RETRY_DELAY: Final = 0.1
_FIRST_SWEEP: Final = 64  # peer records kept before idle ones are swept
# While a peer's backlog is over the limit, how often to look whether the actors have taken some.
_BACKLOG_POLL_FIRST: Final = 0.002
_BACKLOG_POLL_MAX: Final = 0.05


class TcpTransport(Dialing):
    """A node's endpoint on a TCP network of nodes sharing a secret.

    Implements ``Transport``. Its listener and connections run in a task
    group of their own, from ``start`` to ``stop``.

    Args:
        host: the address to listen on.
        port: the port to listen on; ``0`` picks a free one (see ``port``).
        options: the secret, where the peers listen, TLS, limits and backoff.
        **keywords: or ``TcpOptions``'s fields as keyword arguments
            (``secret=`` is required then).

    Raises:
        ValueError: an empty secret, only one TLS context, or a limit out of range.
        TypeError: both ``options`` and keywords, or an unknown keyword.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, options: TcpOptions | None = None, **keywords: Any
    ) -> None:
        if options is None:
            options = TcpOptions(**keywords)
        elif keywords:
            raise TypeError(f"give options or keyword options, not both ({', '.join(keywords)})")
        self.options = options
        """The transport's options."""
        self._host = host
        self._requested_port = port
        self._state = "new"
        self._me = Identity("", options.secret, b"")
        self._on_frame: FrameHandler = ignore_frame
        self._on_peer_up: PeerHandler = ignore_peer
        self._on_peer_down: PeerHandler = ignore_peer
        self.on_connect_failed: PeerHandler = ignore_peer
        """Called with the peer's name when an attempt to connect to it fails (it is retried)."""

        self._task_group: TaskGroup | None = None
        self._stop_requested: anyio.Event | None = None
        self._finished: anyio.Event | None = None
        self._listeners: list[SocketListener] = []
        self._address: tuple[str, int] | None = None
        self._peers: dict[str, Peer] = {}
        self._admission = Admission(options.max_handshakes, options.max_handshakes_per_address, self._evicted)
        self._seen_hellos = SeenHellos()
        self._counters = Counters()
        self._backlog: Backlog | None = None
        self._on_refused: RefusalHandler | None = None
        # Incoming handshake failures per (host, reason), to log the 1st, 10th, 100th... of each.
        self._incoming_failures: dict[tuple[str, str], int] = {}
        self._sweep_at = _FIRST_SWEEP

    def __repr__(self) -> str:
        where = "" if self._address is None else f" at {self._address[0]}:{self._address[1]}"
        return f"<TcpTransport {self._me.node or '(not started)'}{where} {self._state}>"

    @property
    def node(self) -> str:
        """This node's name, as given to ``start``."""
        return self._me.node

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
        return self._counters.snapshot(
            connected_peers=sum(peer.connection is not None for peer in self._peers.values()),
            buffered_frames=sum(peer.queued_frames for peer in self._peers.values()),
            peer_records=len(self._peers),
        )

    def watch_backlog(self, backlog: Backlog) -> None:
        """Stop reading a peer's connection while ``backlog(peer)`` is over ``receive_buffer_bytes``.

        A node calls this before ``start`` (``ReceiveBackpressure``); without
        it every frame is delivered as soon as it is read.
        """
        self._backlog = backlog

    def watch_refusals(self, handler: RefusalHandler) -> None:
        """Call ``handler(peer, reason)`` when a dial to ``peer`` is refused (``ReportsRefusals``).

        Refused means the peer answered but will not have this node: a
        wrong secret or node name, another handshake version, TLS failing.
        What was queued for the peer is dropped then, and the dialler backs
        off exponentially; a later ``send`` dials again once the backoff ends.
        """
        self._on_refused = handler

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
        self._me = Identity(node, self.options.secret, secrets.token_bytes(handshake.INCARNATION_SIZE))
        self._on_frame, self._on_peer_up, self._on_peer_down = on_frame, on_peer_up, on_peer_down
        self._stop_requested = stop_requested = anyio.Event()
        self._finished = anyio.Event()
        running = anyio.Event()
        spawn_system_task(lambda: self._main(running, stop_requested))
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
            log.exception("tcp transport failed", node=self._me.node)
        finally:
            self._state = "stopped"
            running.set()
            with anyio.CancelScope(shield=True):
                for listener in self._listeners:
                    await listener.aclose()
            assert self._finished is not None
            self._finished.set()
            log.info("tcp transport stopped", node=self._me.node)

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
        if peer == self._me.node:
            raise ValueError(f"a node does not send to itself over the network ({peer!r})")
        data = encode_frame(frame, max_frame_size=self.options.max_frame_size)
        if self._state != "running":
            self._counters.frames_dropped += 1
            return False
        state = self._peer(peer)
        if self._full(state):
            self._counters.frames_dropped += 1
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
        if state is not None:
            self._close_peer(state, "disconnected locally")

    async def stop(self) -> None:
        """Close every connection (firing ``on_peer_down``) and stop listening; idempotent."""
        if self._state == "new":
            self._state = "stopped"
            return
        if self._state == "running":
            self._state = "stopping"
            for state in list(self._peers.values()):
                self._close_peer(state, "transport stopped")
            assert self._stop_requested is not None
            self._stop_requested.set()
        if self._finished is not None:
            await self._finished.wait()

    def _close_peer(self, state: Peer, reason: str) -> None:
        """Stop dialling ``state``'s node, take its connection down, and drop what was queued for it."""
        if state.dialer is not None:
            state.dialer.cancel()
            state.dialer = None
        if state.connection is not None:
            self._lose(state.connection, reason)
        self._drop_queue(state)

    # -- send buffers --------------------------------------------------------------------

    def _peer(self, name: str) -> Peer:
        state = self._peers.get(name)
        if state is None:
            _check_name(name)
            if len(self._peers) >= self._sweep_at:
                self._sweep_idle_peers()
            state = self._peers[name] = Peer(name, self.options.reconnect_initial_delay)
        return state

    def _sweep_idle_peers(self) -> None:
        """Forget the nodes there is nothing to remember about, so the table shrinks as peers go."""
        now = anyio.current_time()
        for name in [name for name, state in self._peers.items() if state.idle(now)]:
            del self._peers[name]
        self._sweep_at = max(_FIRST_SWEEP, 2 * len(self._peers))

    def _full(self, state: Peer) -> bool:
        return (
            state.queued_frames >= self.options.send_buffer_frames
            or state.queued_bytes >= self.options.send_buffer_bytes
        )

    def _notify_room(self, state: Peer) -> None:
        if state.room is not None and not self._full(state):
            state.room.set()
            state.room = None

    def _start_dialer(self, state: Peer) -> None:
        assert self._task_group is not None
        dialer = state.dialer = Dialer()
        self._task_group.start_soon(self._dial, state, dialer)

    def _drop_queue(self, state: Peer) -> int:
        dropped = state.queued_frames
        self._counters.frames_dropped += dropped
        state.queue.clear()
        state.queued_frames = state.queued_bytes = 0
        self._notify_room(state)
        return dropped

    # -- connections up and down ---------------------------------------------------------

    def _connection_up(self, authenticated: Authenticated, *, outgoing: bool) -> Connection:
        state = self._peer(authenticated.peer)
        enable_keepalive(authenticated.stream)
        conn = Connection(
            state, authenticated.stream, authenticated.decoder, outgoing=outgoing, incarnation=authenticated.incarnation
        )
        conn.host = _remote_host(authenticated.stream)
        conn.greeting = authenticated.greeting
        state.connection = conn
        state.backoff = self.options.reconnect_initial_delay
        state.retry_at = 0.0
        state.failure = None
        self._counters.connections_established += 1
        log.info(
            "tcp connection up",
            node=self._me.node,
            peer=state.name,
            direction="outgoing" if conn.outgoing else "incoming",
        )
        if state.queue:
            conn.wakeup.set()
        self._call_peer_handler(self._on_peer_up, state.name)
        return conn

    def _lose(self, conn: Connection, reason: str, *, warn: bool = False) -> None:
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
        self._counters.connections_lost += 1
        (log.warning if warn else log.info)(
            "tcp connection lost", node=self._me.node, peer=state.name, reason=reason, frames_dropped=dropped
        )
        self._call_peer_handler(self._on_peer_down, state.name)

    def _call_peer_handler(self, handler: PeerHandler, peer: str) -> None:
        try:
            handler(peer)
        except Exception:
            log.exception("tcp peer handler raised", node=self._me.node, peer=peer)

    def _admit(self, name: str, incarnation: bytes) -> str | None:
        """Decide whether an authenticated incoming connection may become the one; why not if not.

        Of two nodes dialling each other at once, the connection dialled by the
        smaller name wins, so both ends decide alike. A second dial from the
        peer that its own connection came from, or from a restarted peer,
        means the peer has let the old one go: the new one replaces it.
        """
        if self._state != "running":
            return "transport stopping"
        state = self._peer(name)
        conn = state.connection
        if conn is not None:
            if conn.outgoing and conn.incarnation == incarnation:
                return handshake.ALREADY_CONNECTED
            self._lose(conn, "replaced by a new connection from the peer")
        elif state.dialer is not None:
            if self._me.node < name:
                return handshake.SIMULTANEOUS
            state.dialer.cancel()
            state.dialer = None
        return None

    async def _run_connection(self, conn: Connection, first_frames: list[bytes]) -> None:
        """Carry frames both ways until the connection is lost."""
        try:
            with conn.scope:
                async with anyio.create_task_group() as task_group:
                    task_group.start_soon(self._write_loop, conn)
                    self._deliver(conn, first_frames)
                    reason, warn = await self._read_loop(conn)
                    self._lose(conn, reason, warn=warn)
        except Exception as exc:  # a bug: keep the node running, and say so
            log.exception("tcp connection failed", node=self._me.node, peer=conn.peer.name)
            self._lose(conn, f"internal error: {exc!r}", warn=True)
        finally:
            self._lose(conn, "connection closed")
            await anyio.aclose_forcefully(conn.stream)

    async def _read_loop(self, conn: Connection) -> tuple[str, bool]:
        while not conn.closed:
            try:
                chunk = await conn.stream.receive(handshake.READ_CHUNK)
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
            if frames:
                await self._hold_back(conn, sum(map(len, frames)))
        return "connection closed", False

    async def _hold_back(self, conn: Connection, delivered: int) -> None:
        """Read no more from ``conn`` while what its peer sent still fills too much of the mailboxes here.

        The socket is left unread, so the kernel's buffers fill, TCP's flow
        control stops the peer's writes, its send buffer fills, and its
        ``drain`` waits: a fast sender is slowed to the pace of the actors
        it sends to. Asking the node is a walk over the actors the peer
        reached, so it is done only once the count kept here passes the limit.
        """
        backlog = self._backlog
        limit = self.options.receive_buffer_bytes
        conn.backlog += delivered
        if backlog is None or conn.backlog <= limit:
            return
        conn.backlog = backlog(conn.peer.name)
        if conn.backlog <= limit:
            return
        self._counters.receive_pauses += 1
        delay = _BACKLOG_POLL_FIRST
        while conn.backlog > limit and not conn.closed:
            await anyio.sleep(delay)
            delay = min(delay * 2, _BACKLOG_POLL_MAX)
            conn.backlog = backlog(conn.peer.name)

    def _deliver(self, conn: Connection, frames: list[bytes]) -> None:
        for frame in frames:
            if conn.closed:
                return
            self._counters.frames_received += 1
            try:
                self._on_frame(conn.peer.name, frame)
            except Exception as exc:
                log.exception("tcp frame handler raised", node=self._me.node, peer=conn.peer.name)
                self._lose(conn, f"frame handler raised {exc!r}", warn=True)

    async def _write_loop(self, conn: Connection) -> None:
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
                self._counters.frames_sent += len(batch)
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
                log.warning("tcp accept failed", node=self._me.node, reason=repr(exc))
                await anyio.sleep(_ACCEPT_RETRY_DELAY)
                continue
            host = _remote_host(stream)
            deadline = anyio.current_time() + self.options.handshake_timeout
            slot = Slot(host, _remote(stream), known=self._is_known(host), deadline=deadline)
            refusal = self._admission.admit(slot)
            if refusal is not None:
                self._counters.connections_refused += 1
                # An attacker can make this happen thousands of times a second: say it once a while.
                (log.warning if self._counters.connections_refused in _LOGGED_COUNTS else log.debug)(
                    "tcp connection refused",
                    node=self._me.node,
                    address=slot.address,
                    reason=refusal,
                    refused_so_far=self._counters.connections_refused,
                )
                await anyio.aclose_forcefully(stream)
                continue
            assert self._task_group is not None
            self._task_group.start_soon(self._serve, stream, slot)

    def _is_known(self, host: str) -> bool:
        """Whether ``host`` is where a node of the network lives: one listed in ``peers``, or one connected now."""
        if any(peer.connection is not None and peer.connection.host == host for peer in self._peers.values()):
            return True
        addresses = self.options.peers
        return isinstance(addresses, Mapping) and any(address[0] == host for address in addresses.values())

    def _evicted(self, slot: Slot) -> None:
        """Count and log, once a while, a handshake closed to make room for a newer one."""
        self._counters.handshakes_evicted += 1
        (log.warning if self._counters.handshakes_evicted in _LOGGED_COUNTS else log.debug)(
            "tcp handshake evicted",
            node=self._me.node,
            address=slot.address,
            reason="the oldest handshake from hosts not known makes room for a newer one",
            evicted_so_far=self._counters.handshakes_evicted,
        )

    async def _serve(self, stream: SocketStream, slot: Slot) -> None:
        """Run an incoming connection's handshake within its slot, then carry its frames."""
        attempt = Attempt("incoming", slot.address, stream)
        conn: Connection | None = None
        try:
            with slot.scope:  # its deadline is the handshake timeout; cancelled when evicted
                conn = await self._accept_handshake(attempt, slot)
            if conn is None and not slot.evicted:
                raise HandshakeError(handshake.TIMED_OUT)
        except Exception as exc:
            self._handshake_failed(attempt, exc)
        finally:
            self._admission.release(slot)
            if conn is None:
                await anyio.aclose_forcefully(attempt.stream or stream)
        if conn is not None:
            await self._run_connection(conn, [])

    async def _accept_handshake(self, attempt: Attempt, slot: Slot) -> Connection:
        authenticated = await handshake.accept(
            attempt,
            self._me,
            tls=self.options.server_ssl_context,
            max_frame_size=self.options.max_frame_size,
            admit=self._admit,
            seen=self._seen_hellos,
            on_hello=lambda: self._admission.heard_hello(slot),
        )
        return self._connection_up(authenticated, outgoing=False)


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name or len(name.encode()) > _MAX_NAME_BYTES:
        raise ValueError(f"a node name is a non-empty str of at most {_MAX_NAME_BYTES} UTF-8 bytes, not {name!r}")


def _remote_host(stream: ByteStream) -> str:
    """The peer's IP address, as a string; ``"?"`` if the stream cannot tell."""
    try:
        address = stream.extra(SocketAttribute.remote_address)
    except Exception:
        return "?"
    return str(address[0]) if isinstance(address, tuple) else str(address)


def _remote(stream: SocketStream) -> str:
    try:
        address = stream.extra(SocketAttribute.remote_address)
    except Exception:
        return "?"
    return _format((str(address[0]), int(address[1]))) if isinstance(address, tuple) else str(address)
