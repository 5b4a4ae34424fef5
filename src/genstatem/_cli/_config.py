"""What a node and a command need to know: a TOML file per node, flags for the same fields.

A node's file::

    node = "a"
    listen = "127.0.0.1:7001"
    data = "/var/lib/genstatem/a"
    cluster = "orders"
    secret_file = "/etc/genstatem/secret"      # or the environment variable GENSTATEM_SECRET

    [peers]
    b = "127.0.0.1:7002"
    c = "127.0.0.1:7003"

The commands (``kv``, ``raft status`` ...) read the same file for the
members' addresses, the secret and TLS: any node's file reaches the cluster.
The secret never comes from the command line, where ``ps`` would show it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import ssl
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..raft import KVMachine, RaftConfig, StateMachine

SECRET_ENV = "GENSTATEM_SECRET"
"""The environment variable read for the shared secret when no secret file is given."""


class CliError(Exception):
    """A command cannot do its job: ``str(error)`` is the one line the user sees, ``status`` the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def find_cli_error(error: BaseException) -> CliError | None:
    """The ``CliError`` that ended a command, also from inside a task group's exception group."""
    if isinstance(error, CliError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := find_cli_error(inner)) is not None:
                return found
    return None


def parse_address(text: str, what: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:7001"`` for IPv6) as ``(host, port)``."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise CliError(f"{what}: {text!r} is not host:port")
    return host.strip("[]"), int(port)


def parse_peer(text: str) -> tuple[str, tuple[str, int]]:
    """``"b=host:port"`` as ``("b", (host, port))``."""
    name, sep, address = text.partition("=")
    if not sep or not name:
        raise CliError(f"--peer: {text!r} is not node=host:port")
    return name, parse_address(address, f"--peer {name}")


@attrs.frozen(kw_only=True)
class TlsFiles:
    """The PEM files of a node's TLS: its certificate and key, and the CA that signed every node's."""

    cert: Path
    key: Path
    ca: Path

    def contexts(self) -> tuple[ssl.SSLContext, ssl.SSLContext]:
        """Server and client contexts for mutual TLS: each side shows its certificate and checks the other's."""
        try:
            server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=self.ca)
            server.verify_mode = ssl.CERT_REQUIRED
            server.load_cert_chain(self.cert, self.key)
            client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
            client.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as error:
            raise CliError(f"TLS files: {error}") from error
        return server, client


@attrs.frozen(kw_only=True)
class Settings:
    """Everything one invocation was given, from the file and the flags (flags win)."""

    node: str | None = None
    listen: tuple[str, int] | None = None
    advertise: tuple[str, int] | None = None
    peers: Mapping[str, tuple[str, int]] = attrs.field(factory=dict)
    data: Path | None = None
    cluster: str = "genstatem"
    secret_file: Path | None = None
    tls: TlsFiles | None = None
    machine: str = "genstatem.raft:KVMachine"
    join: bool = False
    election_timeout: tuple[float, float] = RaftConfig().election_timeout
    heartbeat_interval: float = RaftConfig().heartbeat_interval
    snapshot_every: int | None = RaftConfig().snapshot_every
    log_format: str = "text"
    log_level: str = "info"
    timeout: float = 5.0

    def members(self) -> dict[str, tuple[str, int]]:
        """Every node whose address is known: the peers and, from a node's own file, the node itself."""
        known = dict(self.peers)
        if self.node is not None and self.listen is not None:
            known.setdefault(self.node, self.advertise or self.listen)
        return known

    def secret(self) -> bytes:
        """The shared secret, from ``secret_file`` or else ``$GENSTATEM_SECRET``."""
        if self.secret_file is not None:
            try:
                secret = self.secret_file.read_bytes().strip()
            except OSError as error:
                raise CliError(f"secret file: {error}") from error
            if not secret:
                raise CliError(f"secret file {self.secret_file} is empty")
            return secret
        value = os.environ.get(SECRET_ENV, "").strip()
        if not value:
            raise CliError(f"no secret: give secret_file (in the config file, or --secret-file) or set ${SECRET_ENV}")
        return value.encode()

    def raft_config(self) -> RaftConfig:
        """The node's ``RaftConfig``: its timing; every safety mechanism stays on."""
        try:
            return RaftConfig(
                election_timeout=self.election_timeout,
                heartbeat_interval=self.heartbeat_interval,
                snapshot_every=self.snapshot_every,
            )
        except ValueError as error:
            raise CliError(f"timing: {error}") from error

    def machine_factory(self) -> Callable[[], StateMachine]:
        """The state machine factory named by ``machine`` (``module:factory``)."""
        if self.machine in ("kv", "genstatem.raft:KVMachine"):
            return KVMachine
        module_name, sep, attribute = self.machine.partition(":")
        if not sep or not module_name or not attribute:
            raise CliError(f"machine: {self.machine!r} is not module:factory")
        try:
            found: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError) as error:
            raise CliError(f"machine {self.machine!r}: {error}") from error
        if not callable(found):
            raise CliError(f"machine {self.machine!r} is not callable")
        factory: Callable[[], StateMachine] = found
        return factory


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every command takes: where the cluster is, and how to prove membership."""
    group = parser.add_argument_group("cluster")
    group.add_argument("-c", "--config", type=Path, help="a node's TOML file: its peers, secret and TLS files")
    group.add_argument(
        "--peer", action="append", default=[], metavar="NODE=HOST:PORT", help="a member's address (repeat)"
    )
    group.add_argument("--secret-file", type=Path, help=f"the shared secret's file (else ${SECRET_ENV})")
    group.add_argument("--tls-cert", type=Path, help="this side's certificate (PEM), for mutual TLS")
    group.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    group.add_argument("--tls-ca", type=Path, help="the CA that signed every node's certificate (PEM)")
    group.add_argument("--timeout", type=float, help="seconds to wait for the cluster (default 5)")


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``raft serve``, each also a field of the config file."""
    group = parser.add_argument_group("node")
    group.add_argument("--node", help="this node's id")
    group.add_argument("--listen", metavar="HOST:PORT", help="where to listen")
    group.add_argument("--advertise", metavar="HOST:PORT", help="where the others reach it (default: --listen)")
    group.add_argument("--data", type=Path, help="this node's data directory")
    group.add_argument("--cluster", help="the cluster's name, stamped in the data directory")
    group.add_argument("--machine", help="the state machine, module:factory (default: the key-value machine)")
    group.add_argument(
        "--join", action="store_true", default=None, help="join a running cluster (then run `raft add` for it)"
    )
    group.add_argument("--election-timeout", metavar="MIN,MAX", help="seconds (default 1.0,2.0)")
    group.add_argument("--heartbeat-interval", type=float, help="seconds (default 0.2)")
    group.add_argument("--snapshot-every", type=int, help="applied entries between snapshots (default 10000)")
    group.add_argument("--log-format", choices=("text", "json"), help="stderr log lines (default text)")
    group.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="default info")


_FIELDS = {field.name for field in attrs.fields(Settings)} | {"tls"}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            raw = tomllib.load(file)
    except OSError as error:
        raise CliError(f"config file: {error}") from error
    except tomllib.TOMLDecodeError as error:
        raise CliError(f"config file {path}: {error}") from error
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise CliError(f"config file {path}: unknown field(s) {', '.join(unknown)}")
    return raw


def _relative(base: Path | None, value: Any, what: str) -> Path:
    if not isinstance(value, str):
        raise CliError(f"{what} must be a string path")
    path = Path(value).expanduser()
    return path if path.is_absolute() or base is None else base / path


def _election_timeout(value: Any) -> tuple[float, float]:
    if isinstance(value, str):
        value = value.split(",")
    try:
        low, high = (float(part) for part in value)
    except (TypeError, ValueError) as error:
        raise CliError(f"election_timeout: {value!r} is not MIN,MAX seconds") from error
    return low, high


def settings_from(args: argparse.Namespace) -> Settings:
    """Merge the config file (if any) and the flags: a flag given wins over the file."""
    path: Path | None = getattr(args, "config", None)
    raw = _read_file(path) if path is not None else {}
    base = path.parent if path is not None else None
    fields: dict[str, Any] = {}

    def pick(name: str) -> Any:
        flag = getattr(args, name, None)
        return flag if flag is not None else raw.get(name)

    for name in ("node", "cluster", "machine", "log_format", "log_level"):
        if (value := pick(name)) is not None:
            fields[name] = str(value)
    for name in ("listen", "advertise"):
        if (value := pick(name)) is not None:
            fields[name] = parse_address(str(value), name)
    if (value := pick("join")) is not None:
        fields["join"] = bool(value)
    for name, kind in (("heartbeat_interval", float), ("timeout", float), ("snapshot_every", int)):
        if (value := pick(name)) is not None:
            fields[name] = kind(value)
    if (value := pick("election_timeout")) is not None:
        fields["election_timeout"] = _election_timeout(value)
    if getattr(args, "data", None) is not None:
        fields["data"] = args.data
    elif "data" in raw:
        fields["data"] = _relative(base, raw["data"], "data")
    if getattr(args, "secret_file", None) is not None:
        fields["secret_file"] = args.secret_file
    elif "secret_file" in raw:
        fields["secret_file"] = _relative(base, raw["secret_file"], "secret_file")

    fields["peers"] = _peers_from(args, raw, fields.get("node"))
    tls = _tls_from(args, raw, base)
    if tls is not None:
        fields["tls"] = tls
    return Settings(**fields)


def _peers_from(args: argparse.Namespace, raw: dict[str, Any], node: str | None) -> dict[str, tuple[str, int]]:
    """The peers of the config file's ``[peers]`` table and of ``--peer`` flags, this node left out."""
    peers_raw = raw.get("peers", {})
    if not isinstance(peers_raw, dict):
        raise CliError('peers must be a table of node = "host:port"')
    peers = {str(name): parse_address(str(address), f"peer {name}") for name, address in peers_raw.items()}
    peers.update(parse_peer(text) for text in getattr(args, "peer", []))
    if node is not None:
        peers.pop(node, None)
    return peers


def _tls_from(args: argparse.Namespace, raw: dict[str, Any], base: Path | None) -> TlsFiles | None:
    """The TLS files of the ``[tls]`` table and the ``--tls-*`` flags; all three or none."""
    tls_raw = raw.get("tls", {})
    tls: dict[str, Path | None] = {}
    for name in ("cert", "key", "ca"):
        from_file = _relative(base, tls_raw[name], f"tls.{name}") if name in tls_raw else None
        tls[name] = getattr(args, f"tls_{name}", None) or from_file
    if not any(tls.values()):
        return None
    cert, key, ca = tls["cert"], tls["key"], tls["ca"]
    if cert is None or key is None or ca is None:
        missing = [name for name, value in tls.items() if value is None]
        raise CliError(f"TLS needs cert, key and ca; missing {', '.join(missing)}")
    return TlsFiles(cert=cert, key=key, ca=ca)
