"""``SimulatedDisk``: ``FileStorage`` on a simulation's virtual time, whose crashes tear what was not synced.

The nemesis crashes nodes by the thousand; with ``SimulatedDisk`` every
one of those crashes goes through ``FileStorage``'s real files and its
real recovery. A write reaches its file at once, as ``write()`` reaches the
page cache, and becomes durable only when its flush completes, some
virtual milliseconds later. A crash in between finds it in flight, and
``crash()`` then does to it what a power cut may do: an append to the log
is kept whole, lost, or (half the time) torn in the middle of its frame; a
file replaced whole is either the new one or still the old one (with a
partial temporary file beside it); segments a compaction deleted may come
back. Recovery must cope with each of these, and the node
must still have everything it acknowledged: it acknowledges only after the
flush completed, so nothing that was in flight was acknowledged.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import attrs

from ..raft import FileStorage

_ASIDE = ".unsynced"  # inside the node's directory: hard links to the files as they were before a write in flight
_SEGMENT = re.compile(r"log-\d{10}\.seg")  # FileStorage's log segments


_T = TypeVar("_T")


@attrs.frozen
class DiskStatistics:
    """What the crashes of a ``SimulatedDisk`` did to the writes they found in flight.

    Attributes:
        flushes: writes made durable (flushes that completed).
        crashes: calls of ``crash()``.
        in_flight: writes a crash found in flight.
        appends_kept: in-flight log appends the crash left whole.
        appends_lost: in-flight log appends the crash removed entirely.
        appends_torn: in-flight log appends the crash cut inside their frame,
            which recovery must drop as a torn write.
        replacements_kept: in-flight whole-file replacements (term, snapshot,
            compacted log) the crash let stand.
        replacements_undone: in-flight whole-file replacements the crash
            undid, leaving the old file and a partial temporary file.
    """

    flushes: int = 0
    crashes: int = 0
    in_flight: int = 0
    appends_kept: int = 0
    appends_lost: int = 0
    appends_torn: int = 0
    replacements_kept: int = 0
    replacements_undone: int = 0


@attrs.define
class _InFlight:
    """A write made but not yet flushed: what its files were before it, and what it left."""

    before: dict[str, tuple[int, int]]  # name -> (inode, size)
    after: dict[str, tuple[int, int]]
    aside: dict[str, Path]  # name -> a hard link to the file as it was before the write


class SimulatedDisk(FileStorage):
    """A ``FileStorage`` whose flushes take virtual time and whose crashes tear what was in flight: for simulations.

    It reads and writes real files with ``FileStorage``'s own code, so its
    format and its recovery are the ones a deployment runs, but it writes
    in the event loop rather than a worker thread (a thread's timing is not
    the simulation's, and would make a seed's replay differ), and its
    flushes complete after a delay in virtual time drawn from ``seed``.
    Call ``crash()`` once the node has crashed: every write still in flight
    is then torn as a power cut may tear it. The same seed, in the same
    simulation, tears the same bytes.

    Put the directory on a tmpfs (``RaftCluster`` uses ``/dev/shm`` where
    there is one): the flushes still call ``fsync``, which a tmpfs answers
    at once.

    Args:
        directory: the node's directory, as for ``FileStorage``.
        node: the node's id.
        cluster: the cluster's name.
        seed: seeds the flushes' latencies and the crashes' tears.
        latency: ``(min, max)`` virtual seconds a flush takes: the window in
            which a crash finds it in flight.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        node: str,
        cluster: str,
        seed: int | str,
        latency: tuple[float, float] = (0.0005, 0.005),
    ) -> None:
        super().__init__(directory, node=node, cluster=cluster)
        self._random = random.Random(seed)
        self._latency = latency
        self._in_flight: dict[str, list[_InFlight]] = {}
        self._links = 0
        self._counts = attrs.asdict(DiskStatistics())
        self._waiter: anyio.Event | None = None
        (self.directory / _ASIDE).mkdir(exist_ok=True)

    def __repr__(self) -> str:
        return "Simulated" + super().__repr__()

    def statistics(self) -> DiskStatistics:
        """What the flushes and the crashes did so far."""
        return DiskStatistics(**self._counts)

    def in_flight(self) -> int:
        """How many writes are in flight: made, and not yet durable."""
        return sum(len(pending) for pending in self._in_flight.values())

    async def wait_for_write(self) -> None:
        """Return as soon as a write is in flight (at once if one is): for crashing a node in the middle of one."""
        if not self.in_flight():
            self._waiter = waiter = anyio.Event()
            await waiter.wait()

    async def _flush(self, write: Callable[..., _T], *args: Any) -> _T:
        """Write at once, and be durable after the latency, unless a crash comes first."""
        before = self._files()
        # Hard links keep the old files, for a crash to undo a replacement or a deletion, and their inodes in use,
        # so that a file replaced in the write cannot come back with the inode of the one it replaced.
        aside = {name: self._link_aside(name) for name in before}
        result = write(*args)
        in_flight = _InFlight(before, self._files(), aside)
        pending = self._in_flight.setdefault(write.__name__, [])
        pending.append(in_flight)
        if self._waiter is not None:
            self._waiter.set()
            self._waiter = None
        await anyio.sleep(self._random.uniform(*self._latency))
        # A flush makes what was written to its files before it durable too, even a write whose wait was cancelled.
        for done in self._in_flight.pop(write.__name__, []):
            self._forget(done)
        self._counts["flushes"] += 1
        return result

    def crash(self) -> None:
        """Tear every write in flight, as a power cut may: call it after the node crashed, before it restarts."""
        self._counts["crashes"] += 1
        for pending in self._in_flight.values():
            for in_flight in reversed(pending):
                self._counts["in_flight"] += 1
                self._tear(in_flight)
        self._in_flight.clear()

    # -- the directory -----------------------------------------------------------------

    def _files(self) -> dict[str, tuple[int, int]]:
        """The files a write may change (term, snapshot, log segments): name -> (inode, size)."""
        found: dict[str, tuple[int, int]] = {}
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name in ("term", "snapshot") or _SEGMENT.fullmatch(entry.name):
                    found[entry.name] = (entry.inode(), entry.stat().st_size)
        return dict(sorted(found.items()))  # the directory's order is the file system's: a seed's tears must not be

    def _link_aside(self, name: str) -> Path:
        self._links += 1
        link = self.directory / _ASIDE / f"{self._links}-{name}"
        os.link(self.directory / name, link)
        return link

    def _forget(self, in_flight: _InFlight) -> None:
        for link in in_flight.aside.values():
            link.unlink(missing_ok=True)

    def _tear(self, in_flight: _InFlight) -> None:
        before, after, rnd = in_flight.before, in_flight.after, self._random
        replaced = [name for name in after if name in before and after[name][0] != before[name][0]]
        created = [name for name in after if name not in before]
        deleted = [name for name in before if name not in after]
        for name in after:
            if name in before and after[name][0] == before[name][0] and after[name][1] > before[name][1]:
                self._cut(name, before[name][1], after[name][1])
        if replaced or created or deleted:
            if rnd.random() < 0.5:
                self._counts["replacements_undone"] += 1
                for name in created:
                    self._leave_partial_temporary(name)
                    (self.directory / name).unlink()
                for name in replaced + deleted:
                    self._restore(in_flight, name)
            else:
                self._counts["replacements_kept"] += 1
                for name in deleted:  # a deletion not yet durable: the file may be back
                    if rnd.random() < 0.5:
                        self._restore(in_flight, name)
        self._forget(in_flight)

    def _restore(self, in_flight: _InFlight, name: str) -> None:
        link = in_flight.aside.pop(name, None)
        if link is not None:
            os.replace(link, self.directory / name)

    def _cut(self, name: str, durable: int, written: int) -> None:
        """Cut the append to ``name``: kept whole, lost, or (half the time) cut at a byte inside it."""
        draw = self._random.random()
        if draw < 0.5 and written - durable >= 2:
            end = self._random.randint(durable + 1, written - 1)
        else:
            end = written if draw < 0.75 else durable
        key = "appends_kept" if end == written else "appends_lost" if end == durable else "appends_torn"
        self._counts[key] += 1
        os.truncate(self.directory / name, end)

    def _leave_partial_temporary(self, name: str) -> None:
        """The temporary file a replacement was writing when the power went: recovery must delete it."""
        data = (self.directory / name).read_bytes()
        (self.directory / f"{name}.tmp").write_bytes(data[: self._random.randint(0, len(data))])


def scratch_directory(prefix: str = "genstatem-sim-") -> Path:
    """A new temporary directory, on ``/dev/shm`` (a tmpfs, where a flush costs nothing) when there is one."""
    shm = Path("/dev/shm")
    where = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=where))


def remove_directory(directory: Path) -> None:
    """Remove a directory made by ``scratch_directory``, and everything in it."""
    shutil.rmtree(directory, ignore_errors=True)
