"""Real node processes on 127.0.0.1: serve, kv and status round trips, SIGTERM's hand-over, and SIGKILLs.

The long run is ``python scripts/raft_kill.py`` (100 runs); here one short run.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import anyio
import pytest

from genstatem._cli import main
from genstatem._cli._connect import open_cluster
from genstatem._cli._local import LocalCluster
from genstatem.raft import RaftStatus

SCRIPT = Path(__file__).parents[2] / "scripts" / "raft_kill.py"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three node processes, shared by the tests of this module (each leaves it with a leader and all nodes up)."""
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as local:
        local.start_all()
        wait_for_leader(local)
        yield local
    assert not any(local.running(node) for node in local.nodes)


def wait_for_leader(local: LocalCluster) -> RaftStatus:
    """The leader's status, once there is one (within the commands' timeout)."""

    async def ask() -> RaftStatus:
        async with open_cluster(local.settings()) as cluster:
            return await cluster.leader_status()

    return anyio.run(ask)


def genstatem(local: LocalCluster, *args: str, node: str = "a") -> tuple[int, str, str]:
    """Run a command in this process against ``local`` with ``node``'s file: (status, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "genstatem", *args, "-c", str(local.config(node))],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def run(capsys: pytest.CaptureFixture[str], local: LocalCluster, *args: str) -> tuple[int, str, str]:
    """``main(args)`` in this process with node a's file: (status, stdout, stderr)."""
    status = main([*args, "-c", str(local.config("a"))])
    out, err = capsys.readouterr()
    return status, out, err


def test_kv_commands_write_and_read_through_the_cluster(
    cluster: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """put, get, cas and delete answer as the key-value machine does; "no" answers exit 3 with one line."""
    assert run(capsys, cluster, "kv", "put", "colour", "red") == (0, "ok\n", "")
    assert run(capsys, cluster, "kv", "cas", "colour", "red", "blue") == (0, "ok\n", "")
    status, out, err = run(capsys, cluster, "kv", "cas", "colour", "red", "green")
    assert (status, out, err) == (3, "", "genstatem: key 'colour' does not hold the expected value; unchanged\n")
    assert run(capsys, cluster, "kv", "cas", "--absent", "shape", "round") == (0, "ok\n", "")
    assert genstatem(cluster, "kv", "get", "colour", node="b") == (0, "blue\n", "")
    assert run(capsys, cluster, "kv", "delete", "colour") == (0, "ok\n", "")
    assert run(capsys, cluster, "kv", "get", "colour") == (3, "", "genstatem: key 'colour' not found\n")


def test_status_shows_every_member_and_each_followers_lag(
    cluster: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table has a line per member; --json has the leader's match index and lag for each follower."""
    assert run(capsys, cluster, "kv", "put", "k", "v")[0] == 0
    status, out, _ = run(capsys, cluster, "raft", "status", "--json")
    assert status == 0
    report = json.loads(out)
    members = {member["id"]: member for member in report["members"]}
    assert set(members) == {"a", "b", "c"}
    followers = [member for member in members.values() if member["role"] == "follower"]
    assert len(followers) == 2
    assert all(member["match_index"] + member["lag"] == members[report["leader"]]["last_index"] for member in followers)
    status, out, _ = run(capsys, cluster, "raft", "status")
    assert out.splitlines()[0].split() == [
        "NODE",
        "ROLE",
        "TERM",
        "LEADER",
        "COMMIT",
        "APPLIED",
        "LAST",
        "MATCH",
        "LAG",
    ]
    assert out.splitlines()[-1].startswith(f"leader {report['leader']}, term ")


def test_commands_that_cannot_do_their_job_exit_1_with_a_reason(
    cluster: LocalCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An unknown member and a wrong secret each give one line on stderr and exit status 1."""
    assert run(capsys, cluster, "raft", "remove", "zz") == (
        1,
        "",
        "genstatem: unknown member zz: the members are a,b,c\n",
    )
    wrong = tmp_path / "wrong"
    wrong.write_text("not the secret\n")
    status, out, err = run(capsys, cluster, "kv", "get", "k", "--secret-file", str(wrong), "--timeout", "1")
    assert (status, out) == (1, "")
    assert err == (
        "genstatem: the members refused the handshake: a wrong secret, wrong node names, TLS that does not match,"
        " or clocks more than 5 minutes apart\n"
    )


def test_a_learner_is_added_shown_refused_promotion_while_behind_and_removed(
    cluster: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """``add --learner`` adds a learner the status shows; ``promote`` refuses one that is not caught up, saying why."""
    assert run(capsys, cluster, "raft", "add", "d", "--learner") == (0, "added d as a learner\n", "")
    status, out, _ = run(capsys, cluster, "raft", "status", "--json")
    leader = {member["id"]: member for member in json.loads(out)["members"]}[json.loads(out)["leader"]]
    assert (leader["members"], leader["learners"]) == (["a", "b", "c"], ["d"])
    status, out, _ = run(capsys, cluster, "raft", "status")
    assert out.splitlines()[-1].endswith(", members a,b,c, learners d")
    status, out, err = run(capsys, cluster, "raft", "promote", "d")  # never started: it holds nothing
    assert (status, out) == (1, "")
    assert err.startswith("genstatem: refused: d is not caught up: it holds the log to index 0, the commit index is ")
    assert run(capsys, cluster, "raft", "promote", "a") == (1, "", "genstatem: a is a voter already\n")
    assert run(capsys, cluster, "raft", "remove", "d") == (0, "removed d\n", "")


def test_sigterm_hands_leadership_over_before_the_leader_exits(
    cluster: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """A leader sent SIGTERM transfers leadership, logs it, and exits 0; started again, it rejoins as a follower."""
    leader = wait_for_leader(cluster).id
    assert cluster.terminate(leader) == 0
    events = [
        json.loads(line)["event"] for line in cluster.log(leader).read_text().splitlines() if line.startswith("{")
    ]
    stopping = len(events) - 1 - events[::-1].index("stopping")
    handed_over = [e for e in events[stopping:] if e in ("handing leadership over", "leadership handed over")]
    assert (handed_over, events[-1]) == (["handing leadership over", "leadership handed over"], "node stopped")
    cluster.start(leader)
    assert run(capsys, cluster, "kv", "put", "after", "term")[0] == 0


def load_script() -> ModuleType:
    """The kill script, imported from ``scripts/`` (it is not a package)."""
    spec = importlib.util.spec_from_file_location("raft_kill", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
def test_nodes_killed_with_sigkill_lose_no_acknowledged_write(tmp_path: Path) -> None:
    """A short run of the kill script: leaders SIGKILLed and restarted under load, the history linearizable."""
    figures = load_script().run(7, tmp_path, 2.0)
    assert figures["verdict"] == "ok"
    assert figures["kills"] >= 1
    assert figures["acknowledged_writes"] > 0


def test_local_cluster_leaves_no_process_behind(tmp_path: Path) -> None:
    """``close()`` kills every node process group, paused ones included."""
    local = LocalCluster(tmp_path, ("x",))
    local.start("x")
    local.signal("x", signal.SIGSTOP)
    local.close()
    assert not local.running("x")
