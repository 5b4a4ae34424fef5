"""Liveness: connected nodes tick each other, and a silent one is declared down.

A connection can stay open while nothing flows (a partition that drops
packets, a peer frozen or gone without a FIN): TCP alone would not notice for
many minutes, and the memory and simulated networks never would. As in
Erlang's ``net_kernel`` (``net_ticktime``), every connected peer is checked
once per quarter of ``tick_time``: a peer nothing was sent to in the last
quarter gets a tick, and a peer nothing was heard from in three quarters in a
row is disconnected, so that everything across it fires ``"noconnection"``.
A healthy peer is never silent for more than half of ``tick_time`` (it ticks
when it has sent nothing for a quarter), so a silent one is down after
between ¾ and 1 ``tick_time`` of silence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from .._core import ActorSystem, TimerHandle, get_logger

log = get_logger("genstatem.net")

DEFAULT_TICK_TIME: Final = 15.0
"""Seconds a connected node may be silent before it is declared down (Erlang's default is 60)."""

_CHECKS_PER_TICK_TIME: Final = 4
_SILENT_CHECKS: Final = 3


def check_tick_time(tick_time: float | None) -> float | None:
    """``tick_time`` if it is ``None`` or a positive number of seconds.

    Raises:
        ValueError: zero, negative or not finite.
    """
    if tick_time is not None and not 0 < tick_time < float("inf"):
        raise ValueError(f"tick_time must be a positive number of seconds, or None, not {tick_time!r}")
    return tick_time


class Ticker:
    """Watches the connected peers of one node: ticks the quiet ones, disconnects the silent ones.

    Args:
        system: whose clock drives the checks (virtual time in the simulator).
        tick_time: seconds of silence after which a peer is down; ``None``
            turns liveness checks off.
        send_tick: sends a tick to a peer.
        disconnect: drops the connection to a peer (the transport then
            reports it down).
    """

    def __init__(
        self,
        system: ActorSystem,
        tick_time: float | None,
        *,
        send_tick: Callable[[str], None],
        disconnect: Callable[[str], None],
    ) -> None:
        self.tick_time = check_tick_time(tick_time)
        self._system = system
        self._send_tick = send_tick
        self._disconnect = disconnect
        self._silent: dict[str, int] = {}  # each connected peer: the checks in a row it was heard nothing from
        self._heard: set[str] = set()  # since the last check
        self._sent: set[str] = set()
        self._timer: TimerHandle | None = None
        self._stopped = False

    def heard(self, peer: str) -> None:
        """A frame arrived from ``peer``."""
        if peer in self._silent:
            self._heard.add(peer)

    def sent(self, peer: str) -> None:
        """A frame was handed to the transport for ``peer``."""
        if peer in self._silent:
            self._sent.add(peer)

    def up(self, peer: str) -> None:
        """A connection to ``peer`` came up: watch it."""
        if self.tick_time is None or self._stopped:
            return
        self._silent[peer] = 0
        if self._timer is None:
            self._timer = self._system.call_later(self.tick_time / _CHECKS_PER_TICK_TIME, self._check)

    def down(self, peer: str) -> None:
        """The connection to ``peer`` is gone: stop watching it."""
        self._silent.pop(peer, None)
        self._heard.discard(peer)
        self._sent.discard(peer)
        if not self._silent and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def stop(self) -> None:
        """Stop every check for good (the node is leaving the network)."""
        self._stopped = True
        self._silent.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        assert self.tick_time is not None
        self._timer = None
        heard, sent = self._heard, self._sent
        self._heard, self._sent = set(), set()
        ticked: set[str] = set()
        for peer in list(self._silent):
            if peer in heard:
                self._silent[peer] = 0
            else:
                self._silent[peer] += 1
                if self._silent[peer] >= _SILENT_CHECKS:
                    del self._silent[peer]
                    log.warning(
                        "node not responding; disconnecting",
                        node=self._system.node,
                        peer=peer,
                        tick_time=self.tick_time,
                    )
                    self._disconnect(peer)
                    continue
            if peer not in sent and peer in self._silent:
                self._send_tick(peer)
                ticked.add(peer)
        self._sent -= ticked  # a tick is not traffic: a quiet peer is ticked at every check
        if self._silent and self._timer is None:
            self._timer = self._system.call_later(self.tick_time / _CHECKS_PER_TICK_TIME, self._check)
