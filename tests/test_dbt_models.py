"""dbt models on real Postgres: the `views` and `wave` selectors (dbt_project/selectors.yml)
built on an empty warehouse with every data and unit test, `dbt docs generate`, and a full
refresh equal to incremental runs.

`load_organization` writes a sandbox organisation into the raw tables in the shapes of
docs/contracts.md, so these tests do not depend on the ingestion client; the ground-truth
comparison through the real ingestion is tests/test_dbt_truth.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import psycopg2.extras

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.core.settings import Settings
from ghmetrics_dagster.sandbox import model
from ghmetrics_dagster.warehouse.dbt_env import DBT_PROJECT_DIR, dbt_env

DBT = str(Path(sys.executable).with_name("dbt"))

MART_KEYS = {
    "fct_pull_requests": ["pull_request_id"],
    "fct_deployments": ["deployment_id"],
    "fct_incidents": ["incident_id"],
    "fct_dora_weekly": ["scope_type", "scope", "week_start"],
    "dim_repositories": ["repo_full_name"],
    "dim_users": ["login"],
    "ml_weekly_features": ["scope_type", "scope", "week_start"],
    "fct_bottlenecks": ["scope_type", "scope", "week_start"],
    "fct_trailing_12w": ["scope_type", "scope"],
    "fct_ai_cohorts_weekly": ["scope_type", "scope", "week_start", "cohort"],
    "fct_ai_adoption": ["scope_type", "scope"],
}
# Marts of reference data, not computed from GitHub's: no ground truth to compare with.
REFERENCE_MARTS = {"dora_benchmarks": ["metric"]}
# Marts of GitHub's Copilot usage reports, compared with the report files in tests/test_copilot_usage.py.
COPILOT_MARTS = {
    "fct_copilot_org_daily": ["org", "day"],
    "fct_copilot_user_daily": ["org", "day", "user_login"],
    "fct_copilot_org_weekly": ["org", "week_start"],
}


def run_dbt(url: str, *args: str, target_path: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Runs the dbt CLI on the project against `url`; returns the finished process."""
    timeout = Settings.from_env().dbt_statement_timeout
    env = {**os.environ, **dbt_env(url, threads=2, statement_timeout=timeout), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    cmd = [DBT, *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    if target_path is not None:
        cmd += ["--target-path", str(target_path)]
        env["DBT_LOG_PATH"] = str(target_path / "logs")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")
    return proc


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _actor(org: model.Organization, login: str | None) -> dict | None:
    if login is None:
        return None
    user = org.users.get(login)
    is_bot = (user.is_bot if user else False) or login.endswith("[bot]")
    return {"__typename": "Bot" if is_bot else "User", "login": login}


def _closer(repo: model.Repository, pull_request_id: str | None) -> dict | None:
    numbers = {pr.node_id: pr.number for pr in repo.pull_requests}
    if pull_request_id is None or pull_request_id not in numbers:
        return None
    return {"__typename": "PullRequest", "id": pull_request_id, "number": numbers[pull_request_id]}


def raw_rows(org: model.Organization) -> dict[str, list[tuple]]:
    """The raw-table rows of an organisation, shaped as docs/contracts.md says."""
    rows: dict[str, list[tuple]] = {name: [] for name in (
        "repositories", "pull_requests", "pull_request_reviews", "pull_request_commits",
        "deployments", "releases", "workflow_runs", "issues")}
    for repo in org.repositories:
        name = repo.full_name
        rows["repositories"].append((repo.node_id, name, json.dumps({
            "id": repo.node_id, "databaseId": repo.database_id, "nameWithOwner": name, "name": repo.name,
            "owner": {"__typename": "Organization" if repo.owner == org.login else "User", "login": repo.owner}, "isArchived": repo.is_archived, "isPrivate": repo.is_private,
            "isFork": repo.is_fork, "isEmpty": repo.is_empty, "createdAt": _iso(repo.created_at),
            "updatedAt": _iso(repo.updated_at), "pushedAt": _iso(repo.pushed_at),
            "defaultBranchRef": None if repo.is_empty else {"name": repo.default_branch},
        }), repo.updated_at))
        for pr in repo.pull_requests:
            rows["pull_requests"].append((pr.node_id, name, pr.number, json.dumps({
                "id": pr.node_id, "databaseId": pr.database_id, "number": pr.number, "title": pr.title,
                "body": pr.body, "url": f"https://github.com/{name}/pull/{pr.number}", "state": pr.state,
                "isDraft": pr.is_draft, "createdAt": _iso(pr.created_at), "updatedAt": _iso(pr.updated_at),
                "closedAt": _iso(pr.closed_at), "mergedAt": _iso(pr.merged_at), "additions": pr.additions,
                "deletions": pr.deletions, "changedFiles": pr.changed_files, "baseRefName": pr.base_ref,
                "headRefName": pr.head_ref, "author": _actor(org, pr.author_login),
                "readyForReview": {"createdAt": _iso(pr.ready_for_review_at)} if pr.ready_for_review_at else None,
                "labels": [{"name": label} for label in pr.labels],
            }), pr.updated_at))
            for review in pr.reviews:
                rows["pull_request_reviews"].append((review.node_id, name, pr.node_id, pr.number, json.dumps({
                    "id": review.node_id, "databaseId": review.database_id, "state": review.state,
                    "submittedAt": _iso(review.submitted_at), "createdAt": _iso(review.created_at),
                    "author": _actor(org, review.author_login),
                }), review.submitted_at or review.created_at))
            for commit in pr.commits:
                rows["pull_request_commits"].append((name, pr.number, commit.sha, pr.node_id, json.dumps({
                    "oid": commit.sha, "message": commit.message or f"Commit {commit.sha[:7]}",
                    "authoredDate": _iso(commit.authored_at),
                    "committedDate": _iso(commit.committed_at), "additions": commit.additions,
                    "deletions": commit.deletions, "author": {
                        "name": commit.author_name, "email": commit.author_email,
                        "user": {"login": commit.author_login} if commit.author_login else None},
                }), commit.committed_at))
        for dep in repo.deployments:
            rows["deployments"].append((dep.node_id, name, json.dumps({
                "id": dep.node_id, "databaseId": dep.database_id, "environment": dep.environment,
                "createdAt": _iso(dep.created_at), "updatedAt": _iso(dep.updated_at), "commitOid": dep.sha,
                "ref": {"name": dep.ref}, "creator": {"login": dep.creator_login} if dep.creator_login else None,
                "statuses": [{"id": s.node_id, "state": s.state, "createdAt": _iso(s.created_at)}
                             for s in reversed(dep.statuses)],  # any order, says the contract
            }), dep.updated_at))
        for rel in repo.releases:
            rows["releases"].append((rel.node_id, name, json.dumps({
                "id": rel.node_id, "databaseId": rel.database_id, "name": rel.name, "tagName": rel.tag_name,
                "isDraft": rel.is_draft, "isPrerelease": rel.is_prerelease, "createdAt": _iso(rel.created_at),
                "publishedAt": _iso(rel.published_at),
                "author": {"login": rel.author_login} if rel.author_login else None,
            }), rel.published_at or rel.created_at))
        for run in repo.workflow_runs:
            rows["workflow_runs"].append((str(run.database_id), name, json.dumps({
                "id": run.database_id, "name": run.name, "workflow_id": run.workflow_id,
                "head_branch": run.head_branch, "head_sha": run.head_sha, "event": run.event,
                "status": run.status, "conclusion": run.conclusion, "run_attempt": run.run_attempt,
                "created_at": _iso(run.created_at), "updated_at": _iso(run.updated_at),
                "run_started_at": _iso(run.run_started_at),
            }), run.updated_at))
        for issue in repo.issues:
            rows["issues"].append((issue.node_id, name, json.dumps({
                "id": issue.node_id, "databaseId": issue.database_id, "number": issue.number,
                "title": issue.title, "state": issue.state, "createdAt": _iso(issue.created_at),
                "updatedAt": _iso(issue.updated_at), "closedAt": _iso(issue.closed_at),
                "author": {"login": issue.author_login} if issue.author_login else None,
                "labels": [{"name": label} for label in issue.labels],
                "closedBy": _closer(repo, issue.closed_by_pull_request),
            }), issue.updated_at))
    return rows


RAW_COLUMNS = {
    "repositories": (["id", "repo_full_name", "data", "updated_at"], ["id"]),
    "pull_requests": (["id", "repo_full_name", "number", "data", "updated_at"], ["id"]),
    "pull_request_reviews": (
        ["id", "repo_full_name", "pull_request_id", "pull_request_number", "data", "updated_at"], ["id"]),
    "pull_request_commits": (
        ["repo_full_name", "pull_request_number", "sha", "pull_request_id", "data", "updated_at"],
        ["repo_full_name", "pull_request_number", "sha"]),
    "deployments": (["id", "repo_full_name", "data", "updated_at"], ["id"]),
    "releases": (["id", "repo_full_name", "data", "updated_at"], ["id"]),
    "workflow_runs": (["id", "repo_full_name", "data", "updated_at"], ["id"]),
    "issues": (["id", "repo_full_name", "data", "updated_at"], ["id"]),
}


def load_rows(url: str, rows: dict[str, list[tuple]]) -> None:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        for table, table_rows in rows.items():
            columns, key = RAW_COLUMNS[table]
            warehouse.upsert(cur, f"raw.{table}", columns, key, table_rows)


def load_users(url: str, org: model.Organization) -> None:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        for login, repos in sorted(org.memberships.items()):
            user = org.users.get(login)
            cur.execute("insert into app.users (login, display_name) values (%s, %s) on conflict do nothing",
                        (login, user.name if user else login))
            for repo in repos:
                cur.execute("insert into app.user_repositories values (%s, %s) on conflict do nothing", (login, repo))


def load_organization(url: str, org: model.Organization) -> None:
    load_rows(url, raw_rows(org))
    load_users(url, org)


def read_mart(url: str, mart: str) -> list[dict]:
    with warehouse.connect(url) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(f"select * from marts.{mart} order by {', '.join(MART_KEYS[mart])}")
        return [{k: v for k, v in row.items() if not k.startswith("_")} for row in cur.fetchall()]


# ---------------------------------------------------------------------------------------------


def _results(target: Path) -> list[dict]:
    return json.loads((target / "run_results.json").read_text())["results"]


def _view_oids(url: str) -> dict[str, int]:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select schemaname || '.' || viewname, (schemaname || '.' || viewname)::regclass::oid"
                    " from pg_views where schemaname in ('staging', 'intermediate', 'marts')")
        return dict(cur.fetchall())


def test_selectors_split_views_from_the_wave_and_pass_every_test_and_docs_generate(database_url, tmp_path):
    # `views` is every view model and `wave` every other model; together, all of them.
    listed = {}
    for selector in ("views", "wave"):
        proc = run_dbt(database_url, "ls", "--selector", selector, "--resource-type", "model",
                       "--output", "json", "--output-keys", "name config", "-q", target_path=tmp_path / "ls")
        nodes = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        listed[selector] = {n["name"]: n["config"]["materialized"] for n in nodes}
    assert set(listed["views"].values()) == {"view"}
    assert "view" not in set(listed["wave"].values()) and {"fct_dora_weekly", "int_dora_scope_weeks"} <= set(listed["wave"])
    assert {"stg_github__pull_requests", "int_repository_settings"} <= set(listed["views"])
    proc = run_dbt(database_url, "ls", "--select", "fqn:*", "--resource-type", "model", "-q", target_path=tmp_path / "ls")
    assert len(proc.stdout.split()) == len(listed["views"]) + len(listed["wave"])

    # Prepared once (views with their tests), then a wave and the nightly full refresh.
    run_dbt(database_url, "build", "--selector", "views", "--indirect-selection", "cautious",
            target_path=tmp_path / "views")
    views = _view_oids(database_url)
    assert len(views) == len(listed["views"])
    results = _results(tmp_path / "views")
    for args, target in ((["build"], "wave"), (["build", "--selector", "wave", "--full-refresh"], "nightly")):
        proc = run_dbt(database_url, *args, target_path=tmp_path / target)
        assert "Completed successfully" in proc.stdout
        results += _results(tmp_path / target)
        # A wave reads the views in place: the same relations as prepared.
        assert _view_oids(database_url) == views
    assert not [r for r in _results(tmp_path / "wave") if r["unique_id"].startswith("unit_test.")]
    # The unit tests run as CI runs them, on the built warehouse.
    run_dbt(database_url, "test", "--select", "test_type:unit", target_path=tmp_path / "unit")
    results += _results(tmp_path / "unit")
    assert {"model", "test", "unit_test"} <= {r["unique_id"].split(".")[0] for r in results}
    assert all(r["status"] in ("success", "pass") for r in results), [
        (r["unique_id"], r["status"]) for r in results if r["status"] not in ("success", "pass")]
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        for mart in MART_KEYS:
            cur.execute(f"select count(*) from marts.{mart}")
            assert cur.fetchone()[0] == 0, mart

    # `dbt docs generate` works, every mart column is documented and none is bookkeeping.
    run_dbt(database_url, "docs", "generate", target_path=tmp_path / "target")
    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    marts = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["schema"] == "marts"}
    # A view never reads a table: the nightly full refresh replaces tables (drop ... cascade).
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and node["config"]["materialized"] == "view":
            parents = [manifest["nodes"][p]["config"]["materialized"] for p in node["depends_on"]["nodes"] if p.startswith("model.")]
            assert set(parents) <= {"view"}, (node["name"], parents)
    assert set(marts) == set(MART_KEYS) | set(REFERENCE_MARTS) | set(COPILOT_MARTS)
    for name, node in marts.items():
        columns = catalog["nodes"][node["unique_id"]]["columns"]
        assert columns, name
        undocumented = [c for c in columns if not node["columns"].get(c, {}).get("description")]
        assert not undocumented, f"{name}: undocumented columns {undocumented}"
        assert not [c for c in columns if c.startswith("_")], f"{name}: bookkeeping columns in a published mart"


def _changed_rows(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """Rows that are new or different: what an incremental ingestion upserts."""
    out = {}
    for table, rows in after.items():
        _, key = RAW_COLUMNS[table]
        columns = RAW_COLUMNS[table][0]
        index = [columns.index(k) for k in key]
        old = {tuple(r[i] for i in index): r for r in before.get(table, [])}
        out[table] = [r for r in rows if old.get(tuple(r[i] for i in index)) != r]
    return out


def _rows_written(target: Path, model: str) -> int:
    results = json.loads((target / "run_results.json").read_text())["results"]
    for result in results:
        if result["unique_id"] == f"model.ghmetrics.{model}":
            return int(result["adapter_response"].get("rows_affected", -1))
    raise AssertionError(f"{model} did not run")


def test_incremental_runs_equal_a_full_refresh_and_the_truth(database_url, tmp_path):
    from test_dbt_truth import compare_mart, read_marts, write_settings

    from ghmetrics_dagster.sandbox import generator, truth

    org = generator.generate(11, repos=4, prs_per_repo=30, weeks=10, users=5)
    before = raw_rows(org)
    load_rows(database_url, before)
    load_users(database_url, org)
    run_dbt(database_url, "run", "--selector", "views", target_path=tmp_path / "views")
    run_dbt(database_url, "seed", target_path=tmp_path / "seed")  # `run` builds no seed
    run_dbt(database_url, "run", "--selector", "wave", target_path=tmp_path / "first")
    total_prs = len(before["pull_requests"])

    # A week later: new pull requests, reviews and deployments, late merges of open pull
    # requests, closed incidents; and one repository switches its deployment source.
    generator.advance(org, days=7)
    after = raw_rows(org)
    changed = _changed_rows(before, after)
    assert changed["pull_requests"] and len(changed["pull_requests"]) < len(after["pull_requests"])
    load_rows(database_url, changed)
    switched = org.repositories[2].full_name
    settings = {switched: {"deployment_source": "merges"}}
    write_settings(database_url, settings)
    run_dbt(database_url, "run", "--selector", "wave", target_path=tmp_path / "incremental")
    incremental = read_marts(database_url)
    # Incremental means less work: not every pull request was written again.
    written = _rows_written(tmp_path / "incremental", "fct_pull_requests")
    assert 0 < written < len(after["pull_requests"]), (written, total_prs, len(after["pull_requests"]))

    run_dbt(database_url, "run", "--selector", "wave", "--full-refresh", target_path=tmp_path / "full")
    full = read_marts(database_url)
    def strip(rows, columns, key):
        return sorted(({c: r[c] for c in columns} for r in rows), key=lambda r: tuple(str(r[k]) for k in key))

    for mart, key in MART_KEYS.items():
        columns = [c for c in (full[mart][0] if full[mart] else {}) if not c.startswith("_")]
        assert strip(incremental[mart], columns, key) == strip(full[mart], columns, key), (
            f"{mart}: incremental result differs from a full refresh")

    expected = truth.compute(org, settings)
    problems = [p for mart in MART_KEYS for p in compare_mart(mart, expected[mart], incremental[mart])]
    assert not problems, "\n".join(problems[:30])
