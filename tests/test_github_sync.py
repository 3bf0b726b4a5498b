"""Ingestion into raw against the sandbox over real HTTP and a real Postgres.

The sandbox's organisation (the event model) is the ground truth: after a sync, raw must hold
exactly its objects, whatever went wrong on the way (5xx, secondary limits, 502 on big pages,
a SIGKILL mid-run).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ghmetrics_dagster import sync, warehouse
from ghmetrics_dagster.github import queries
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.sync import discovery
from ghmetrics_dagster.sync.rows import issue_data, pull_request_data, replay_labels
from ghmetrics_dagster.sync.state import Cursor

server = pytest.importorskip("ghmetrics_dagster.sandbox.server")
generator = pytest.importorskip("ghmetrics_dagster.sandbox.generator")
from ghmetrics_dagster.sandbox import model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_LOCAL_URL = re.compile(r"http://127\.0\.0\.1:\d+")


def small_org(seed=3, repos=4, prs=24):
    # 4 repositories: one of each deployment style.
    return generator.generate(seed, repos=repos, prs_per_repo=prs, weeks=6, users=6)


def make_client(sb, **kwargs):
    kwargs.setdefault("backoff_base", 0.02)
    kwargs.setdefault("timeout", 5)
    return GitHubClient(sb.rest_url, sb.graphql_url, list(sb.tokens), **kwargs)


def names(org):
    return [repo.full_name for repo in org.repositories]


def expected_keys(org) -> dict[str, set]:
    keys = {t: set() for t in ("repositories", "pull_requests", "pull_request_reviews", "pull_request_commits",
                               "deployments", "releases", "workflow_runs", "issues")}
    for repo in org.repositories:
        keys["repositories"].add(repo.node_id)
        for pr in repo.pull_requests:
            keys["pull_requests"].add(pr.node_id)
            keys["pull_request_reviews"].update(r.node_id for r in pr.reviews)
            keys["pull_request_commits"].update((repo.full_name, pr.number, c.sha) for c in pr.commits)
        keys["deployments"].update(d.node_id for d in repo.deployments)
        keys["releases"].update(r.node_id for r in repo.releases)
        keys["workflow_runs"].update(str(r.database_id) for r in repo.workflow_runs)
        keys["issues"].update(i.node_id for i in repo.issues)
    return keys


def raw_keys(url) -> dict[str, set]:
    out = {}
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        for table in expected_keys_tables():
            if table == "pull_request_commits":
                cur.execute("select repo_full_name, pull_request_number, sha from raw.pull_request_commits")
                out[table] = {tuple(row) for row in cur.fetchall()}
            else:
                cur.execute(f"select id from raw.{table}")
                out[table] = {row[0] for row in cur.fetchall()}
    return out


def expected_keys_tables():
    return ("repositories", "pull_requests", "pull_request_reviews", "pull_request_commits",
            "deployments", "releases", "workflow_runs", "issues")


def raw_snapshot(url) -> dict[str, list]:
    """Every raw row without ingested_at: what must be identical between two runs."""
    out = {}
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        for table in expected_keys_tables():
            key = "repo_full_name, pull_request_number, sha" if table == "pull_request_commits" else "id"
            cur.execute(f"select {key}, data::text, updated_at from raw.{table} order by {key}")
            # REST objects embed the server's address, which differs between two sandboxes.
            out[table] = [(key, _LOCAL_URL.sub("http://sandbox", data), updated) for key, data, updated in
                          ((row[:-2] if len(row) > 3 else row[0], row[-2], row[-1]) for row in cur.fetchall())]
    return out


def assert_raw_matches(url, org):
    got, want = raw_keys(url), expected_keys(org)
    for table in want:
        assert got[table] == want[table], f"raw.{table}: {len(got[table])} rows, org has {len(want[table])}"
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select id, data from raw.pull_requests")
        prs = dict(cur.fetchall())
        cur.execute("select id, data from raw.deployments")
        deployments = dict(cur.fetchall())
        cur.execute("select id, data from raw.issues")
        issues = dict(cur.fetchall())
    for repo in org.repositories:
        numbers = {pr.node_id: pr.number for pr in repo.pull_requests}
        for pr in repo.pull_requests:
            data = prs[pr.node_id]
            assert data["updatedAt"] == pr.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert data["state"] == pr.state and data["title"] == pr.title
            assert "reviews" not in data and "commits" not in data and "timeline" not in data
            ready = data["readyForReview"]
            assert (ready is None) == (pr.ready_for_review_at is None)
            if ready is not None:
                assert ready == {"createdAt": pr.ready_for_review_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
            # the replay of the labeled/unlabeled events: the labels on the pull request now
            assert data["labels"] == [{"name": name} for name in pr.labels], pr.number
            assert data["headRefName"] == pr.head_ref
        for issue in repo.issues:
            closer = issues[issue.node_id]["closedBy"]
            if issue.closed_by_pull_request is None:
                assert closer is None
            else:
                assert closer == {"__typename": "PullRequest", "id": issue.closed_by_pull_request,
                                  "number": numbers[issue.closed_by_pull_request]}
        for dep in repo.deployments:
            assert sorted(s["id"] for s in deployments[dep.node_id]["statuses"]) == sorted(s.node_id for s in dep.statuses)


def test_full_load_then_unchanged_refresh_is_free(database_url):
    org = small_org()
    with server.run_sandbox(org) as sb:
        client = make_client(sb)
        lines = []
        report = sync.sync_repositories(database_url, client, names(org), progress=lines.append)
        assert report.ok, report.metadata()["errors"]
        assert_raw_matches(database_url, org)
        styles = {repo.deployment_style for repo in org.repositories}
        assert styles == {"github_deployments", "workflow_runs", "releases", "merges"}
        rows = report.rows_upserted()
        assert rows["pull_requests"] == sum(len(r.pull_requests) for r in org.repositories)
        assert any("pull_requests: page 1" in line for line in lines)
        meta = report.metadata()
        assert meta["graphql_points"] > 0 and meta["requests"] == meta["rest_requests"] + meta["graphql_requests"]
        assert meta["rate_limit_remaining"]["graphql"] is not None
        json.dumps(meta)  # Dagster metadata must be JSON

        before = raw_snapshot(database_url)
        refresh = sync.sync_repositories(database_url, client, names(org))
        assert refresh.ok
        assert refresh.stats.rest_units == 0, refresh.stats.as_dict()
        assert refresh.stats.graphql_points <= 1  # one point per 100 repositories
        assert refresh.stats.not_modified == 4 * len(org.repositories)  # PRs: checked by the repositories query
        assert all(s.status == "unchanged" for r in refresh.repositories for k, s in r.streams.items() if k != "repositories")
        assert raw_snapshot(database_url) == before


def test_labels_replay_the_timeline_and_issues_name_their_closing_pull_request(database_url):
    org = small_org(seed=6)
    prs = [pr for repo in org.repositories for pr in repo.pull_requests]
    # What the organisation must show for this test to mean something:
    overflowing = [pr for pr in prs if len(pr.label_events) > queries.NESTED_TIMELINE]
    assert overflowing and all(pr.labels == ["hotfix"] for pr in overflowing)
    removed = [pr for pr in prs if any(e.kind == model.UNLABELED for e in pr.label_events)
               and len(pr.label_events) <= queries.NESTED_TIMELINE]
    assert any(not pr.labels for pr in removed)  # added, then removed: no label now
    assert any(pr.labels for pr in removed)  # added, removed and added again
    closed_by = [i for repo in org.repositories for i in repo.issues if i.closed_by_pull_request]
    assert closed_by and any(i.closed_at and not i.closed_by_pull_request for r in org.repositories for i in r.issues)
    with server.run_sandbox(org) as sb:
        client = make_client(sb)
        report = sync.sync_repositories(database_url, client, names(org))
        assert report.ok, report.metadata()["errors"]
    # The overflowing pull request's last label comes after the nested page: right only
    # because its events were paged (PullRequestTimeline) and replayed in order.
    assert_raw_matches(database_url, org)


def test_label_replay_rules():
    def event(kind, name):
        return {"__typename": kind, "createdAt": "2026-05-04T13:00:00Z", "label": {"name": name}}

    events = [
        event("LabeledEvent", "hotfix"), event("LabeledEvent", "feature"), event("UnlabeledEvent", "hotfix"),
        {"__typename": "ReadyForReviewEvent", "createdAt": "2026-05-04T14:00:00Z"},
        event("LabeledEvent", "Hotfix"), event("UnlabeledEvent", "never-added"), event("LabeledEvent", "feature"),
    ]
    assert replay_labels(events) == [{"name": "Hotfix"}, {"name": "feature"}]
    assert replay_labels([]) == []
    node = {"id": "PR_1", "reviews": {}, "commits": {}, "timeline": {"pageInfo": {}, "nodes": events[:4] + [None]}}
    data = pull_request_data(node)
    assert data == {"id": "PR_1", "readyForReview": {"createdAt": "2026-05-04T14:00:00Z"}, "labels": [{"name": "feature"}]}
    # the overflow events continue the nested page
    data = pull_request_data(node, events)
    assert data["labels"] == [{"name": "Hotfix"}, {"name": "feature"}]
    assert pull_request_data({"id": "PR_2", "timeline": {"nodes": []}})["readyForReview"] is None
    # An issue's closer: a pull request only; closed by a commit or by hand, null.
    closed = {"nodes": [{"closer": {"__typename": "PullRequest", "id": "PR_9", "number": 9}}]}
    assert issue_data({"id": "I_1", "closedBy": closed})["closedBy"] == {
        "__typename": "PullRequest", "id": "PR_9", "number": 9}
    for other in ({"nodes": [{"closer": {"__typename": "Commit"}}]}, {"nodes": [{"closer": None}]}, {"nodes": []}, None):
        assert issue_data({"id": "I_1", "closedBy": other})["closedBy"] is None


def test_stored_cursors_resume():
    """raw.sync_state.cursor as earlier versions stored it (GraphQL and REST) still loads."""
    def utc(*args):
        return dt.datetime(*args, tzinfo=dt.UTC)

    graphql = Cursor.from_json('{"after": "Y3Vy", "acc": {"max": "2026-05-04T13:00:00Z", '
                               '"active": {"prod": "2026-05-01T10:00:00Z"}, "open": "2026-05-02T09:00:00Z"}}')
    assert graphql == Cursor(after="Y3Vy", newest=utc(2026, 5, 4, 13), oldest_open=utc(2026, 5, 2, 9),
                             active={"prod": utc(2026, 5, 1, 10)})
    assert Cursor.from_json(graphql.to_json()) == graphql
    rest = Cursor.from_json('{"page": 3, "acc": {"max": "2026-05-04T13:00:00Z"}}')
    assert rest == Cursor(page=3, newest=utc(2026, 5, 4, 13))
    assert json.loads(rest.to_json()) == {"page": 3, "acc": {"max": "2026-05-04T13:00:00+00:00"}}
    assert Cursor.from_json('{"after": "Y3Vy", "acc": {}}') == Cursor(after="Y3Vy")
    assert Cursor.from_json(None) is None and Cursor.from_json("") is None


def test_refresh_after_changes_fetches_only_what_changed(database_url):
    org = small_org(seed=4)
    with server.run_sandbox(org) as sb:
        client = make_client(sb)
        assert sync.sync_repositories(database_url, client, names(org)).ok
        with sb.lock:
            touched = generator.touch_pull_requests(org, 0.05, seed=1)
        report = sync.sync_repositories(database_url, client, names(org), streams=["pull_requests"])
        assert report.ok
        # Exactly the touched PRs are written; PRs in the overlap window come back unchanged.
        assert report.rows_upserted()["pull_requests"] == len(touched)
        # One page per repository that has touched PRs (a few touched PRs fit in one page).
        pages = sum(r.streams["pull_requests"].pages for r in report.repositories)
        per_repo = [sum(1 for p in touched if p in repo.pull_requests) for repo in org.repositories]
        assert max(per_repo) < queries.PR_PAGE_SIZE
        assert pages == sum(1 for n in per_repo if n)
        repos_touched = {r.full_name for r in org.repositories for p in touched if p in r.pull_requests}
        pr_stats = [r.streams["pull_requests"] for r in report.repositories]
        assert sum(s.status == "unchanged" for s in pr_stats) == len(org.repositories) - len(repos_touched)
        assert_raw_matches(database_url, org)


def test_advancing_the_organisation_keeps_raw_exact(database_url):
    org = small_org(seed=5)
    with server.run_sandbox(org) as sb:
        client = make_client(sb)
        assert sync.sync_repositories(database_url, client, names(org)).ok
        with sb.lock:
            generator.advance(org, 10)
        report = sync.sync_repositories(database_url, client, names(org))
        assert report.ok, report.metadata()["errors"]
        assert_raw_matches(database_url, org)
        # the next refresh after catching up is free again
        again = sync.sync_repositories(database_url, client, names(org))
        assert again.stats.rest_units == 0


def test_unknown_repository_and_revoked_token_fail_alone(database_url):
    org = small_org(seed=6, repos=2)
    org.repositories[1].is_archived = True
    first = org.repositories[0]
    org.repositories.append(model.Repository(
        node_id="R_empty_repo", database_id=987654, owner=org.login, name="empty", default_branch="main",
        created_at=first.created_at, updated_at=first.created_at, pushed_at=first.created_at,
        deployment_style="merges",
    ))
    with server.run_sandbox(org, tokens=["ghp_" + "a" * 36, "ghp_" + "b" * 36]) as sb:
        good, bad = sb.tokens
        sb.revoke(bad)
        client = make_client(sb)
        report = sync.sync_repositories(database_url, client, ["acme/does-not-exist", "not a name", *names(org)])
        by_repo = {r.repo: r for r in report.repositories}
        assert "not found" in by_repo["acme/does-not-exist"].error
        assert "owner/name" in by_repo["not a name"].error
        for name in names(org):
            assert by_repo[name].ok, by_repo[name].errors
        assert len(report.failed) == 2
        assert "archived" in by_repo[names(org)[1]].note and "empty" in by_repo[f"{org.login}/empty"].note
        assert_raw_matches(database_url, org)
        with warehouse.connect(database_url) as conn, conn.cursor() as cur:
            cur.execute("select data from raw.repositories where id = 'R_empty_repo'")
            empty = cur.fetchone()[0]
        assert empty["isEmpty"] is True and empty["defaultBranchRef"] is None
        assert "latestPullRequest" not in empty
        text = json.dumps(report.metadata())
        assert good not in text and bad not in text

        only_revoked = GitHubClient(sb.rest_url, sb.graphql_url, [bad], backoff_base=0.01)
        failed = sync.sync_repositories(database_url, only_revoked, names(org))
        assert not failed.ok
        for repo in failed.repositories:
            assert "rejected" in repo.error and "\n" not in repo.error and bad not in repo.error


def test_user_repositories_from_app_table_or_api(database_url):
    org = small_org(seed=7, repos=3)
    login = sorted(org.memberships)[0]
    with server.run_sandbox(org) as sb:
        client = make_client(sb)
        from_api = discovery.resolve_user_repositories(database_url, client, login)
        assert set(org.memberships[login]) <= set(from_api)
        with warehouse.connect(database_url) as conn, conn.cursor() as cur:
            cur.execute("insert into app.users (login) values (%s)", (login,))
            cur.execute("insert into app.user_repositories values (%s, %s)", (login, names(org)[-1]))
        assert discovery.resolve_user_repositories(database_url, client, login) == [names(org)[-1]]
        report = sync.sync_repositories(database_url, client, discovery.resolve_user_repositories(database_url, client, login))
        assert [r.repo for r in report.repositories] == [names(org)[-1]] and report.ok


KILL_SCRIPT = """
import sys
from ghmetrics_dagster import sync
from ghmetrics_dagster.github.client import GitHubClient
url, rest, graphql, tokens, repos = sys.argv[1:6]
client = GitHubClient(rest, graphql, tokens.split(","), backoff_base=0.02, timeout=5)
sync.sync_repositories(url, client, repos.split(","), options=sync.Options(max_workers=2),
                       progress=lambda line: print(line, flush=True))
"""


def test_faults_and_sigkill_leave_the_same_tables(database_url, server_url):
    org = small_org(seed=8, repos=4, prs=60)
    with server.run_sandbox(org) as sb:
        assert sync.sync_repositories(database_url, make_client(sb), names(org)).ok
    clean = raw_snapshot(database_url)

    with warehouse.scratch_database(server_url) as faulty_url:
        faults = server.FaultConfig(seed=2, rate_5xx=0.05, rate_truncated_json=0.01, rate_hang=0.01, hang_seconds=2,
                                    graphql_502_node_threshold=1500, secondary_max_concurrent=2,
                                    retry_after_seconds=1)
        with server.run_sandbox(org, latency_ms=15, faults=faults) as sb:
            # A first run killed with SIGKILL in the middle of the pull requests.
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            proc = subprocess.Popen(
                [sys.executable, "-c", KILL_SCRIPT, faulty_url, sb.rest_url, sb.graphql_url,
                 ",".join(sb.tokens), ",".join(names(org))],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
            )
            deadline = time.monotonic() + 60
            pages = 0
            for line in proc.stdout:
                if "pull_requests: page" in line:
                    pages += 1
                if pages >= 3 or time.monotonic() > deadline:
                    break
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert pages >= 3, "the subprocess never reached the pull requests"
            with warehouse.connect(faulty_url) as conn, conn.cursor() as cur:
                cur.execute("select count(*) from raw.pull_requests")
                partial = cur.fetchone()[0]
            assert 0 < partial < sum(len(r.pull_requests) for r in org.repositories)

            client = make_client(sb, secondary_limit_wait=1, timeout=1)
            report = sync.sync_repositories(faulty_url, client, names(org))
            assert report.ok, report.metadata()["errors"]
            stats = report.stats
            print("faulty rerun:", stats.as_dict())
            assert stats.retries > 0 and stats.page_size_reductions > 0 and stats.secondary_limit_waits > 0
        assert raw_snapshot(faulty_url) == clean


def test_tokens_rotate_through_primary_limits_and_exhaustion_is_clear(database_url):
    org = small_org(seed=9, repos=4, prs=24)
    # No single token can do the full load (19 points, 16 REST units); three together can.
    with server.run_sandbox(org, graphql_limit=10, rest_limit=8) as sb:
        client = make_client(sb, max_rate_limit_wait=1)
        report = sync.sync_repositories(database_url, client, names(org))
        assert report.ok, report.metadata()["errors"]
        assert_raw_matches(database_url, org)
        used = [sb.stats(t) for t in sb.tokens]
        assert all(u["rest_used"] > 0 for u in used) and sum(u["graphql_used"] > 0 for u in used) >= 2
        assert all(u["rest_used"] <= 8 and u["graphql_used"] <= 10 for u in used)

    with server.run_sandbox(org, graphql_limit=2, rest_limit=2, tokens=sb.tokens[:1]) as small:
        client = make_client(small, max_rate_limit_wait=1)
        report = sync.sync_repositories(database_url, client, names(org))
        assert not report.ok
        messages = [e for r in report.repositories for e in r.errors]
        assert messages and all("rate limit" in m and "\n" not in m for m in messages)
        assert not any(small.tokens[0] in m for m in messages)


def test_ingest_benchmark_quick_smoke(database_url, tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import ingest
    finally:
        sys.path.remove(str(ROOT / "bench"))
    out = tmp_path / "ingest.json"
    assert ingest.main(["--quick", "--latency-ms", "0", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in ("prs", "units_per_1000_prs", "baseline_units_per_1000_prs", "wall_s", "baseline_wall_s",
                "speedup", "refresh_unchanged_units"):
        assert key in result
    assert result["refresh_unchanged_units"] <= 1
    assert result["units_per_1000_prs"] < result["baseline_units_per_1000_prs"] / 10
    assert "baseline PyGithub" in capsys.readouterr().out
