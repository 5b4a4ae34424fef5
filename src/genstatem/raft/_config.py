"""``RaftConfig``: the timing and limits of a Raft node, with safe defaults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ._state_machine import StateMachine
from ._storage import Storage


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _timeout_range(instance: object, attribute: attrs.Attribute[Any], value: tuple[float, float]) -> None:
    low, high = value
    if not 0 < low < high:
        raise ValueError(f"{attribute.name} must be (min, max) with 0 < min < max, got {value!r}")


@attrs.frozen
class RaftConfig:
    """How a Raft node times its elections and bounds its work.

    Every safety mechanism is on by default; an option that weakens safety
    says so in its name.

    Attributes:
        election_timeout: ``(min, max)`` seconds; each election timer is drawn
            uniformly from it. Also how long a leader is trusted without
            contact (pre-vote, check-quorum) and how long a transfer may take.
        heartbeat_interval: seconds between a leader's heartbeats; well below
            ``election_timeout[0]``.
        max_batch_entries: entries in one append message.
        max_batch_bytes: approximate bytes in one append message.
        max_inflight: append messages in flight to one follower (pipelining).
        max_uncommitted_bytes: a leader refuses proposals while its uncommitted
            entries exceed this (they are accepted again as entries commit).
        pre_vote: run a pre-vote before a real election, so a node that was cut
            off cannot raise the term and depose a healthy leader when it returns.
        check_quorum: a leader steps down when it has not heard from a quorum
            within an election timeout; followers then refuse to vote while
            they hear from a leader.
        snapshot_every: compact the log once this many applied entries are
            held (``None``: never).
    """

    election_timeout: tuple[float, float] = attrs.field(default=(1.0, 2.0), validator=_timeout_range)
    heartbeat_interval: float = attrs.field(default=0.2, validator=_positive)
    max_batch_entries: int = attrs.field(default=64, validator=_positive)
    max_batch_bytes: int = attrs.field(default=256 * 1024, validator=_positive)
    max_inflight: int = attrs.field(default=8, validator=_positive)
    max_uncommitted_bytes: int = attrs.field(default=4 * 1024 * 1024, validator=_positive)
    pre_vote: bool = True
    check_quorum: bool = True
    snapshot_every: int | None = 10_000

    def __attrs_post_init__(self) -> None:
        if self.heartbeat_interval >= self.election_timeout[0]:
            raise ValueError("heartbeat_interval must be shorter than the minimum election timeout")


@attrs.frozen
class RaftSpec:
    """What a ``RaftNode`` is started with: ``system.start(RaftNode, spec, name=spec.name)``.

    Attributes:
        members: the node names of the initial cluster (this node included);
            a restarted node takes its membership from its log instead.
        machine: a factory of the user's state machine (called at each start).
        storage: this node's storage: ``FileStorage`` to keep it on disk, or
            ``MemoryStorage`` for tests (it must then outlive the node: keep it
            outside the ActorSystem, so a restart finds what was persisted).
        config: timing and limits.
        name: the name every RaftNode of the cluster is registered under.
        seed: seeds the election timers (deterministic in the simulator).
    """

    members: tuple[str, ...]
    machine: Callable[[], StateMachine]
    storage: Storage
    config: RaftConfig = attrs.field(factory=RaftConfig)
    name: str = "raft"
    seed: int | str | None = None
