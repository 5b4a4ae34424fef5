"""Property tests: random byte streams thrown at a TCP node's handshake never get through."""

from __future__ import annotations

from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genstatem.net import TcpTransport, encode_frame

SECRET = b"the real secret"

handshake_like = st.builds(
    lambda kind, fields: bytes([kind]) + b"".join(len(f).to_bytes(2, "big") + f for f in fields),
    st.integers(0, 7),
    st.lists(st.binary(max_size=40), max_size=5),
)
chunk = st.one_of(
    st.binary(min_size=1, max_size=64),  # raw garbage
    st.binary(max_size=200).map(encode_frame),  # well-framed nonsense
    handshake_like.map(encode_frame),  # frames shaped like handshake messages
)


def ignore(peer: str) -> None:
    """A peer up/down handler that does nothing."""


async def attack_then_connect(stream_chunks: list[bytes]) -> tuple[list[Any], list[bytes]]:
    """Send ``stream_chunks`` to a listener, then connect a real peer; return what the listener got."""
    delivered: list[Any] = []
    arrived = anyio.Event()

    def on_frame(peer: str, frame: bytes) -> None:
        delivered.append((peer, frame))
        arrived.set()

    listener = TcpTransport(secret=SECRET, handshake_timeout=0.5)
    await listener.start("server", on_frame, ignore, ignore)
    try:
        try:
            async with await anyio.connect_tcp("127.0.0.1", listener.port) as attacker:
                for data in stream_chunks:
                    await attacker.send(data)
                with anyio.move_on_after(0.2):
                    while await attacker.receive():
                        pass
        except (anyio.BrokenResourceError, anyio.EndOfStream, OSError):
            pass  # the listener hung up on us: fine
        honest = TcpTransport(secret=SECRET, peers={"server": ("127.0.0.1", listener.port)})
        await honest.start("client", lambda peer, frame: None, ignore, ignore)
        try:
            honest.send("server", b"hello")
            with anyio.fail_after(5):
                await arrived.wait()
        finally:
            await honest.stop()
    finally:
        await listener.stop()
    return delivered, stream_chunks


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(chunk, min_size=1, max_size=8))
def test_random_streams_never_pass_the_handshake_and_the_node_keeps_serving(stream_chunks: list[bytes]) -> None:
    """Whatever an unauthenticated peer sends, nothing it sent is delivered, and honest peers still get in."""
    delivered, _ = anyio.run(attack_then_connect, stream_chunks)
    assert delivered == [("client", b"hello")]
