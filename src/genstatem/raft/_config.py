"""``RaftConfig``: the timing and limits of a Raft node, with safe defaults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import attrs

from ..net import DEFAULT_MAX_FRAME_SIZE
from ._state_machine import StateMachine
from ._storage import Storage

MAX_MESSAGE_BYTES: Final = DEFAULT_MAX_FRAME_SIZE - 4096
"""The largest message a node builds: the wire's default frame limit, less room for the envelope it travels in."""

MAX_PAYLOAD_BYTES: Final = MAX_MESSAGE_BYTES - 64 * 1024
"""The most ``max_batch_bytes``, ``snapshot_chunk_bytes`` or ``max_command_bytes`` may be: room is left for the
fields around the payload (an entry's, a message's, the node ids)."""


DEFAULT_MAX_COMMAND_BYTES: Final = 512 * 1024
"""The largest proposal a node accepts and a client sends, by default: half the wire's default frame limit."""


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
        max_batch_bytes: bytes of entries in one append message, by an upper
            bound of their encoded size (an entry larger than this goes alone).
        max_inflight: append messages in flight to one follower (pipelining).
        max_uncommitted_bytes: a leader refuses proposals while its uncommitted
            entries exceed this (they are accepted again as entries commit).
        pre_vote: run a pre-vote before a real election, so a node that was cut
            off cannot raise the term and depose a healthy leader when it returns.
        check_quorum: a leader steps down when it has not heard from a quorum
            within an election timeout; followers then refuse to vote while
            they hear from a leader.
        snapshot_every: compact the log once this many applied entries are
            held (``None``: never by count).
        snapshot_bytes: compact the log once its applied entries hold this
            many bytes (``None``: never by size), so the log's memory stays
            bounded whatever the entries' size.
        snapshot_chunk_bytes: the data in one ``InstallSnapshot`` message: a
            snapshot of any size is sent to a follower in chunks of this size.
        snapshot_chunks_in_flight: chunks sent to one follower and not yet
            answered.
        max_command_bytes: the largest proposal accepted (its command and
            client id); a larger one is refused with ``CommandTooLarge``.
        max_learner_lag: a learner is caught up, and may be promoted to
            voter, once the leader knows it holds the log to within this many
            entries of the commit index: a voter far behind would hold up
            every commit that needs it.
        auto_promote: a leader promotes each learner to voter as soon as it
            is caught up, with no request.

    Every message a node builds stays under ``MAX_MESSAGE_BYTES``, below the
    wire's default frame limit (1 MiB): ``max_batch_bytes``,
    ``snapshot_chunk_bytes`` and ``max_command_bytes`` are checked against it.
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
    snapshot_bytes: int | None = 64 * 1024 * 1024
    snapshot_chunk_bytes: int = attrs.field(default=256 * 1024, validator=_positive)
    snapshot_chunks_in_flight: int = attrs.field(default=4, validator=_positive)
    max_command_bytes: int = attrs.field(default=DEFAULT_MAX_COMMAND_BYTES, validator=_positive)
    max_learner_lag: int = attrs.field(default=1000, validator=attrs.validators.ge(0))
    auto_promote: bool = False

    def __attrs_post_init__(self) -> None:
        if self.heartbeat_interval >= self.election_timeout[0]:
            raise ValueError("heartbeat_interval must be shorter than the minimum election timeout")
        for name in ("max_batch_bytes", "snapshot_chunk_bytes", "max_command_bytes"):
            if getattr(self, name) > MAX_PAYLOAD_BYTES:
                raise ValueError(
                    f"{name} must be at most {MAX_PAYLOAD_BYTES} bytes, so that every message fits the wire's "
                    f"frame limit; got {getattr(self, name)}"
                )


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
