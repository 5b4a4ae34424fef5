"""``raft status`` as a table a person reads at a glance, or as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..raft import RaftStatus

COLUMNS = ("NODE", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST", "MATCH", "LAG")


def leader_of(statuses: Mapping[str, RaftStatus | str]) -> RaftStatus | None:
    """The answering member that leads in the highest term, if any."""
    leaders = [s for s in statuses.values() if isinstance(s, RaftStatus) and s.role == "leader"]
    return max(leaders, key=lambda status: status.term, default=None)


def rows(statuses: Mapping[str, RaftStatus | str]) -> list[dict[str, Any]]:
    """One record per member: its own view, and the leader's view of it (match index and lag)."""
    leader = leader_of(statuses)
    matches = dict(leader.matches) if leader is not None else {}
    records = []
    for node, status in statuses.items():
        if isinstance(status, str):
            records.append({"id": node, "reachable": False, "error": status})
            continue
        record: dict[str, Any] = {
            "id": node,
            "reachable": True,
            "role": "learner" if node in status.learners and status.role == "follower" else status.role,
            "term": status.term,
            "leader": status.leader,
            "commit_index": status.commit_index,
            "last_applied": status.last_applied,
            "last_index": status.last_index,
            "members": list(status.members),
            "learners": list(status.learners),
        }
        if leader is not None and node in matches:
            record["match_index"] = matches[node]
            record["lag"] = leader.last_index - matches[node]
        records.append(record)
    return records


def table(statuses: Mapping[str, RaftStatus | str]) -> str:
    """The members as aligned columns; the leader's line first, a note under the table."""
    lines: list[tuple[str, ...]] = [COLUMNS]
    notes = []
    for record in rows(statuses):
        if not record["reachable"]:
            lines.append((record["id"], "-", "-", "-", "-", "-", "-", "-", "-"))
            notes.append(f"{record['id']}: {record['error']}")
            continue
        lines.append(
            (
                record["id"],
                record["role"],
                str(record["term"]),
                record["leader"] or "-",
                str(record["commit_index"]),
                str(record["last_applied"]),
                str(record["last_index"]),
                str(record.get("match_index", "-")),
                str(record.get("lag", "-")),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines]
    leader = leader_of(statuses)
    if leader is None:
        notes.append("no leader among the members that answered")
    else:
        learners = f", learners {','.join(leader.learners)}" if leader.learners else ""
        notes.append(f"leader {leader.id}, term {leader.term}, members {','.join(leader.members)}{learners}")
    return "\n".join(text + notes)
