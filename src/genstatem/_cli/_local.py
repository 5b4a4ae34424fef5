"""A cluster of ``genstatem raft serve`` processes on loopback, for the demo, the kill script and the tests.

Each node gets a config file, a data directory and a log file under one
root directory, and runs in a process group of its own, so that a kill
reaches the node and nothing else, and nothing outlives ``close()``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from ._config import Settings, parse_peer

NODES = ("a", "b", "c")
STOP_WAIT = 10.0
"""Seconds a node has to stop after SIGTERM before it is killed."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 now, held open together so none is picked twice."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


class LocalCluster:
    """Node processes on 127.0.0.1, each with its config file, data directory and log under ``root``.

    Args:
        root: where the files go (the caller removes it).
        nodes: the node ids.
        election_timeout: the nodes' ``(min, max)`` seconds.
        heartbeat_interval: the nodes' heartbeat.
        log_level: the nodes' log level.
    """

    def __init__(
        self,
        root: Path,
        nodes: Iterable[str] = NODES,
        *,
        election_timeout: tuple[float, float] = (0.5, 1.0),
        heartbeat_interval: float = 0.1,
        log_level: str = "info",
    ) -> None:
        self.root = root
        self.nodes = tuple(nodes)
        self.ports = dict(zip(self.nodes, free_ports(len(self.nodes)), strict=True))
        self.secret_file = root / "secret"
        self.secret_file.write_text(secrets.token_hex(16) + "\n")
        self.secret_file.chmod(0o600)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.stopped: set[str] = set()  # paused with SIGSTOP
        peers = "\n".join(f'{node} = "127.0.0.1:{port}"' for node, port in self.ports.items())
        for node in self.nodes:
            self.config(node).write_text(
                f'node = "{node}"\n'
                f'listen = "127.0.0.1:{self.ports[node]}"\n'
                f'data = "{node}-data"\n'
                f'cluster = "local"\n'
                f'secret_file = "secret"\n'
                f"election_timeout = [{election_timeout[0]}, {election_timeout[1]}]\n"
                f"heartbeat_interval = {heartbeat_interval}\n"
                f'log_format = "json"\n'
                f'log_level = "{log_level}"\n'
                f"\n[peers]\n{peers}\n"
            )

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object | type[BaseException] | TracebackType | None) -> None:
        self.close()

    def config(self, node: str) -> Path:
        """``node``'s config file."""
        return self.root / f"{node}.toml"

    def log(self, node: str) -> Path:
        """``node``'s log file (stderr of every run of it, appended)."""
        return self.root / f"{node}.log"

    def settings(self) -> Settings:
        """What a command needs to reach the cluster: the members' addresses and the secret file."""
        peers = dict(parse_peer(f"{node}=127.0.0.1:{port}") for node, port in self.ports.items())
        return Settings(peers=peers, secret_file=self.secret_file, timeout=5.0)

    def command(self, node: str) -> list[str]:
        """The command line that runs ``node``."""
        return [sys.executable, "-m", "genstatem", "raft", "serve", "-c", str(self.config(node))]

    def start(self, node: str) -> int:
        """Start ``node``'s process (from its data directory, if it ran before); return its pid."""
        if self.running(node):
            raise RuntimeError(f"node {node} is running")
        with self.log(node).open("ab") as log:
            process = subprocess.Popen(
                self.command(node),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.root,
                start_new_session=True,  # its own process group: a kill reaches it and nothing else
            )
        self.processes[node] = process
        return process.pid

    def start_all(self) -> None:
        """Start every node."""
        for node in self.nodes:
            self.start(node)

    def running(self, node: str) -> bool:
        """Whether ``node``'s process is alive (paused counts as alive)."""
        process = self.processes.get(node)
        return process is not None and process.poll() is None

    def signal(self, node: str, signum: int) -> None:
        """Send ``signum`` to ``node``'s process group."""
        process = self.processes[node]
        if signum == signal.SIGSTOP:
            self.stopped.add(node)
        elif signum == signal.SIGCONT:
            self.stopped.discard(node)
        with contextlib.suppress(ProcessLookupError):  # it died meanwhile
            os.killpg(process.pid, signum)

    def kill(self, node: str) -> None:
        """SIGKILL ``node`` and wait for it to be gone."""
        self.signal(node, signal.SIGKILL)
        self.stopped.discard(node)
        self.processes[node].wait(timeout=STOP_WAIT)

    def terminate(self, node: str, *, wait: float = STOP_WAIT) -> int:
        """SIGTERM ``node`` (it hands over leadership and stops); SIGKILL it after ``wait`` seconds."""
        if self.stopped:
            self.signal(node, signal.SIGCONT)
        self.signal(node, signal.SIGTERM)
        try:
            return self.processes[node].wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.kill(node)
            return self.processes[node].wait()

    def close(self) -> None:
        """Stop every node process: SIGCONT, then SIGKILL to each group, and reap them. Safe to call twice."""
        for process in self.processes.values():
            if process.poll() is None:
                for signum in (signal.SIGCONT, signal.SIGKILL):
                    try:
                        os.killpg(process.pid, signum)
                    except ProcessLookupError:
                        break
        deadline = time.monotonic() + STOP_WAIT
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.stopped.clear()
