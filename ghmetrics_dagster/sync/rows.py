"""The raw tables' rows (docs/contracts.md): GitHub objects shaped into rows, and their upsert."""

from __future__ import annotations

import datetime as dt

import psycopg2.extras

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.github.client import parse_time

STREAM_TABLES = {
    "repositories": ("repositories",),
    "pull_requests": ("pull_requests", "pull_request_reviews", "pull_request_commits"),
    "deployments": ("deployments",),
    "releases": ("releases",),
    "workflow_runs": ("workflow_runs",),
    "issues": ("issues",),
}

# table -> (columns, key)
TABLES = {
    "repositories": (["id", "repo_full_name", "data", "updated_at"], ["id"]),
    "pull_requests": (["id", "repo_full_name", "number", "data", "updated_at"], ["id"]),
    "pull_request_reviews": (
        ["id", "repo_full_name", "pull_request_id", "pull_request_number", "data", "updated_at"],
        ["id"],
    ),
    "pull_request_commits": (
        ["repo_full_name", "pull_request_number", "sha", "pull_request_id", "data", "updated_at"],
        ["repo_full_name", "pull_request_number", "sha"],
    ),
    "deployments": (["id", "repo_full_name", "data", "updated_at"], ["id"]),
    "releases": (["id", "repo_full_name", "data", "updated_at"], ["id"]),
    "workflow_runs": (["id", "repo_full_name", "data", "updated_at"], ["id"]),
    "issues": (["id", "repo_full_name", "data", "updated_at"], ["id"]),
    "quarantine": (["repo_full_name", "stream", "object_key", "reason", "data"], ["repo_full_name", "stream", "object_key"]),
}


def _dedupe(table: str, rows: list[tuple]) -> list[tuple]:
    columns, key = TABLES[table]
    positions = [columns.index(k) for k in key]
    unique = {}
    for row in rows:
        unique[tuple(row[p] for p in positions)] = row
    return list(unique.values())


def write_rows(cur, rows_by_table: dict[str, list[tuple]]) -> dict[str, int]:
    """Upserts the rows; returns the number written per table."""
    written = {}
    for table, rows in rows_by_table.items():
        columns, key = TABLES[table]
        rows = _dedupe(table, rows)
        if table == "repositories":
            # A name can move to a new repository id (deleted and recreated): the name is unique.
            for row in rows:
                cur.execute("delete from raw.repositories where repo_full_name = %s and id <> %s", (row[1], row[0]))
        written[table] = warehouse.upsert(cur, f"raw.{table}", columns, key, rows)
    return written


def jsonb(value) -> psycopg2.extras.Json:
    return psycopg2.extras.Json(value)


def quarantine_rows(repo: str, kind: str, bad: list[tuple[str, str, object]]) -> list[tuple]:
    return [(repo, kind, key, reason[:500], jsonb(obj)) for key, reason, obj in bad]


def repository_row(node: dict) -> tuple:
    data = {k: v for k, v in node.items() if k != "latestPullRequest"}
    return (node["id"], node["nameWithOwner"], jsonb(data), node.get("updatedAt") or node.get("createdAt"))


def newest_pull_request(node: dict) -> dt.datetime | None:
    """The updatedAt of the repository's newest pull request, which the repositories query brings."""
    nodes = ((node.get("latestPullRequest") or {}).get("nodes")) or []
    return parse_time(nodes[0]["updatedAt"]) if nodes and nodes[0] else None


def pull_request_row(repo: str, node: dict, timeline: list[dict]) -> tuple:
    return (node["id"], repo, node["number"], jsonb(pull_request_data(node, timeline)), node["updatedAt"])


def review_rows(repo: str, pr: dict, reviews: list[dict]) -> list[tuple]:
    return [
        (r["id"], repo, pr["id"], pr["number"], jsonb(r), r.get("submittedAt") or r.get("createdAt"))
        for r in reviews
    ]


def commit_rows(repo: str, pr: dict, commits: list[dict]) -> list[tuple]:
    rows = []
    for node in commits:
        commit = node["commit"] if "commit" in node else node
        rows.append(
            (repo, pr["number"], commit["oid"], pr["id"], jsonb(commit), commit.get("committedDate") or commit.get("authoredDate"))
        )
    return rows


def replay_labels(events: list[dict]) -> list[dict]:
    """The labels on a pull request now, [{name}], from its LabeledEvent/UnlabeledEvent items
    in timeline (chronological) order; a label keeps the position of its latest addition."""
    labels: dict[str, None] = {}
    for event in events:
        name = ((event or {}).get("label") or {}).get("name")
        if not isinstance(name, str):
            continue
        kind = event.get("__typename")
        if kind == "LabeledEvent":
            labels.pop(name, None)
            labels[name] = None
        elif kind == "UnlabeledEvent":
            labels.pop(name, None)
    return [{"name": name} for name in labels]


def pull_request_data(node: dict, timeline: list[dict] | None = None) -> dict:
    """The stored pull request: nested connections removed, the timeline events (`timeline`:
    all of them, the nested page plus any overflow) turned into `readyForReview` (the first
    ReadyForReviewEvent, null when none) and `labels` (their replay)."""
    data = {k: v for k, v in node.items() if k not in ("reviews", "commits", "timeline")}
    if timeline is None:
        timeline = [e for e in ((node.get("timeline") or {}).get("nodes") or []) if e]
    ready = [e for e in timeline if e.get("__typename") == "ReadyForReviewEvent" and e.get("createdAt")]
    data["readyForReview"] = {"createdAt": ready[0]["createdAt"]} if ready else None
    data["labels"] = replay_labels(timeline)
    return data


def deployment_row(repo: str, node: dict, statuses: list[dict]) -> tuple:
    data = {k: v for k, v in node.items() if k != "statuses"}
    data["statuses"] = statuses
    return (node["id"], repo, jsonb(data), node.get("updatedAt") or node["createdAt"])


def release_row(repo: str, node: dict) -> tuple:
    return (node["id"], repo, jsonb(node), node.get("publishedAt") or node["createdAt"])


def issue_row(repo: str, node: dict) -> tuple:
    return (node["id"], repo, jsonb(issue_data(node)), node["updatedAt"])


def issue_data(node: dict) -> dict:
    data = dict(node)
    data["labels"] = [{"name": label["name"]} for label in ((node.get("labels") or {}).get("nodes") or []) if label]
    # The closer of the latest ClosedEvent, kept only when it is a pull request.
    events = [e for e in ((node.get("closedBy") or {}).get("nodes") or []) if e]
    closer = (events[-1].get("closer") if events else None) or {}
    data["closedBy"] = (
        {"__typename": "PullRequest", "id": closer["id"], "number": closer.get("number")}
        if closer.get("__typename") == "PullRequest" and closer.get("id") else None
    )
    return data


def workflow_run_row(repo: str, run: dict) -> tuple:
    # The embedded repository objects are large and repeat raw.repositories.
    data = {k: v for k, v in run.items() if k not in ("repository", "head_repository")}
    return (str(run["id"]), repo, jsonb(data), run.get("updated_at") or run["created_at"])
