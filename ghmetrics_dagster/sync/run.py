"""`sync_repositories`: the repositories first (one query per 100), then every other stream of
every found repository in a thread pool."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.github import errors, validate
from ghmetrics_dagster.github.access import fetch_repositories
from ghmetrics_dagster.github.client import GitHubClient, Stats
from ghmetrics_dagster.sync.loop import Options, Progress, Repo, log, one_line, run_stream
from ghmetrics_dagster.sync.report import RepositoryResult, StreamResult, SyncReport, add_stats
from ghmetrics_dagster.sync.rows import quarantine_rows, repository_row, write_rows
from ghmetrics_dagster.sync.state import save_state
from ghmetrics_dagster.sync.streams import STREAMS
from ghmetrics_dagster.warehouse import app_data

ALL_STREAMS = ("repositories", "pull_requests", "deployments", "releases", "workflow_runs", "issues")

_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


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
    repos: list[Repo] = []
    if valid:
        with client.scope() as stats:
            repos = _find_repositories(url, client, valid, "repositories" in streams, results, progress)
        add_stats(total, stats)
        if progress:
            progress(f"{len(repos)}/{len(names)} repositories found ({stats.graphql_points} GraphQL points)")

    # One instance per stream for all repositories: they share its adaptive page size.
    instances = [stream() for stream in STREAMS if stream.name in streams]
    tasks = [(repo, stream) for stream in instances for repo in repos]
    lock = threading.Lock()
    if tasks:
        with ThreadPoolExecutor(max_workers=max(1, options.max_workers), thread_name_prefix="ghsync") as pool:
            futures = [
                (repo, stream, pool.submit(run_stream, url, client, repo, stream, progress, options))
                for repo, stream in tasks
            ]
            by_repo = {r.repo: r for r in results.values() if r.error is None}
            for repo, stream, future in futures:
                stream_result = future.result()
                with lock:
                    add_stats(total, stream_result.stats)
                    by_repo[repo.full_name].streams[stream.name] = stream_result
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


def _find_repositories(url: str, client: GitHubClient, valid: list[str], store: bool,
                       results: dict[str, RepositoryResult], progress: Progress | None) -> list[Repo]:
    """The repositories query: stores them (with `store`), takes GitHub's spelling of renamed
    registrations, and records in `results` the ones not found; returns those found, once each."""
    try:
        nodes = fetch_repositories(client, valid)
    except Exception as exc:
        message = ("postponed: " if isinstance(exc, errors.RateLimitExhausted) else "") + one_line(exc, client)
        nodes = {n.lower(): message for n in valid}
    quarantined = []
    for name, node in nodes.items():
        reason = validate.problem(validate.SPECS["repositories"], node) if isinstance(node, dict) else None
        if reason:
            log.warning("repository %s quarantined: %s", name, reason)
            quarantined += quarantine_rows(name, "repositories", [(validate.object_key(node), reason, node)])
            nodes[name] = f"GitHub returned a malformed repository object ({reason}); quarantined in raw.quarantine"
    stored = [n for n in nodes.values() if isinstance(n, dict)] if store else []
    renames = {
        given: nodes[given.lower()]["nameWithOwner"]
        for given in valid
        if isinstance(nodes[given.lower()], dict) and nodes[given.lower()]["nameWithOwner"] != given
    }
    if quarantined or stored or renames:
        with warehouse.connect(url) as conn, conn.cursor() as cur:
            canonicalise_registrations(cur, renames)
            write_rows(cur, {"quarantine": quarantined, "repositories": [repository_row(n) for n in stored]})
            for node in stored:
                save_state(cur, node["nameWithOwner"], "repositories", stored=True,
                           last_success_at=dt.datetime.now(dt.UTC), last_error=None)
    repos = []
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
        if store:
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
        repos.append(Repo(canonical, owner, name, node))
        result.repo = canonical
    return repos


def canonicalise_registrations(cur, renames: dict[str, str]) -> None:
    """Registrations written as `ACME/API` (or under a repository's old name) take GitHub's
    spelling, the one the raw tables use, so the user's scope is not silently empty."""
    for given, canonical in renames.items():
        app_data.rename_registrations(cur, given, canonical)
