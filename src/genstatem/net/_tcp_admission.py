"""Which incoming connections may be in their handshake at once, and which one gives way to a newer one.

Hosts where nodes of the network live (known hosts) have ``max_handshakes``
slots of their own and are refused past them: they are trusted not to flood.
Every other host may hold ``max_handshakes_per_address`` slots, and all of
them together share two pools of ``max_handshakes``: one for connections
that have not yet sent a valid HELLO, one for those that have and wait for
their PROOF. A pool that is full never refuses a newcomer: the connection
that has waited longest in it is closed to make room. A correct peer moves
through each pool within a round trip, so it is the newest there, not the
oldest, and only ``max_handshakes`` newer arrivals in that pool during its
round trip can close it. A HELLO is valid only with the secret's MAC, fresh
and not seen before (``_handshake.py``), so the second pool holds only
holders of the secret: nothing a flood without it sends, however fast,
reaches that pool.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio


class Slot:
    """One incoming connection in its handshake; its scope is cancelled when it is evicted."""

    __slots__ = ("address", "evicted", "heard_hello", "host", "known", "released", "scope")

    def __init__(self, host: str, address: str, *, known: bool, deadline: float) -> None:
        self.host = host
        self.address = address
        self.known = known
        self.scope = anyio.CancelScope(deadline=deadline)
        self.heard_hello = False
        self.evicted = False
        self.released = False


class Admission:
    """The handshake slots of one transport's listener.

    Args:
        max_handshakes: slots for known hosts, and the size of each of the
            two pools the other hosts share.
        max_per_address: slots any one host that is not known may hold.
        on_evict: called with each slot evicted (its scope already cancelled).
    """

    def __init__(self, max_handshakes: int, max_per_address: int, on_evict: Callable[[Slot], None]) -> None:
        self._max = max_handshakes
        self._max_per_address = max_per_address
        self._on_evict = on_evict
        self._known = 0
        # Insertion-ordered, so the first is the one that has waited longest.
        self._before_hello: dict[Slot, None] = {}
        self._after_hello: dict[Slot, None] = {}
        self._per_host: dict[str, int] = {}

    def admit(self, slot: Slot) -> str | None:
        """Take a slot for a new connection, evicting the oldest unknown one if need be; why not if refused."""
        if slot.known:
            if self._known >= self._max:
                return "too many handshakes in progress from known hosts"
            self._known += 1
        else:
            if self._per_host.get(slot.host, 0) >= self._max_per_address:
                return "too many handshakes in progress from this address"
            self._make_room(self._before_hello)
            self._before_hello[slot] = None
        self._per_host[slot.host] = self._per_host.get(slot.host, 0) + 1
        return None

    def heard_hello(self, slot: Slot) -> None:
        """Move ``slot`` to the pool of connections waiting for their PROOF, evicting its oldest if full."""
        if slot.known or slot.heard_hello or slot.released:
            return
        del self._before_hello[slot]
        slot.heard_hello = True
        self._make_room(self._after_hello)
        self._after_hello[slot] = None

    def release(self, slot: Slot) -> None:
        """Give ``slot`` back, once its handshake ended (or it was evicted); idempotent."""
        if slot.released:
            return
        slot.released = True
        if slot.known:
            self._known -= 1
        else:
            self._before_hello.pop(slot, None)
            self._after_hello.pop(slot, None)
        left = self._per_host.pop(slot.host) - 1
        if left:
            self._per_host[slot.host] = left

    def _make_room(self, pool: dict[Slot, None]) -> None:
        if len(pool) < self._max:
            return
        oldest = next(iter(pool))
        self.release(oldest)
        oldest.evicted = True
        oldest.scope.cancel()
        self._on_evict(oldest)
