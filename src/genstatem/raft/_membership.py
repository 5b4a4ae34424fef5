"""The configuration log: membership changes, one member at a time (dissertation 4.1).

A configuration takes effect as soon as its entry is in the log, committed
or not; so when a log is truncated or replaced by a snapshot, the
configurations it held go with it and the latest one left is in force.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._log import Entry
from ._storage import LogStore, Snapshot


class Membership:
    """Every configuration in the log, oldest first, as ``(index, members)``; the last is in force."""

    __slots__ = ("configs",)

    def __init__(self, members: Iterable[str]) -> None:
        self.configs: list[tuple[int, tuple[str, ...]]] = [(0, tuple(members))]

    @property
    def members(self) -> tuple[str, ...]:
        """The members in force."""
        return self.configs[-1][1]

    @property
    def index(self) -> int:
        """The log index of the configuration in force (0 for the initial one, or the snapshot's)."""
        return self.configs[-1][0]

    def members_at(self, index: int) -> tuple[str, ...]:
        """The members in force once the log held entries up to ``index``."""
        members = self.configs[0][1]
        for config_index, config_members in self.configs:
            if config_index <= index:
                members = config_members
        return members

    def note(self, entries: Iterable[Entry]) -> None:
        """Entries were appended: the configurations among them take effect now."""
        for entry in entries:
            if entry.kind == "config":
                self.configs.append((entry.index, entry.config))

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
        self.configs = [(snapshot.index, tuple(snapshot.members))]

    def changed(self, *, add: str | None, remove: str | None) -> tuple[str, ...]:
        """The members in force with ``remove`` gone and ``add`` added (at the end)."""
        members = [m for m in self.members if m != remove]
        if add is not None and add not in members:
            members.append(add)
        return tuple(members)
