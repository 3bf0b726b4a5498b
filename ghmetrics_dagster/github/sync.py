"""Ingestion: GitHub -> the `raw` tables, incremental, idempotent and resumable.

Streams (`ALL_STREAMS`) and the tables they write (docs/contracts.md):

- `repositories` -> raw.repositories. Always fetched first, 100 repositories per GraphQL
  query (1 point); it also resolves names and finds unknown repositories.
- `pull_requests` -> raw.pull_requests, raw.pull_request_reviews, raw.pull_request_commits.
  GraphQL pages of `queries.PR_PAGE_SIZE` PRs ordered by updatedAt desc with timeline events
  (ready for review, labeled, unlabeled), reviews and commits nested; overflow events, reviews
  and commits are paged separately for those PRs only. The events become `readyForReview` and
  `labels` (their replay) in the stored object.
  Paging stops at the watermark (max updatedAt of the last complete pass) minus `overlap`.
- `deployments` -> raw.deployments (statuses nested), ordered by createdAt desc; re-reads
  deployments whose statuses are not final, each environment's active (latest successful)
  deployment, which will turn INACTIVE, and always the last `lookback`.
- `releases` -> raw.releases (all releases whenever the listing changed; there are few).
- `workflow_runs` -> raw.workflow_runs, REST /actions/runs (GraphQL has no Actions),
  newest first, back to the earliest unfinished run or `lookback`.
- `issues` -> raw.issues, GraphQL issues(filterBy: {since}) ordered by updatedAt desc, with
  the closer of each issue's latest ClosedEvent (`closedBy`, when it is a pull request).

Cheap refresh: the repositories query also returns each repository's newest pull-request
updatedAt, which decides whether the pull-request stream has anything to read. For the other
streams a conditional REST request on a small listing (`If-None-Match` with the ETag kept in
raw.sync_state for the token that got it) answers 304 when nothing changed; a 304 costs no
rate limit and skips the stream. An unchanged refresh therefore costs 0 REST units and
1 GraphQL point per 100 repositories.

Resumability: every page is committed together with raw.sync_state.cursor (the next page
cursor and the watermark candidate so far); the watermark and ETag advance only in the same
transaction as the stream's last page. A run killed at any point and run again continues from
the cursor; upserts make repeated rows harmless.

Errors fail only their repository and stream: `SyncReport.repositories[i].error` says what
happened in one line; the other repositories complete.

Entry points: `sync_repositories`, `sync_user`, `resolve_user_repositories`.
`progress` is any `Callable[[str], None]` (a logger method, a Dagster `context.log.info`,
a CLI progress bar); it is called from worker threads.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg2
import psycopg2.extras

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.github import errors, queries, validate
from ghmetrics_dagster.github.client import GitHubClient, PageSize, Stats, format_time, graphql_error, parse_time
from ghmetrics_dagster.warehouse import app_data

log = logging.getLogger("ghmetrics.github.sync")

ALL_STREAMS = ("repositories", "pull_requests", "deployments", "releases", "workflow_runs", "issues")

STREAM_TABLES = {
    "repositories": ("repositories",),
    "pull_requests": ("pull_requests", "pull_request_reviews", "pull_request_commits"),
    "deployments": ("deployments",),
    "releases": ("releases",),
    "workflow_runs": ("workflow_runs",),
    "issues": ("issues",),
}

# table -> (columns, key)
_TABLES = {
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

TERMINAL_DEPLOYMENT_STATES = {"SUCCESS", "FAILURE", "ERROR", "INACTIVE"}
_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")

Progress = Callable[[str], None]


@dataclass
class Options:
    overlap: dt.timedelta = dt.timedelta(minutes=5)
    # Deployments and workflow runs created within this window are re-read whenever their
    # listing changed: statuses and re-runs change objects that are not the newest.
    lookback: dt.timedelta = dt.timedelta(days=7)
    max_workers: int = 8


@dataclass
class StreamResult:
    stream: str
    status: str = "pending"  # ok, unchanged, failed, postponed (rate limited past the caps), skipped
    rows: dict[str, int] = field(default_factory=dict)
    pages: int = 0
    error: str | None = None
    stats: Stats = field(default_factory=Stats)
    duration_s: float = 0.0
    quarantined: int = 0  # malformed objects set aside in raw.quarantine


@dataclass
class RepositoryResult:
    repo: str
    streams: dict[str, StreamResult] = field(default_factory=dict)
    error: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.status not in ("failed", "postponed") for s in self.streams.values())

    @property
    def postponed(self) -> bool:
        """Rate limited past the client's waiting caps: nothing is wrong with it, it waits for the next run."""
        return any(s.status == "postponed" for s in self.streams.values()) or bool(
            self.error and self.error.startswith("postponed")
        )

    @property
    def errors(self) -> list[str]:
        found = [self.error] if self.error else []
        found += [f"{s.stream}: {s.error}" for s in self.streams.values() if s.error]
        return found


@dataclass
class SyncReport:
    repositories: list[RepositoryResult]
    stats: Stats
    duration_s: float
    rate_limit_remaining: dict[str, int | None]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.repositories)

    @property
    def failed(self) -> list[RepositoryResult]:
        return [r for r in self.repositories if not r.ok]

    def rows_upserted(self) -> dict[str, int]:
        totals = {table: 0 for tables in STREAM_TABLES.values() for table in tables}
        for repo in self.repositories:
            for stream in repo.streams.values():
                for table, count in stream.rows.items():
                    totals[table] += count
        return totals

    def metadata(self) -> dict:
        """Flat, JSON-friendly numbers for Dagster metadata and the CLI (no secrets)."""
        return {
            "repositories": len(self.repositories),
            "repositories_failed": len(self.failed),
            "repositories_postponed": sorted(r.repo for r in self.repositories if r.postponed),
            "rows_upserted": self.rows_upserted(),
            "rows_quarantined": sum(s.quarantined for r in self.repositories for s in r.streams.values()),
            **self.stats.as_dict(),
            "rate_limit_remaining": self.rate_limit_remaining,
            "duration_s": round(self.duration_s, 3),
            "errors": {r.repo: "; ".join(r.errors) for r in self.failed},
        }

    def summary(self) -> str:
        rows = sum(self.rows_upserted().values())
        postponed = sum(r.postponed for r in self.repositories)
        return (
            f"{len(self.repositories) - len(self.failed)}/{len(self.repositories)} repositories synced, "
            + (f"{postponed} postponed (rate limits), " if postponed else "")
            + f"{rows} rows upserted, {self.stats.requests} requests, {self.stats.graphql_points} GraphQL points, "
            f"{self.stats.rest_units} REST units, {self.stats.not_modified} not modified, "
            f"{self.stats.retries} retries in {self.duration_s:.1f} s"
        )


# -- Postgres ---------------------------------------------------------------------------------


def _dedupe(table: str, rows: list[tuple]) -> list[tuple]:
    columns, key = _TABLES[table]
    positions = [columns.index(k) for k in key]
    unique = {}
    for row in rows:
        unique[tuple(row[p] for p in positions)] = row
    return list(unique.values())


def _write(cur, rows_by_table: dict[str, list[tuple]]) -> dict[str, int]:
    written = {}
    for table, rows in rows_by_table.items():
        columns, key = _TABLES[table]
        rows = _dedupe(table, rows)
        if table == "repositories":
            # A name can move to a new repository id (deleted and recreated): the name is unique.
            for row in rows:
                cur.execute("delete from raw.repositories where repo_full_name = %s and id <> %s", (row[1], row[0]))
        written[table] = warehouse.upsert(cur, f"raw.{table}", columns, key, rows)
    return written


def _load_state(cur, repo: str, stream: str) -> dict:
    cur.execute(
        "select watermark, cursor, etag, etag_token_fingerprint, last_success_at from raw.sync_state"
        " where repo_full_name = %s and stream = %s",
        (repo, stream),
    )
    row = cur.fetchone()
    keys = ("watermark", "cursor", "etag", "etag_token_fingerprint", "last_success_at")
    return dict(zip(keys, row)) if row else dict.fromkeys(keys)


def _save_state(cur, repo: str, stream: str, *, rows: int = 0, stored: bool = False, **values) -> None:
    """With `stored`, rows_total becomes the number of rows the stream's tables hold for the
    repository (what a pass leaves behind), not a sum of rows written, which counts re-reads."""
    columns = ["repo_full_name", "stream", *values, "rows_total", "updated_at"]
    placeholders = ", ".join(["%s"] * (len(columns) - 1) + ["now()"])
    updates = ", ".join(f"{c} = excluded.{c}" for c in values)
    total = "excluded.rows_total" if stored else "raw.sync_state.rows_total + excluded.rows_total"
    sql = (
        f"insert into raw.sync_state ({', '.join(columns)}) values ({placeholders}) "
        f"on conflict (repo_full_name, stream) do update set "
        f"{updates + ', ' if updates else ''}rows_total = {total}, updated_at = now()"
    )
    if stored:
        counts = " + ".join(f"(select count(*) from raw.{t} where repo_full_name = %s)" for t in STREAM_TABLES[stream])
        cur.execute(f"select {counts}", [repo] * len(STREAM_TABLES[stream]))
        rows = cur.fetchone()[0]
    cur.execute(sql, (repo, stream, *values.values(), rows))


def _never_back(old: dt.datetime | None, new: dt.datetime) -> dt.datetime:
    """A watermark moves forward only: a pass that read nothing new must not re-apply the
    look-back to a watermark that already includes it (each empty page cost 7 more days)."""
    return max(old, new) if old is not None else new


def _jsonb(value) -> psycopg2.extras.Json:
    return psycopg2.extras.Json(value)


def quarantine_rows(repo: str, kind: str, bad: list[tuple[str, str, object]]) -> list[tuple]:
    return [(repo, kind, key, reason[:500], _jsonb(obj)) for key, reason, obj in bad]


# -- row shapes (docs/contracts.md) ----------------------------------------------------------


def _repository_row(node: dict) -> tuple:
    data = {k: v for k, v in node.items() if k != "latestPullRequest"}
    return (node["id"], node["nameWithOwner"], _jsonb(data), node.get("updatedAt") or node.get("createdAt"))


def _newest_pull_request(node: dict) -> dt.datetime | None:
    nodes = ((node.get("latestPullRequest") or {}).get("nodes")) or []
    return parse_time(nodes[0]["updatedAt"]) if nodes and nodes[0] else None


def _review_rows(repo: str, pr: dict, reviews: list[dict]) -> list[tuple]:
    return [
        (r["id"], repo, pr["id"], pr["number"], _jsonb(r), r.get("submittedAt") or r.get("createdAt"))
        for r in reviews
    ]


def _commit_rows(repo: str, pr: dict, commits: list[dict]) -> list[tuple]:
    rows = []
    for node in commits:
        commit = node["commit"] if "commit" in node else node
        rows.append(
            (repo, pr["number"], commit["oid"], pr["id"], _jsonb(commit), commit.get("committedDate") or commit.get("authoredDate"))
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


def _pull_request_data(node: dict, timeline: list[dict] | None = None) -> dict:
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


def _deployment_data(node: dict, statuses: list[dict]) -> dict:
    data = {k: v for k, v in node.items() if k != "statuses"}
    data["statuses"] = statuses
    return data


def _issue_data(node: dict) -> dict:
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


def _workflow_run_data(run: dict) -> dict:
    # The embedded repository objects are large and repeat raw.repositories.
    return {k: v for k, v in run.items() if k not in ("repository", "head_repository")}


# -- the work ---------------------------------------------------------------------------------


@dataclass
class _Repo:
    full_name: str  # as GitHub spells it
    owner: str
    name: str
    node: dict


class _PageSizes:
    """The adaptive page size of each kind of page, shared by all repositories of one sync, so
    a size GitHub rejected (502/504) for one repository is not first tried again for the next."""

    def __init__(self):
        self.pull_requests = PageSize(queries.PR_PAGE_SIZE, queries.PR_MIN_PAGE_SIZE, restore_after=10)
        self.deployments = PageSize(queries.DEPLOYMENT_PAGE_SIZE, queries.PR_MIN_PAGE_SIZE, restore_after=10)
        self.releases = PageSize(queries.RELEASE_PAGE_SIZE, queries.PR_MIN_PAGE_SIZE, restore_after=10)
        self.issues = PageSize(queries.ISSUE_PAGE_SIZE, queries.PR_MIN_PAGE_SIZE, restore_after=10)


class _StreamJob:
    def __init__(self, url: str, client: GitHubClient, repo: _Repo, stream: str, progress: Progress | None,
                 options: Options, pages: _PageSizes):
        self.pages = pages
        self.url = url
        self.client = client
        self.repo = repo
        self.stream = stream
        self.progress = progress
        self.options = options
        self.result = StreamResult(stream)

    def say(self, message: str) -> None:
        if self.progress is not None:
            try:
                self.progress(f"{self.repo.full_name} {self.stream}: {message}")
            except Exception:  # a broken progress bar must not break ingestion
                log.exception("progress callback failed")

    def add_rows(self, written: dict[str, int]) -> int:
        """Counts the rows written; returns those of the stream's own tables (not quarantined)."""
        self.result.quarantined += written.pop("quarantine", 0)
        for table, count in written.items():
            self.result.rows[table] = self.result.rows.get(table, 0) + count
        return sum(written.values())

    def quarantine(self, kind: str, objects: list) -> tuple[list[dict], list[tuple]]:
        """(valid objects, quarantine rows) of `objects`, logging each one set aside."""
        good, bad = validate.split(kind, objects)
        for key, reason, _ in bad:
            log.warning("%s %s: %s %s quarantined: %s", self.repo.full_name, self.stream, kind, key, reason)
        return good, quarantine_rows(self.repo.full_name, kind, bad)

    def vars(self, **extra) -> dict:
        return {"owner": self.repo.owner, "name": self.repo.name, **extra}


def _check(job: _StreamJob, state: dict, path: str, params: dict):
    """The conditional request: (response, unchanged)."""
    response = job.client.rest(
        path, params, etag=state["etag"], etag_fingerprint=state["etag_token_fingerprint"]
    )
    unchanged = response.not_modified and not state["cursor"] and state["last_success_at"] is not None
    return response, unchanged


def _mark_unchanged(job: _StreamJob, conn, how: str = "unchanged (304)") -> None:
    with conn.cursor() as cur:
        _save_state(cur, job.repo.full_name, job.stream, last_success_at=dt.datetime.now(dt.UTC), last_error=None)
    conn.commit()
    job.result.status = "unchanged"
    job.say(how)


def _graphql_stream(
    job: _StreamJob,
    conn,
    *,
    check: tuple[str, dict] | None,
    unchanged_if: Callable[[dict], bool] | None = None,
    query: str,
    connection: str,
    page: PageSize,
    since_of: Callable[[dict], dt.datetime | None],
    time_field: str,
    extra_vars: Callable[[dt.datetime | None], dict] = lambda since: {},
    rows_of: Callable[[list[dict]], dict[str, list[tuple]]],
    fold: Callable[[dict, list[dict]], dict],
    finish: Callable[[dict, dict], dt.datetime | None],
) -> None:
    """A GraphQL connection read newest first, page by page, each page committed with its cursor.

    `since_of(state)` gives the cutoff (older nodes end the pass), `fold(acc, nodes)` folds
    nodes into the watermark candidate kept in the cursor, `finish(acc, state)` turns it into
    the new watermark.
    """
    repo = job.repo.full_name
    with conn.cursor() as cur:
        state = _load_state(cur, repo, job.stream)
    conn.commit()
    etag_response = None
    completed = not state["cursor"] and state["last_success_at"] is not None
    if unchanged_if is not None and completed and unchanged_if(state):
        _mark_unchanged(job, conn, "unchanged")
        return
    if check is not None:
        etag_response, unchanged = _check(job, state, *check)
        if unchanged:
            _mark_unchanged(job, conn)
            return
    resume = json.loads(state["cursor"]) if state["cursor"] else {}
    after = resume.get("after")
    acc = resume.get("acc", {})
    since = since_of(state)
    while True:
        data = job.client.graphql(query, job.vars(after=after, **extra_vars(since)), page=page)
        repository = data.get("repository")
        if repository is None:
            raise errors.RepositoryNotFound(f"repository {repo} is gone or the token lost access to it")
        listing = repository.get(connection) if isinstance(repository, dict) else None
        if validate.problem({"nodes": "list", "pageInfo": ({"hasNextPage": "bool", "endCursor": "str?"}, False)}, listing):
            raise errors.MalformedResponse(f"GitHub's {connection} page of {repo} is malformed; try again later")
        nodes, quarantined = job.quarantine(job.stream, [n for n in listing["nodes"] if n])
        kept = [n for n in nodes if since is None or parse_time(n[time_field]) >= since]
        # A page cut short by quarantine still ends the pass only on an old object or the last page.
        done = len(kept) < len(nodes) or not listing["pageInfo"]["hasNextPage"]
        rows = rows_of(kept)
        rows["quarantine"] = rows.get("quarantine", []) + quarantined
        acc = fold(acc, kept)
        job.result.pages += 1
        with conn.cursor() as cur:
            written = job.add_rows(_write(cur, rows))
            if done:
                values = {
                    "cursor": None,
                    "last_success_at": dt.datetime.now(dt.UTC),
                    "last_error": None,
                }
                watermark = finish(acc, state)
                if watermark is not None:
                    values["watermark"] = _never_back(state["watermark"], watermark)
                if etag_response is not None and not etag_response.not_modified:
                    values["etag"] = etag_response.etag
                    values["etag_token_fingerprint"] = etag_response.token_fingerprint
                _save_state(cur, repo, job.stream, stored=True, **values)
            else:
                after = listing["pageInfo"]["endCursor"]
                _save_state(cur, repo, job.stream, rows=written, cursor=json.dumps({"after": after, "acc": acc}))
        conn.commit()
        job.say(f"page {job.result.pages}: {len(kept)} objects, {written} rows")
        if done:
            break
    job.result.status = "ok"


def _max_time(acc: dict, nodes: list[dict], field_name: str) -> dict:
    times = [n[field_name] for n in nodes if n.get(field_name)]
    if acc.get("max"):
        times.append(acc["max"])
    return {**acc, "max": max(times, key=parse_time)} if times else acc


def _newer_watermark(acc: dict, state: dict) -> dt.datetime | None:
    new = parse_time(acc.get("max"))
    old = state["watermark"]
    if new is None:
        return old
    return max(new, old) if old else new


def _since_overlap(job: _StreamJob) -> Callable[[dict], dt.datetime | None]:
    return lambda state: state["watermark"] - job.options.overlap if state["watermark"] else None


def _sync_pull_requests(job: _StreamJob, conn) -> None:
    repo = job.repo.full_name

    def rows_of(nodes: list[dict]) -> dict[str, list[tuple]]:
        # PRs inside the overlap window that are stored with the same updatedAt are unchanged
        # (a new review or commit moves updatedAt): skip them and their overflow requests.
        with conn.cursor() as cur:
            cur.execute(
                "select id, updated_at from raw.pull_requests where id = any(%s)", ([n["id"] for n in nodes],)
            )
            stored = dict(cur.fetchall())
        nodes = [n for n in nodes if stored.get(n["id"]) != parse_time(n["updatedAt"])]
        prs, reviews, commits, quarantined = [], [], [], []
        for node in nodes:
            timeline = [e for e in node["timeline"]["nodes"] if e]
            if node["timeline"]["pageInfo"]["hasNextPage"]:
                more = _overflow(job, queries.PULL_REQUEST_TIMELINE, node["id"], "timelineItems", node["timeline"]["pageInfo"]["endCursor"])
                reason = validate.problem(validate.SPECS["pull_request_timeline"], {"nodes": more})
                if reason:
                    # Labels replayed from part of the events would be wrong: set the PR aside.
                    quarantined += quarantine_rows(repo, job.stream, [(node["id"], f"timelineItems overflow: {reason}", node)])
                    log.warning("%s %s: pull request %s quarantined: %s", repo, job.stream, node["id"], reason)
                    continue
                timeline += more
            prs.append((node["id"], repo, node["number"], _jsonb(_pull_request_data(node, timeline)), node["updatedAt"]))
            review_nodes = list(node["reviews"]["nodes"])
            if node["reviews"]["pageInfo"]["hasNextPage"]:
                review_nodes += _overflow(job, queries.PULL_REQUEST_REVIEWS, node["id"], "reviews", node["reviews"]["pageInfo"]["endCursor"])
            commit_nodes = list(node["commits"]["nodes"])
            if node["commits"]["pageInfo"]["hasNextPage"]:
                commit_nodes += _overflow(job, queries.PULL_REQUEST_COMMITS, node["id"], "commits", node["commits"]["pageInfo"]["endCursor"])
            review_nodes, bad_reviews = job.quarantine("pull_request_reviews", [r for r in review_nodes if r])
            commit_nodes, bad_commits = job.quarantine("pull_request_commits", [c for c in commit_nodes if c])
            reviews += _review_rows(repo, node, review_nodes)
            commits += _commit_rows(repo, node, commit_nodes)
            quarantined += bad_reviews + bad_commits
        return {"pull_requests": prs, "pull_request_reviews": reviews, "pull_request_commits": commits,
                "quarantine": quarantined}

    def unchanged(state: dict) -> bool:
        # The repositories query brought the newest updatedAt: nothing newer, nothing to read.
        newest = _newest_pull_request(job.repo.node)
        return newest is None or (state["watermark"] is not None and newest <= state["watermark"])

    _graphql_stream(
        job,
        conn,
        check=None,
        unchanged_if=unchanged,
        query=queries.PULL_REQUESTS,
        connection="pullRequests",
        page=job.pages.pull_requests,
        since_of=_since_overlap(job),
        time_field="updatedAt",
        rows_of=rows_of,
        fold=lambda acc, nodes: _max_time(acc, nodes, "updatedAt"),
        finish=_newer_watermark,
    )


def _overflow(job: _StreamJob, query: str, node_id: str, connection: str, after: str | None) -> list[dict]:
    found = []
    while True:
        data = job.client.graphql(query, {"id": node_id, "after": after})
        listing = (data.get("node") or {}).get(connection)
        if not listing:
            return found
        found += [n for n in listing["nodes"] if n]
        if not listing["pageInfo"]["hasNextPage"]:
            return found
        after = listing["pageInfo"]["endCursor"]


def _sync_deployments(job: _StreamJob, conn) -> None:
    repo = job.repo.full_name
    lookback = job.options.lookback

    def rows_of(nodes: list[dict]) -> dict[str, list[tuple]]:
        rows, quarantined = [], []
        for node in nodes:
            statuses = list(node["statuses"]["nodes"])
            if node["statuses"]["pageInfo"]["hasNextPage"]:
                statuses += _overflow(job, queries.DEPLOYMENT_STATUSES_PAGE, node["id"], "statuses", node["statuses"]["pageInfo"]["endCursor"])
            statuses, bad = job.quarantine("deployment_statuses", [s for s in statuses if s])
            quarantined += bad
            rows.append((node["id"], repo, _jsonb(_deployment_data(node, statuses)), node.get("updatedAt") or node["createdAt"]))
        return {"deployments": rows, "quarantine": quarantined}

    def fold(acc: dict, nodes: list[dict]) -> dict:
        acc = _max_time(acc, nodes, "createdAt")
        open_times = [n["createdAt"] for n in nodes if not _deployment_final(n)]
        # The newest successful deployment of each environment is still active: GitHub adds an
        # INACTIVE status to it when the next one succeeds, however old it is by then.
        active = dict(acc.get("active", {}))
        for node in nodes:  # newest first
            if _latest_status(node) == "SUCCESS" and node["environment"] not in active:
                active[node["environment"]] = node["createdAt"]
        acc["active"] = active
        if acc.get("open"):
            open_times.append(acc["open"])
        if open_times:
            acc["open"] = min(open_times, key=parse_time)
        return acc

    def finish(acc: dict, state: dict) -> dt.datetime | None:
        newest = _newer_watermark(acc, state)
        if newest is None:
            return None
        # The watermark is the creation time from which the next pass re-reads.
        candidates = [newest - lookback]
        candidates += [parse_time(t) for t in [acc.get("open"), *acc.get("active", {}).values()] if t]
        return min(candidates)

    # The stored watermark already includes the look-back; keep it there.
    _graphql_stream(
        job,
        conn,
        check=(f"/repos/{repo}/deployments", {"per_page": 100}),
        query=queries.DEPLOYMENTS,
        connection="deployments",
        page=job.pages.deployments,
        since_of=lambda state: state["watermark"] - job.options.overlap if state["watermark"] else None,
        time_field="createdAt",
        rows_of=rows_of,
        fold=fold,
        finish=finish,
    )


def _latest_status(node: dict) -> str | None:
    statuses = [s for s in node["statuses"]["nodes"] if s]
    if not statuses or node["statuses"]["pageInfo"]["hasNextPage"]:
        return None
    return max(statuses, key=lambda s: parse_time(s["createdAt"]))["state"]


def _deployment_final(node: dict) -> bool:
    return _latest_status(node) in TERMINAL_DEPLOYMENT_STATES


def _sync_releases(job: _StreamJob, conn) -> None:
    repo = job.repo.full_name

    def rows_of(nodes: list[dict]) -> dict[str, list[tuple]]:
        return {"releases": [(n["id"], repo, _jsonb(n), n.get("publishedAt") or n["createdAt"]) for n in nodes]}

    _graphql_stream(
        job,
        conn,
        check=(f"/repos/{repo}/releases", {"per_page": 100}),
        query=queries.RELEASES,
        connection="releases",
        page=job.pages.releases,
        # Releases change in place (drafts get published) and are few: read them all.
        since_of=lambda state: None,
        time_field="createdAt",
        rows_of=rows_of,
        fold=lambda acc, nodes: _max_time(acc, nodes, "createdAt"),
        finish=_newer_watermark,
    )


def _sync_issues(job: _StreamJob, conn) -> None:
    repo = job.repo.full_name

    def rows_of(nodes: list[dict]) -> dict[str, list[tuple]]:
        return {"issues": [(n["id"], repo, _jsonb(_issue_data(n)), n["updatedAt"]) for n in nodes]}

    _graphql_stream(
        job,
        conn,
        check=(f"/repos/{repo}/issues", {"state": "all", "sort": "updated", "direction": "desc", "per_page": 1}),
        query=queries.ISSUES,
        connection="issues",
        page=job.pages.issues,
        since_of=_since_overlap(job),
        time_field="updatedAt",
        extra_vars=lambda since: {"since": format_time(since) if since else None},
        rows_of=rows_of,
        fold=lambda acc, nodes: _max_time(acc, nodes, "updatedAt"),
        finish=_newer_watermark,
    )


def _sync_workflow_runs(job: _StreamJob, conn) -> None:
    repo = job.repo.full_name
    path = f"/repos/{repo}/actions/runs"
    with conn.cursor() as cur:
        state = _load_state(cur, repo, job.stream)
    conn.commit()
    resume = json.loads(state["cursor"]) if state["cursor"] else {}
    since = state["watermark"] - job.options.overlap if state["watermark"] else None
    first, unchanged = _check(job, state, path, {"per_page": 100})
    if unchanged:
        _mark_unchanged(job, conn)
        return
    page_number = resume.get("page", 1)
    acc = resume.get("acc", {})
    response = first if page_number == 1 and not first.not_modified else None
    while True:
        if response is None:
            response = job.client.rest(path, {"per_page": 100, "page": page_number})
        listing = response.data.get("workflow_runs") if isinstance(response.data, dict) else None
        if not isinstance(listing, list):
            raise errors.MalformedResponse(f"GitHub's workflow runs page of {repo} is malformed; try again later")
        runs, quarantined = job.quarantine("workflow_runs", [r for r in listing if r])
        kept = [r for r in runs if since is None or parse_time(r["created_at"]) >= since]
        total_count = (response.data or {}).get("total_count")
        more = response.next_url is not None or (isinstance(total_count, int) and total_count > page_number * 100)
        done = len(kept) < len(runs) or len(runs) < 100 or not more
        acc = _max_time(acc, kept, "created_at")
        open_times = [r["created_at"] for r in kept if r.get("status") != "completed"]
        if acc.get("open"):
            open_times.append(acc["open"])
        if open_times:
            acc["open"] = min(open_times, key=parse_time)
        job.result.pages += 1
        rows = {
            "workflow_runs": [(str(r["id"]), repo, _jsonb(_workflow_run_data(r)), r.get("updated_at") or r["created_at"]) for r in kept],
            "quarantine": quarantined,
        }
        with conn.cursor() as cur:
            written = job.add_rows(_write(cur, rows))
            if done:
                values = {"cursor": None, "last_success_at": dt.datetime.now(dt.UTC), "last_error": None}
                newest = _newer_watermark(acc, state)
                if newest is not None:
                    candidates = [newest - job.options.lookback]
                    if acc.get("open"):
                        candidates.append(parse_time(acc["open"]))
                    values["watermark"] = _never_back(state["watermark"], min(candidates))
                if not first.not_modified:
                    values["etag"] = first.etag
                    values["etag_token_fingerprint"] = first.token_fingerprint
                _save_state(cur, repo, job.stream, stored=True, **values)
            else:
                page_number += 1
                _save_state(cur, repo, job.stream, rows=written, cursor=json.dumps({"page": page_number, "acc": acc}))
        conn.commit()
        job.say(f"page {job.result.pages}: {len(kept)} runs")
        if done:
            break
        response = None
    job.result.status = "ok"


_STREAM_FUNCTIONS = {
    "pull_requests": _sync_pull_requests,
    "deployments": _sync_deployments,
    "releases": _sync_releases,
    "workflow_runs": _sync_workflow_runs,
    "issues": _sync_issues,
}


def _one_line(exc: BaseException, client: GitHubClient) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, errors.GitHubError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return client.redact(text)[:500]


def _run_stream(url: str, client: GitHubClient, repo: _Repo, stream: str, progress, options, pages) -> StreamResult:
    job = _StreamJob(url, client, repo, stream, progress, options, pages)
    started = time.monotonic()
    with client.scope() as stats:
        try:
            with warehouse.connect(url) as conn:
                try:
                    _STREAM_FUNCTIONS[stream](job, conn)
                except Exception as exc:
                    conn.rollback()
                    postponed = isinstance(exc, errors.RateLimitExhausted)
                    job.result.status = "postponed" if postponed else "failed"
                    job.result.error = ("postponed: " if postponed else "") + _one_line(exc, client)
                    with conn.cursor() as cur:
                        _save_state(cur, repo.full_name, stream, last_error=job.result.error)
                    conn.commit()
        except Exception as exc:  # the warehouse itself failed
            job.result.status = "failed"
            job.result.error = job.result.error or _one_line(exc, client)
    job.result.stats = stats
    job.result.duration_s = time.monotonic() - started
    if job.result.error:
        log.warning("%s %s failed: %s", repo.full_name, stream, job.result.error)
        job.say(f"failed: {job.result.error}")
    return job.result


def fetch_repositories(client: GitHubClient, names: list[str]) -> dict[str, dict | str]:
    """name (lower case) -> repository node, or an error message."""
    found: dict[str, dict | str] = {}
    for start in range(0, len(names), queries.REPOSITORY_BATCH):
        batch = names[start : start + queries.REPOSITORY_BATCH]
        variables = {}
        for i, full_name in enumerate(batch):
            owner, name = full_name.split("/", 1)
            variables[f"o{i}"] = owner
            variables[f"n{i}"] = name
        data, gql_errors = client.graphql(queries.repositories_query(len(batch)), variables, allow_partial=True)
        by_alias = {}
        for error in gql_errors:
            path = error.get("path") or []
            if path:
                by_alias[str(path[0])] = error
            elif not data:
                raise graphql_error(gql_errors, client.redact)
        for i, full_name in enumerate(batch):
            node = data.get(f"r{i}") if isinstance(data, dict) else None
            if node is not None and node != {}:  # any other shape is checked, then quarantined
                found[full_name.lower()] = node
                continue
            error = by_alias.get(f"r{i}", {})
            if error.get("type") == "FORBIDDEN":
                found[full_name.lower()] = f"repository {full_name}: the token may not read it (FORBIDDEN); grant it access"
            else:
                found[full_name.lower()] = (
                    f"repository {full_name} not found or not visible to the token; "
                    "check the name in app.user_repositories and the token's access"
                )
    return found


def sync_repositories(
    url: str,
    client: GitHubClient,
    repo_full_names: Iterable[str],
    streams: Iterable[str] = ALL_STREAMS,
    progress: Progress | None = None,
    options: Options | None = None,
) -> SyncReport:
    """Syncs `streams` of the repositories into raw; never raises for one repository's error."""
    options = options or Options()
    streams = list(dict.fromkeys(streams))
    unknown = [s for s in streams if s not in ALL_STREAMS]
    if unknown:
        raise ValueError(f"unknown stream(s) {', '.join(unknown)}; choose from {', '.join(ALL_STREAMS)}")
    started = time.monotonic()
    names = list({n.strip().lower(): n.strip() for n in repo_full_names if n and n.strip()}.values())
    results = {n: RepositoryResult(n) for n in names}
    valid = []
    for full_name in names:
        if _NAME.match(full_name):
            valid.append(full_name)
        else:
            results[full_name].error = f"{full_name!r} is not a repository name; use owner/name"
    total = Stats()
    repos: list[_Repo] = []
    if valid:
        with client.scope() as stats:
            try:
                nodes = fetch_repositories(client, valid)
            except Exception as exc:
                message = ("postponed: " if isinstance(exc, errors.RateLimitExhausted) else "") + _one_line(exc, client)
                nodes = {n.lower(): message for n in valid}
            quarantined = []
            for name, node in nodes.items():
                reason = validate.problem(validate.SPECS["repositories"], node) if isinstance(node, dict) else None
                if reason:
                    log.warning("repository %s quarantined: %s", name, reason)
                    quarantined += quarantine_rows(name, "repositories", [(validate.object_key(node), reason, node)])
                    nodes[name] = f"GitHub returned a malformed repository object ({reason}); quarantined in raw.quarantine"
            stored = [n for n in nodes.values() if isinstance(n, dict)] if "repositories" in streams else []
            renames = {
                given: nodes[given.lower()]["nameWithOwner"]
                for given in valid
                if isinstance(nodes[given.lower()], dict) and nodes[given.lower()]["nameWithOwner"] != given
            }
            if quarantined or stored or renames:
                with warehouse.connect(url) as conn, conn.cursor() as cur:
                    canonicalise_registrations(cur, renames)
                    _write(cur, {"quarantine": quarantined, "repositories": [_repository_row(n) for n in stored]})
                    for node in stored:
                        _save_state(cur, node["nameWithOwner"], "repositories", stored=True,
                                    last_success_at=dt.datetime.now(dt.UTC), last_error=None)
        _add(total, stats)
        seen: dict[str, str] = {}
        for full_name in valid:
            node = nodes[full_name.lower()]
            result = results[full_name]
            if isinstance(node, str):
                result.error = node
                if node.endswith("quarantined in raw.quarantine"):
                    result.streams["repositories"] = StreamResult("repositories", status="failed", quarantined=1)
                if progress:
                    progress(f"{full_name}: {node}")
                continue
            if "repositories" in streams:
                result.streams["repositories"] = StreamResult("repositories", status="ok", rows={"repositories": 1}, pages=1)
            if node.get("isArchived"):
                result.note = "archived: ingested as it is, nothing new will arrive"
            if node.get("isEmpty"):
                result.note = "empty repository: it has no commits yet"
            canonical = node["nameWithOwner"]
            if canonical in seen:  # a renamed repository listed under its old and new names
                result.note = f"same repository as {seen[canonical]}"
                continue
            seen[canonical] = full_name
            owner, name = canonical.split("/", 1)
            repos.append(_Repo(canonical, owner, name, node))
            result.repo = canonical
        if progress:
            progress(f"{len(repos)}/{len(names)} repositories found ({stats.graphql_points} GraphQL points)")

    tasks = [(repo, s) for s in streams if s != "repositories" for repo in repos]
    # Longest streams first so the pool's tail is short.
    order = {s: i for i, s in enumerate(["pull_requests", "workflow_runs", "issues", "deployments", "releases"])}
    tasks.sort(key=lambda t: order[t[1]])
    lock = threading.Lock()
    pages = _PageSizes()
    if tasks:
        with ThreadPoolExecutor(max_workers=max(1, options.max_workers), thread_name_prefix="ghsync") as pool:
            futures = [
                (repo, stream, pool.submit(_run_stream, url, client, repo, stream, progress, options, pages))
                for repo, stream in tasks
            ]
            by_repo = {r.repo: r for r in results.values() if r.error is None}
            for repo, stream, future in futures:
                stream_result = future.result()
                with lock:
                    _add(total, stream_result.stats)
                    by_repo[repo.full_name].streams[stream] = stream_result
    total.rate_limit_remaining = {k: v for k, v in client.rate_limit_remaining().items() if v is not None}
    report = SyncReport(
        repositories=list(results.values()),
        stats=total,
        duration_s=time.monotonic() - started,
        rate_limit_remaining=client.rate_limit_remaining(),
    )
    if progress:
        progress(report.summary())
    return report


def canonicalise_registrations(cur, renames: dict[str, str]) -> None:
    """Registrations written as `ACME/API` (or under a repository's old name) take GitHub's
    spelling, the one the raw tables use, so the user's scope is not silently empty."""
    for given, canonical in renames.items():
        app_data.rename_registrations(cur, given, canonical)


def _add(total: Stats, part: Stats) -> None:
    for name in (
        "rest_requests", "rest_units", "graphql_requests", "graphql_points", "not_modified",
        "retries", "secondary_limit_waits", "page_size_reductions", "rate_limit_waits_s",
    ):
        setattr(total, name, getattr(total, name) + getattr(part, name))


def resolve_user_repositories(url: str, client: GitHubClient, login: str) -> list[str]:
    """The user's repositories: app.user_repositories, or else the user's own, collaborator
    and organisation repositories from the API."""
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        configured = app_data.user_repositories(cur, login)
    if configured:
        return configured
    names: list[str] = []
    organizations: list[str] = []
    after = None
    while True:
        data = client.graphql(queries.USER_REPOSITORIES, {"login": login, "after": after})
        user = data.get("user")
        if user is None:
            raise errors.NotFound(f"GitHub user {login!r} not found; check the login")
        listing = user["repositories"]
        names += [n["nameWithOwner"] for n in listing["nodes"] if n]
        if after is None:
            organizations = [o["login"] for o in (user.get("organizations") or {}).get("nodes", []) if o]
        if not listing["pageInfo"]["hasNextPage"]:
            break
        after = listing["pageInfo"]["endCursor"]
    for org in organizations:
        after = None
        while True:
            data = client.graphql(queries.ORGANIZATION_REPOSITORIES, {"login": org, "after": after})
            listing = (data.get("organization") or {}).get("repositories")
            if not listing:
                break
            names += [n["nameWithOwner"] for n in listing["nodes"] if n]
            if not listing["pageInfo"]["hasNextPage"]:
                break
            after = listing["pageInfo"]["endCursor"]
    return sorted(dict.fromkeys(names), key=str.lower)


def sync_user(
    url: str,
    login: str,
    client: GitHubClient,
    repos: list[str] | None = None,
    streams: Iterable[str] = ALL_STREAMS,
    progress: Progress | None = None,
    options: Options | None = None,
) -> SyncReport:
    """Syncs one user's repositories (`repos`, else `resolve_user_repositories`)."""
    names = repos if repos is not None else resolve_user_repositories(url, client, login)
    if progress:
        progress(f"{login}: {len(names)} repositories")
    return sync_repositories(url, client, names, streams, progress, options)
