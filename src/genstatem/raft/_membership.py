"""The configuration log: membership changes, one member at a time (dissertation 4.1), and learners.

A configuration takes effect as soon as its entry is in the log, committed
or not; so when a log is truncated or replaced by a snapshot, the
configurations it held go with it and the latest one left is in force.

A configuration has voters and learners. Learners receive the log and the
snapshots like any follower, but never campaign and count in no quorum, so
adding or removing one changes no quorum, and promoting one to voter is a
single-voter change like any other (etcd's ``tracker.Config.Learners``).
A configuration is stored as one tuple of names, in a config entry's
``config`` and a snapshot's ``members``: the voters, then, if there are
learners, ``LEARNERS_MARK`` and the learners. A configuration without
learners is stored exactly as before learners existed, on disk and on the
wire.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._log import Entry
from ._storage import LogStore, Snapshot

LEARNERS_MARK = ""
"""Separates the voters from the learners in a stored configuration: never a node's name (names are non-empty)."""


def encode(voters: Iterable[str], learners: Iterable[str]) -> tuple[str, ...]:
    """A configuration as stored: the voters, then the mark and the learners if there are any."""
    learners = tuple(learners)
    return (*voters, LEARNERS_MARK, *learners) if learners else tuple(voters)


def decode(names: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A stored configuration as ``(voters, learners)``."""
    names = tuple(names)
    if LEARNERS_MARK not in names:
        return names, ()
    cut = names.index(LEARNERS_MARK)
    return names[:cut], names[cut + 1 :]


class Membership:
    """Every configuration in the log, oldest first, as ``(index, voters, learners)``; the last is in force."""

    __slots__ = ("configs",)

    def __init__(self, members: Iterable[str]) -> None:
        self.configs: list[tuple[int, tuple[str, ...], tuple[str, ...]]] = [(0, *decode(members))]

    @property
    def voters(self) -> tuple[str, ...]:
        """The voters in force: they elect leaders and make up the quorums."""
        return self.configs[-1][1]

    @property
    def learners(self) -> tuple[str, ...]:
        """The learners in force: they receive the log but never vote or campaign."""
        return self.configs[-1][2]

    @property
    def members(self) -> tuple[str, ...]:
        """Every member in force, voters then learners: the nodes the leader replicates to."""
        return self.voters + self.learners

    @property
    def index(self) -> int:
        """The log index of the configuration in force (0 for the initial one, or the snapshot's)."""
        return self.configs[-1][0]

    def stored_at(self, index: int) -> tuple[str, ...]:
        """The configuration in force once the log held entries up to ``index``, as a snapshot stores it."""
        config = self.configs[0]
        for candidate in self.configs:
            if candidate[0] <= index:
                config = candidate
        return encode(config[1], config[2])

    def note(self, entries: Iterable[Entry]) -> None:
        """Entries were appended: the configurations among them take effect now."""
        for entry in entries:
            if entry.kind == "config":
                self.configs.append((entry.index, *decode(entry.config)))

    def reload(self, log_store: LogStore) -> None:
        """After a truncation or a snapshot: forget configurations no longer in the log."""
        last = log_store.last_index()
        kept = [config for config in self.configs if config[0] <= last]
        self.configs = kept or self.configs[:1]
        if log_store.first_index() <= last:
            known = self.configs[-1][0]
            self.note(log_store.entries(max(known + 1, log_store.first_index()), last + 1))

    def restore(self, snapshot: Snapshot) -> None:
        """Start again from the configuration a snapshot holds."""
        self.configs = [(snapshot.index, *decode(snapshot.members))]

    def changed(
        self, *, add: str | None, remove: str | None, learner: bool = False, promote: str | None = None
    ) -> tuple[str, ...]:
        """The configuration in force changed, as stored: ``remove`` gone, ``add`` added, ``promote`` a voter.

        Adding a member already there (as asked) or promoting a voter changes
        nothing, so that a retried request is harmless.

        Raises:
            ValueError: the change is not one a configuration can make (its
                message says why): a voter added as a learner, a learner added
                as a voter (promote it), or a promotion of a non-member.
        """
        voters = [m for m in self.voters if m != remove]
        learners = [m for m in self.learners if m != remove]
        if add is not None and learner:
            if add in voters:
                raise ValueError(f"{add} is already a voter")
            learners += [add] if add not in learners else []
        elif add is not None:
            if add in learners:
                raise ValueError(f"{add} is a learner: promote it to make it a voter")
            voters += [add] if add not in voters else []
        if promote is not None and promote not in voters:
            if promote not in learners:
                raise ValueError(f"{promote} is not a learner of the cluster")
            learners.remove(promote)
            voters.append(promote)
        return encode(voters, learners)
