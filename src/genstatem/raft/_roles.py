"""A Raft node's roles, which are its states, and the names of its timers."""

from __future__ import annotations

import enum
from typing import Final


class Role(enum.StrEnum):
    """A node's roles, which are its states: each value names its handler method."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"

    def __repr__(self) -> str:
        return repr(self.value)  # traces and diagrams show 'leader', as when roles were plain strings


class Timer:
    """The names of the node's timers."""

    ELECTION: Final = "election"  # a state timeout: any change of role restarts it
    CHECK_QUORUM: Final = "check_quorum"  # the leader's state timeout: has a quorum answered lately?
    TALLY: Final = "tally"  # zero time: counts the votes once the enter call is done
    HEARTBEAT: Final = "heartbeat"  # generic: a leader's heartbeats
    TRANSFER: Final = "transfer"  # generic: a leadership transfer's deadline
