"""Handshake slots: known hosts refused past their own, others evicting the oldest at the same stage."""

from __future__ import annotations

import pytest

from genstatem.net._tcp_admission import Admission, Slot

pytestmark = pytest.mark.anyio


class Pools:
    """An ``Admission`` and the slots it evicted, in order."""

    def __init__(self, max_handshakes: int, max_per_address: int = 100) -> None:
        self.evicted: list[Slot] = []
        self.admission = Admission(max_handshakes, max_per_address, self.evicted.append)

    def admit(self, host: str, *, known: bool = False) -> Slot:
        slot = Slot(host, f"{host}:1", known=known, deadline=float("inf"))
        refusal = self.admission.admit(slot)
        assert refusal is None, refusal
        return slot

    def refusal(self, host: str, *, known: bool = False) -> str | None:
        return self.admission.admit(Slot(host, f"{host}:1", known=known, deadline=float("inf")))


async def test_a_full_pool_evicts_the_connection_that_waited_longest() -> None:
    """A newcomer is never refused for want of room: the oldest handshake from another host is closed for it."""
    pools = Pools(max_handshakes=2)
    first, second = pools.admit("10.0.0.1"), pools.admit("10.0.0.2")
    third = pools.admit("10.0.0.3")
    assert pools.evicted == [first]
    assert (first.evicted, first.scope.cancel_called) == (True, True)
    assert (second.evicted, second.scope.cancel_called, third.evicted) == (False, False, False)
    pools.admission.release(first)  # as its handshake task does once cancelled
    pools.admit("10.0.0.4")
    assert pools.evicted == [first, second]


async def test_a_connection_past_its_hello_is_evicted_only_by_later_hellos() -> None:
    """Connections that never send a HELLO cannot close one that did; HELLOs make room among themselves."""
    pools = Pools(max_handshakes=2)
    greeted = pools.admit("10.0.0.1")
    pools.admission.heard_hello(greeted)
    silent = [pools.admit(f"10.0.1.{last}") for last in range(10)]
    assert pools.evicted == silent[:8]
    assert not greeted.evicted
    for slot in silent[8:]:
        pools.admission.heard_hello(slot)
    assert pools.evicted == [*silent[:8], greeted]


async def test_known_hosts_have_their_own_slots_refused_past_them_and_never_evicted() -> None:
    """A known host past max_handshakes is refused; unknown hosts neither take its slots nor evict it."""
    pools = Pools(max_handshakes=1)
    known = pools.admit("10.0.0.1", known=True)
    assert pools.refusal("10.0.0.1", known=True) == "too many handshakes in progress from known hosts"
    for last in range(5):
        pools.admit(f"10.0.1.{last}")
    assert known not in pools.evicted
    pools.admission.release(known)
    pools.admit("10.0.0.1", known=True)


async def test_one_address_is_refused_past_its_own_limit_until_a_slot_is_released() -> None:
    """An unknown host holds at most max_handshakes_per_address slots; releasing one, even twice, frees one."""
    pools = Pools(max_handshakes=10, max_per_address=2)
    first = pools.admit("10.0.0.1")
    pools.admit("10.0.0.1")
    assert pools.refusal("10.0.0.1") == "too many handshakes in progress from this address"
    pools.admission.release(first)
    pools.admission.release(first)
    pools.admit("10.0.0.1")
    assert pools.refusal("10.0.0.1") == "too many handshakes in progress from this address"
    assert pools.evicted == []
