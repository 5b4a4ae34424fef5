"""TCP keepalive on every connection: the operating system's own check that a peer is there.

The node's ticks (``_ticks.py``) find a silent peer within ``tick_time``;
keepalive is the backstop when ticks are turned off, and keeps idle
connections open through NATs and firewalls that forget quiet flows. A dead
peer is found after about ``_IDLE + _INTERVAL * _COUNT`` seconds of silence.
"""

from __future__ import annotations

import socket
from typing import Final

from anyio import TypedAttributeProvider
from anyio.abc import SocketAttribute

from .._core import get_logger

log = get_logger("genstatem.net")

_IDLE: Final = 30
_INTERVAL: Final = 10
_COUNT: Final = 3


def enable_keepalive(stream: TypedAttributeProvider) -> None:
    """Turn on keepalive for the socket under ``stream`` (TLS or not); where it can, set its timing too."""
    sock = stream.extra(SocketAttribute.raw_socket, None)
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # TCP_KEEPIDLE on Linux, TCP_KEEPALIVE on macOS; absent elsewhere, where the system's defaults stand
        idle = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)
        for option, value in ((idle, _IDLE), (getattr(socket, "TCP_KEEPINTVL", None), _INTERVAL)):
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
        count = getattr(socket, "TCP_KEEPCNT", None)
        if count is not None:
            sock.setsockopt(socket.IPPROTO_TCP, count, _COUNT)
    except OSError as exc:  # keepalive is a backstop: a socket that refuses it still carries frames
        log.debug("tcp keepalive not set", reason=repr(exc))
