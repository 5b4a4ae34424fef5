"""TLS under a TCP connection: anyio's ``TLSStream`` over a socket whose sends take turns."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import Any

import anyio
from anyio.abc import ByteStream
from anyio.streams.tls import TLSStream


async def wrap(
    stream: ByteStream, context: ssl.SSLContext, *, server_side: bool, hostname: str | None = None
) -> TLSStream:
    """Run the TLS handshake over ``stream``; a client checks the peer's certificate against ``hostname``."""
    return await TLSStream.wrap(
        _SerializedSends(stream),
        server_side=server_side,
        hostname=hostname,
        ssl_context=context,
        standard_compatible=False,
    )


class StreamOver(ByteStream):
    """A byte stream that passes everything to the one under it: subclass it to change one thing."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream

    async def send(self, item: bytes) -> None:
        await self._stream.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self._stream.receive(max_bytes)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self._stream.extra_attributes


class _SerializedSends(StreamOver):
    """A socket stream whose sends take turns.

    ``TLSStream`` may send from its reading side too (TLS has records to
    answer); the lock keeps that from colliding with the writer task.
    """

    def __init__(self, stream: ByteStream) -> None:
        super().__init__(stream)
        self._lock = anyio.Lock()

    async def send(self, item: bytes) -> None:
        async with self._lock:
            await self._stream.send(item)
