"""The per-repository streams (see the package docstring for what each reads), one class
each, all driven by `loop.run_pass`."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from ghmetrics_dagster.github import queries, validate
from ghmetrics_dagster.github.client import PageSize, RestResponse, format_time, parse_time
from ghmetrics_dagster.sync import rows as shape
from ghmetrics_dagster.sync.loop import Repo, Stream, StreamJob, log, newer_watermark, newest
from ghmetrics_dagster.sync.pages import GraphQLPages, PageFetcher, RestPages
from ghmetrics_dagster.sync.state import Cursor, StreamState

TERMINAL_DEPLOYMENT_STATES = {"SUCCESS", "FAILURE", "ERROR", "INACTIVE"}


def _page_size(size: int) -> PageSize:
    # Shared by all repositories of one sync, so a size GitHub rejected (502/504) for one
    # repository is not first tried again for the next.
    return PageSize(size, queries.PR_MIN_PAGE_SIZE, restore_after=10)


def _graphql(job: StreamJob, query: str, connection: str, size: PageSize, **variables) -> GraphQLPages:
    return GraphQLPages(job.client, job.repo.full_name, query, connection, size,
                        {"owner": job.repo.owner, "name": job.repo.name, **variables})


def _overflow(job: StreamJob, query: str, node_id: str, connection: str, after: str | None) -> list[dict]:
    """The rest of a connection nested in a node, past its first page."""
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


def _with_oldest_open(cursor: Cursor, open_times: list[dt.datetime]) -> Cursor:
    if cursor.oldest_open is not None:
        open_times = [*open_times, cursor.oldest_open]
    return replace(cursor, oldest_open=min(open_times)) if open_times else cursor


def _reread_from(job: StreamJob, cursor: Cursor, state: StreamState, unsettled: list[dt.datetime]) -> dt.datetime | None:
    """The watermark of streams whose objects change after creation: the creation time from
    which the next pass re-reads (the look-back, or an older object not settled yet)."""
    newest_time = newer_watermark(cursor, state)
    if newest_time is None:
        return None
    return min([newest_time - job.options.lookback, *unsettled])


class PullRequests(Stream):
    name = "pull_requests"
    time_field = "updatedAt"

    def __init__(self):
        self.size = _page_size(queries.PR_PAGE_SIZE)

    def nothing_new(self, job: StreamJob, state: StreamState) -> bool:
        # The repositories query brought the newest updatedAt: nothing newer, nothing to read.
        newest_time = shape.newest_pull_request(job.repo.node)
        return newest_time is None or (state.watermark is not None and newest_time <= state.watermark)

    def pages(self, job: StreamJob, since: dt.datetime | None, checked: RestResponse | None) -> PageFetcher:
        return _graphql(job, queries.PULL_REQUESTS, "pullRequests", self.size)

    def rows(self, job: StreamJob, conn, nodes: list[dict]) -> dict[str, list[tuple]]:
        repo = job.repo.full_name
        # PRs inside the overlap window that are stored with the same updatedAt are unchanged
        # (a new review or commit moves updatedAt): skip them and their overflow requests.
        with conn.cursor() as cur:
            cur.execute("select id, updated_at from raw.pull_requests where id = any(%s)", ([n["id"] for n in nodes],))
            stored = dict(cur.fetchall())
        nodes = [n for n in nodes if stored.get(n["id"]) != parse_time(n["updatedAt"])]
        prs, reviews, commits, quarantined = [], [], [], []
        for node in nodes:
            timeline = [e for e in node["timeline"]["nodes"] if e]
            if node["timeline"]["pageInfo"]["hasNextPage"]:
                more = _overflow(job, queries.PULL_REQUEST_TIMELINE, node["id"], "timelineItems",
                                 node["timeline"]["pageInfo"]["endCursor"])
                reason = validate.problem(validate.SPECS["pull_request_timeline"], {"nodes": more})
                if reason:
                    # Labels replayed from part of the events would be wrong: set the PR aside.
                    quarantined += shape.quarantine_rows(repo, self.name, [(node["id"], f"timelineItems overflow: {reason}", node)])
                    log.warning("%s %s: pull request %s quarantined: %s", repo, self.name, node["id"], reason)
                    continue
                timeline += more
            prs.append(shape.pull_request_row(repo, node, timeline))
            review_nodes = list(node["reviews"]["nodes"])
            if node["reviews"]["pageInfo"]["hasNextPage"]:
                review_nodes += _overflow(job, queries.PULL_REQUEST_REVIEWS, node["id"], "reviews",
                                          node["reviews"]["pageInfo"]["endCursor"])
            commit_nodes = list(node["commits"]["nodes"])
            if node["commits"]["pageInfo"]["hasNextPage"]:
                commit_nodes += _overflow(job, queries.PULL_REQUEST_COMMITS, node["id"], "commits",
                                          node["commits"]["pageInfo"]["endCursor"])
            review_nodes, bad_reviews = job.quarantine("pull_request_reviews", [r for r in review_nodes if r])
            commit_nodes, bad_commits = job.quarantine("pull_request_commits", [c for c in commit_nodes if c])
            reviews += shape.review_rows(repo, node, review_nodes)
            commits += shape.commit_rows(repo, node, commit_nodes)
            quarantined += bad_reviews + bad_commits
        return {"pull_requests": prs, "pull_request_reviews": reviews, "pull_request_commits": commits,
                "quarantine": quarantined}


class Deployments(Stream):
    name = "deployments"
    time_field = "createdAt"

    def __init__(self):
        self.size = _page_size(queries.DEPLOYMENT_PAGE_SIZE)

    def conditional_request(self, repo: Repo) -> tuple[str, dict]:
        return f"/repos/{repo.full_name}/deployments", {"per_page": 100}

    def pages(self, job: StreamJob, since: dt.datetime | None, checked: RestResponse | None) -> PageFetcher:
        return _graphql(job, queries.DEPLOYMENTS, "deployments", self.size)

    def rows(self, job: StreamJob, conn, nodes: list[dict]) -> dict[str, list[tuple]]:
        rows, quarantined = [], []
        for node in nodes:
            statuses = list(node["statuses"]["nodes"])
            if node["statuses"]["pageInfo"]["hasNextPage"]:
                statuses += _overflow(job, queries.DEPLOYMENT_STATUSES_PAGE, node["id"], "statuses",
                                      node["statuses"]["pageInfo"]["endCursor"])
            statuses, bad = job.quarantine("deployment_statuses", [s for s in statuses if s])
            quarantined += bad
            rows.append(shape.deployment_row(job.repo.full_name, node, statuses))
        return {"deployments": rows, "quarantine": quarantined}

    def fold(self, cursor: Cursor, nodes: list[dict]) -> Cursor:
        cursor = newest(cursor, nodes, self.time_field)
        # The newest successful deployment of each environment is still active: GitHub adds an
        # INACTIVE status to it when the next one succeeds, however old it is by then.
        active = dict(cursor.active)
        for node in nodes:  # newest first
            if _latest_status(node) == "SUCCESS" and node["environment"] not in active:
                active[node["environment"]] = parse_time(node["createdAt"])
        cursor = replace(cursor, active=active)
        return _with_oldest_open(cursor, [parse_time(n["createdAt"]) for n in nodes if not _deployment_final(n)])

    def watermark(self, job: StreamJob, cursor: Cursor, state: StreamState) -> dt.datetime | None:
        unsettled = [t for t in [cursor.oldest_open, *cursor.active.values()] if t]
        return _reread_from(job, cursor, state, unsettled)


def _latest_status(node: dict) -> str | None:
    statuses = [s for s in node["statuses"]["nodes"] if s]
    if not statuses or node["statuses"]["pageInfo"]["hasNextPage"]:
        return None
    return max(statuses, key=lambda s: parse_time(s["createdAt"]))["state"]


def _deployment_final(node: dict) -> bool:
    return _latest_status(node) in TERMINAL_DEPLOYMENT_STATES


class Releases(Stream):
    name = "releases"
    time_field = "createdAt"

    def __init__(self):
        self.size = _page_size(queries.RELEASE_PAGE_SIZE)

    def conditional_request(self, repo: Repo) -> tuple[str, dict]:
        return f"/repos/{repo.full_name}/releases", {"per_page": 100}

    def since(self, job: StreamJob, state: StreamState) -> None:
        # Releases change in place (drafts get published) and are few: read them all.
        return None

    def pages(self, job: StreamJob, since: dt.datetime | None, checked: RestResponse | None) -> PageFetcher:
        return _graphql(job, queries.RELEASES, "releases", self.size)

    def rows(self, job: StreamJob, conn, nodes: list[dict]) -> dict[str, list[tuple]]:
        return {"releases": [shape.release_row(job.repo.full_name, n) for n in nodes]}


class Issues(Stream):
    name = "issues"
    time_field = "updatedAt"

    def __init__(self):
        self.size = _page_size(queries.ISSUE_PAGE_SIZE)

    def conditional_request(self, repo: Repo) -> tuple[str, dict]:
        return f"/repos/{repo.full_name}/issues", {"state": "all", "sort": "updated", "direction": "desc", "per_page": 1}

    def pages(self, job: StreamJob, since: dt.datetime | None, checked: RestResponse | None) -> PageFetcher:
        return _graphql(job, queries.ISSUES, "issues", self.size, since=format_time(since) if since else None)

    def rows(self, job: StreamJob, conn, nodes: list[dict]) -> dict[str, list[tuple]]:
        return {"issues": [shape.issue_row(job.repo.full_name, n) for n in nodes]}


class WorkflowRuns(Stream):
    """REST only: GraphQL has no Actions. The conditional request is page 1 itself."""

    name = "workflow_runs"
    time_field = "created_at"

    def conditional_request(self, repo: Repo) -> tuple[str, dict]:
        return f"/repos/{repo.full_name}/actions/runs", {"per_page": RestPages.PER_PAGE}

    def pages(self, job: StreamJob, since: dt.datetime | None, checked: RestResponse | None) -> PageFetcher:
        path, _ = self.conditional_request(job.repo)
        return RestPages(job.client, job.repo.full_name, path, "workflow_runs", "workflow runs", first=checked)

    def rows(self, job: StreamJob, conn, nodes: list[dict]) -> dict[str, list[tuple]]:
        return {"workflow_runs": [shape.workflow_run_row(job.repo.full_name, r) for r in nodes]}

    def fold(self, cursor: Cursor, nodes: list[dict]) -> Cursor:
        cursor = newest(cursor, nodes, self.time_field)
        return _with_oldest_open(cursor, [parse_time(r["created_at"]) for r in nodes if r.get("status") != "completed"])

    def watermark(self, job: StreamJob, cursor: Cursor, state: StreamState) -> dt.datetime | None:
        return _reread_from(job, cursor, state, [cursor.oldest_open] if cursor.oldest_open else [])

    def page_message(self, kept: list[dict], written: int) -> str:
        return f"{len(kept)} runs"


# Longest first: the order the pool starts them in, so its tail is short.
STREAMS: tuple[type[Stream], ...] = (PullRequests, WorkflowRuns, Issues, Deployments, Releases)
