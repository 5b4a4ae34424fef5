"""The node file and the flags: what ``raft serve`` and the commands are told, and what they refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from genstatem._cli import main, parser
from genstatem._cli._config import SECRET_ENV, CliError, settings_from


def write_config(directory: Path, text: str) -> Path:
    """A node file in ``directory``."""
    path = directory / "a.toml"
    path.write_text(text)
    return path


NODE_FILE = """
node = "a"
listen = "127.0.0.1:7001"
data = "a-data"
secret_file = "secret"
election_timeout = [0.5, 1.0]

[peers]
a = "127.0.0.1:7001"
b = "127.0.0.1:7002"
c = "[::1]:7003"
"""


def test_file_fields_are_read_and_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    """Paths in a node file are relative to it; the node is not its own peer; IPv6 addresses parse."""
    config = write_config(tmp_path, NODE_FILE)
    settings = settings_from(parser().parse_args(["raft", "serve", "-c", str(config)]))
    assert settings.data == tmp_path / "a-data"
    assert settings.secret_file == tmp_path / "secret"
    assert dict(settings.peers) == {"b": ("127.0.0.1", 7002), "c": ("::1", 7003)}
    assert settings.members() == {"a": ("127.0.0.1", 7001), "b": ("127.0.0.1", 7002), "c": ("::1", 7003)}
    assert settings.raft_config().election_timeout == (0.5, 1.0)


def test_flags_win_over_the_file(tmp_path: Path) -> None:
    """A flag given on the command line replaces the file's value of the same field."""
    config = write_config(tmp_path, NODE_FILE)
    args = ["raft", "serve", "-c", str(config), "--election-timeout", "2,4", "--peer", "b=10.0.0.2:7002"]
    settings = settings_from(parser().parse_args(args))
    assert settings.election_timeout == (2.0, 4.0)
    assert settings.peers["b"] == ("10.0.0.2", 7002)


def test_the_secret_comes_from_a_file_or_the_environment_never_a_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """There is no --secret flag; the secret is read from secret_file, else from $GENSTATEM_SECRET."""
    with pytest.raises(SystemExit):
        parser().parse_args(["kv", "get", "x", "--secret", "hunter2"])
    assert "unrecognized arguments: --secret" in capsys.readouterr().err
    (tmp_path / "secret").write_text("from-file\n")
    config = write_config(tmp_path, NODE_FILE)
    assert settings_from(parser().parse_args(["kv", "get", "x", "-c", str(config)])).secret() == b"from-file"
    monkeypatch.setenv(SECRET_ENV, "from-env")
    assert settings_from(parser().parse_args(["kv", "get", "x", "--peer", "a=h:1"])).secret() == b"from-env"
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(CliError, match="no secret"):
        settings_from(parser().parse_args(["kv", "get", "x", "--peer", "a=h:1"])).secret()


def test_unknown_fields_and_bad_timing_are_refused_in_one_line(tmp_path: Path) -> None:
    """A misspelt field, or timing Raft would refuse, is a one-line error naming it."""
    config = write_config(tmp_path, "hearbeat_interval = 0.1\n" + NODE_FILE)
    with pytest.raises(CliError, match=r"unknown field.*hearbeat_interval"):
        settings_from(parser().parse_args(["raft", "serve", "-c", str(config)]))
    args = ["raft", "serve", "--election-timeout", "0.2,0.4", "--heartbeat-interval", "0.3"]
    with pytest.raises(CliError, match="timing: heartbeat_interval"):
        settings_from(parser().parse_args(args)).raft_config()


def test_a_user_machine_is_named_as_module_colon_factory() -> None:
    """``machine = "module:factory"`` imports the factory; a name that does not import is refused."""
    args = ["raft", "serve", "--machine", "genstatem.raft:ListMachine"]
    factory = settings_from(parser().parse_args(args)).machine_factory()
    assert type(factory()).__name__ == "ListMachine"
    with pytest.raises(CliError, match="no_such_module"):
        settings_from(parser().parse_args(["raft", "serve", "--machine", "no_such_module:M"])).machine_factory()


def test_add_takes_learner_and_promote_takes_a_node() -> None:
    """``raft add NODE --learner`` asks for a learner (a voter without it, as etcd's ``member add``); promote a NODE."""
    assert parser().parse_args(["raft", "add", "d", "--learner"]).learner is True
    assert parser().parse_args(["raft", "add", "d"]).learner is False
    assert parser().parse_args(["raft", "promote", "d"]).member == "d"


def test_serve_without_a_data_directory_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``raft serve`` missing a required field exits 1 and names the fields it needs."""
    monkeypatch.setenv(SECRET_ENV, "s")
    assert main(["raft", "serve", "--node", "a", "--listen", "127.0.0.1:0"]) == 1
    assert (
        capsys.readouterr().err
        == "genstatem: raft serve needs node, listen and data (in the config file or as flags)\n"
    )


def test_python_m_genstatem_passes_raft_and_kv_to_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m genstatem raft ...`` is the ``genstatem`` command, named as typed in its messages."""
    from genstatem.__main__ import main as python_m_main

    assert python_m_main(["raft", "serve", "--node", "a"]) == 1
    assert capsys.readouterr().err.endswith(
        ": raft serve needs node, listen and data (in the config file or as flags)\n"
    )


def test_a_member_named_on_the_command_line_is_not_taken_for_the_files_node(tmp_path: Path) -> None:
    """``raft transfer d -c a.toml`` reaches the members at their own addresses: ``d`` is not the file's node."""
    config = write_config(tmp_path, NODE_FILE)
    args = parser().parse_args(["raft", "transfer", "d", "-c", str(config)])
    settings = settings_from(args)
    assert (args.member, settings.node) == ("d", "a")
    assert "d" not in settings.members()
