"""The dialling half of the TCP transport: connect with backoff, authenticate, count and log what failed."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

import anyio

from .._core import get_logger
from . import _handshake as handshake
from ._frames import FrameError
from ._handshake import Attempt, HandshakeError
from ._tcp_peers import Connection, Dialer, Peer

if TYPE_CHECKING:
    from ._handshake import Authenticated, Identity
    from ._tcp_options import TcpOptions
    from ._tcp_statistics import Counters
    from ._transport import PeerHandler, RefusalHandler

log = get_logger("genstatem.net")

_MAX_FAILURE_KINDS: Final = 1024
_LOGGED_COUNTS: Final = frozenset(10**power for power in range(12))  # the 1st, 10th, 100th... of a kind


class Dialing:
    """``TcpTransport``'s methods that dial peers and account for failed handshakes (in both directions)."""

    if TYPE_CHECKING:
        options: TcpOptions
        on_connect_failed: PeerHandler
        _state: str
        _me: Identity
        _peers: dict[str, Peer]
        _counters: Counters
        _on_refused: RefusalHandler | None
        _incoming_failures: dict[tuple[str, str], int]

        def _drop_queue(self, state: Peer) -> int: ...
        def _connection_up(self, authenticated: Authenticated, *, outgoing: bool) -> Connection: ...
        def _call_peer_handler(self, handler: PeerHandler, peer: str) -> None: ...
        async def _run_connection(self, conn: Connection, first_frames: list[bytes]) -> None: ...

    async def _dial(self, state: Peer, dialer: Dialer) -> None:
        """Connect to ``state``'s node, retrying with backoff while there is something to send."""
        dialer.scope = anyio.CancelScope()
        if dialer.cancelled:
            return
        try:
            with dialer.scope:
                while state.dialer is dialer and state.connection is None and state.queue:
                    wait = state.retry_at - anyio.current_time()
                    if wait > 0:  # the backoff of an earlier dialler still runs
                        await anyio.sleep(wait)
                        continue
                    address = self._resolve(state.name)
                    if address is None:
                        dropped = self._drop_queue(state)
                        log.warning(
                            "tcp peer has no address", node=self._me.node, peer=state.name, frames_dropped=dropped
                        )
                        return
                    attempt = Attempt("outgoing", _format(address), peer=state.name)
                    result = await self._dial_once(state, dialer, address, attempt)
                    if result is not None:
                        await self._run_connection(*result)
                        return
                    if state.connection is None:
                        self._call_peer_handler(self.on_connect_failed, state.name)
                    delay = state.backoff
                    state.backoff = min(delay * 2, self.options.reconnect_max_delay)
                    state.retry_at = anyio.current_time() + delay * random.uniform(0.5, 1.0)
                    if attempt.refusal is not None:
                        self._drop_queue(state)
                        self._report_refusal(state.name, attempt.refusal)
        finally:
            if state.dialer is dialer:
                state.dialer = None

    def _report_refusal(self, peer: str, reason: str) -> None:
        if self._on_refused is None:
            return
        try:
            self._on_refused(peer, reason)
        except Exception:
            log.exception("tcp refusal handler raised", node=self._me.node, peer=peer)

    async def _dial_once(
        self, state: Peer, dialer: Dialer, address: tuple[str, int], attempt: Attempt
    ) -> tuple[Connection, list[bytes]] | None:
        result = None
        try:
            with anyio.move_on_after(self.options.handshake_timeout):
                try:
                    attempt.stream = await anyio.connect_tcp(*address)
                except OSError as exc:
                    self._counters.connect_failures += 1
                    log.info(
                        "tcp connect failed",
                        node=self._me.node,
                        peer=state.name,
                        address=attempt.address,
                        reason=repr(exc),
                    )
                    return None
                result = await self._connect_handshake(state, dialer, address, attempt)
            if result is None:
                raise HandshakeError(handshake.TIMED_OUT)
        except Exception as exc:
            self._handshake_failed(attempt, exc)
        finally:
            if result is None and attempt.stream is not None:
                await anyio.aclose_forcefully(attempt.stream)
        return result

    async def _connect_handshake(
        self, state: Peer, dialer: Dialer, address: tuple[str, int], attempt: Attempt
    ) -> tuple[Connection, list[bytes]]:
        authenticated = await handshake.dial(
            attempt,
            self._me,
            hostname=address[0],
            tls=self.options.client_ssl_context,
            max_frame_size=self.options.max_frame_size,
        )
        if state.dialer is not dialer or state.connection is not None or self._state != "running":
            raise HandshakeError(handshake.SUPERSEDED, benign=True)
        state.dialer = None
        return self._connection_up(authenticated, outgoing=True), authenticated.first_frames

    def _resolve(self, name: str) -> tuple[str, int] | None:
        addresses = self.options.peers
        try:
            if isinstance(addresses, Mapping):
                return addresses.get(name)
            return addresses(name)
        except LookupError:
            return None
        except Exception:
            log.exception("tcp peer address lookup raised", node=self._me.node, peer=name)
            return None

    def _handshake_failed(self, attempt: Attempt, exc: Exception) -> None:
        """Count and log a failed handshake, once per cause; mark a dial the peer refused."""
        tls_error = handshake.tls_failure(exc)
        if isinstance(exc, HandshakeError):
            reason, benign = exc.reason, exc.benign
        elif tls_error is not None:
            reason, benign = f"TLS failed: {tls_error}", False
        elif isinstance(exc, FrameError):
            reason, benign = f"bad frame: {exc.reason}", False
        else:
            reason, benign = repr(exc), False
        if not benign and handshake.is_closed(exc) and attempt.direction == "incoming" and attempt.peer is not None:
            # A peer dialling us at the same time as we dial it drops its own
            # attempt when ours wins; that is the race resolving, not a failure.
            state = self._peers.get(attempt.peer)
            benign = state is not None and (state.dialer is not None or state.connection is not None)
        fields = {
            "node": self._me.node,
            "peer": attempt.peer,
            "address": attempt.address,
            "direction": attempt.direction,
            "reason": reason,
        }
        if benign:
            log.debug("tcp handshake abandoned", **fields)
            return
        self._counters.handshake_failures += 1
        if attempt.direction == "outgoing":
            if handshake.is_refusal(exc):
                attempt.refusal = reason
            state = self._peers.get(attempt.peer or "")
            first = state is None or state.failure != reason
            if state is not None:
                state.failure = reason
        else:
            first = self._count_incoming_failure(attempt.address.rpartition(":")[0], reason) in _LOGGED_COUNTS
        (log.warning if first else log.debug)("tcp handshake failed", **fields)

    def _count_incoming_failure(self, host: str, reason: str) -> int:
        """How many times a handshake from ``host`` failed for ``reason``, this one included."""
        failures = self._incoming_failures
        if len(failures) >= _MAX_FAILURE_KINDS and (host, reason) not in failures:
            failures.clear()
        count = failures[(host, reason)] = failures.get((host, reason), 0) + 1
        return count


def _format(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"
