"""The marts equal the sandbox's ground truth.

The sandbox serves a generated organisation over real HTTP on 127.0.0.1, the real ingestion
(ghmetrics_dagster/sync) loads it into raw, real dbt builds the marts, and every mart is compared as
a whole table with `truth.compute`: the same keys, counts and flags exactly, hours and other
measures within 1e-6, timestamps and weeks equal. Three seeds, each with repositories of all
four deployment styles; one seed also sets per-repository rules in app.repository_settings.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math

import pandas as pd
import psycopg2.extras
import pytest
import yaml
from test_dbt_models import MART_KEYS, load_users, run_dbt

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.sandbox import generator, truth
from ghmetrics_dagster.sandbox.server import run_sandbox
from ghmetrics_dagster.sync import sync_repositories
from ghmetrics_dagster.warehouse.dbt_env import DBT_PROJECT_DIR

TOLERANCE = 1e-6


def _normalise(value):
    """One comparable form per value: floats for numbers, UTC datetimes, dates, None for nulls."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (decimal.Decimal, int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return value


def _same(expected, actual) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, float) and isinstance(actual, float):
        return abs(expected - actual) <= TOLERANCE
    return expected == actual


def compare_mart(name: str, expected: pd.DataFrame, actual_rows: list[dict]) -> list[str]:
    """Differences between the truth frame and the mart rows, as readable lines (empty = equal)."""
    key = MART_KEYS[name]
    columns = list(expected.columns)
    want = {}
    for record in expected.to_dict("records"):
        row = {c: _normalise(record[c]) for c in columns}
        want[tuple(row[k] for k in key)] = row
    got = {}
    for record in actual_rows:
        missing = [c for c in columns if c not in record]
        if missing:
            return [f"{name}: columns missing from the mart: {missing}"]
        row = {c: _normalise(record[c]) for c in columns}
        got[tuple(row[k] for k in key)] = row
    problems = []
    for k in sorted(set(want) - set(got), key=str)[:5]:
        problems.append(f"{name}: row {k} is in the truth but not in the mart")
    for k in sorted(set(got) - set(want), key=str)[:5]:
        problems.append(f"{name}: row {k} is in the mart but not in the truth")
    if len(want) != len(got):
        problems.append(f"{name}: {len(got)} rows in the mart, {len(want)} in the truth")
    for k in sorted(set(want) & set(got), key=str):
        for column in columns:
            if not _same(want[k][column], got[k][column]):
                problems.append(f"{name} {k}: {column} truth={want[k][column]!r} mart={got[k][column]!r}")
    return problems


def read_marts(url: str) -> dict[str, list[dict]]:
    out = {}
    with warehouse.connect(url) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        for name, key in MART_KEYS.items():
            cur.execute(f"select * from marts.{name} order by {', '.join(key)}")
            out[name] = [dict(row) for row in cur.fetchall()]
    return out


def write_settings(url: str, settings: dict[str, dict]) -> None:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        for repo, values in settings.items():
            cur.execute(
                "insert into app.repository_settings (repo_full_name, deployment_source,"
                " production_environment_regex, deploy_workflow_regex, incident_label_regex,"
                " hotfix_label_regex, hotfix_branch_regex)"
                " values (%s, %s, %s, %s, %s, %s, %s)",
                (repo, values.get("deployment_source"), values.get("production_environment_regex"),
                 values.get("deploy_workflow_regex"), values.get("incident_label_regex"),
                 values.get("hotfix_label_regex"), values.get("hotfix_branch_regex")),
            )


def ingest(url: str, org) -> None:
    with run_sandbox(org) as sandbox:
        client = GitHubClient(api_url=sandbox.rest_url, graphql_url=sandbox.graphql_url, tokens=sandbox.tokens)
        report = sync_repositories(url, client, [repo.full_name for repo in org.repositories])
    assert report.ok, report.summary()
    load_users(url, org)


CASES = {
    # seed: (repositories, pull requests per repository, settings)
    1: (4, 40, None),
    2: (5, 40, None),
    3: (4, 50, "custom"),
}


@pytest.mark.parametrize("seed", sorted(CASES))
def test_marts_equal_the_sandbox_ground_truth(database_url, tmp_path, seed):
    repos, prs, settings_kind = CASES[seed]
    org = generator.generate(seed, repos=repos, prs_per_repo=prs, weeks=12, users=6)
    assert {repo.deployment_style for repo in org.repositories} == set(generator.STYLES)
    settings = None
    if settings_kind == "custom":
        names = [repo.full_name for repo in org.repositories]
        settings = {
            # a workflow_runs repository measured by its merges instead
            names[1]: {"deployment_source": "merges"},
            # a case-sensitive production regex that still matches "production"
            names[0]: {"production_environment_regex": "^prod"},
            # incidents only from one label, case-insensitively
            names[2]: {"incident_label_regex": "(?i)^incident$"},
            # hotfixes only by an "urgent" label, never by branch
            names[3]: {"hotfix_label_regex": "(?i)^urgent$", "hotfix_branch_regex": "^never/"},
        }
        write_settings(database_url, settings)
    ingest(database_url, org)

    # As deployed: the views prepared once, then a wave. One seed runs the data tests too
    # (of the views and of the wave); the others only build.
    command = "build" if seed == 1 else "run"
    # As deployed: a test that also reads a wave model waits for the wave (cautious).
    run_dbt(database_url, command, "--selector", "views", "--indirect-selection", "cautious",
            target_path=tmp_path / "views")
    if command == "run":  # `run` builds no seed
        run_dbt(database_url, "seed", target_path=tmp_path / "seed")
    run_dbt(database_url, command, "--selector", "wave", target_path=tmp_path / "target")

    expected = truth.compute(org, settings)
    actual = read_marts(database_url)
    problems = []
    for name in MART_KEYS:
        assert len(expected[name]) > 0 or name in ("fct_incidents",), f"truth has no {name} rows"
        problems += compare_mart(name, expected[name], actual[name])
    assert not problems, f"{len(problems)} differences, first ones:\n" + "\n".join(problems[:40])
    # The comparison is not vacuous: shipped pull requests, incidents and graded weeks exist.
    assert sum(1 for row in actual["fct_pull_requests"] if row["shipped_at"] is not None) > 0
    assert len(actual["fct_incidents"]) > 0
    assert {row["source"] for row in actual["fct_deployments"]} >= {"github_deployments", "releases"}
    assert {row["dominant_stage"] for row in actual["fct_bottlenecks"]} - {None}
    _assert_ai_rules_exercised(org, actual)


def _assert_ai_rules_exercised(org, actual: dict[str, list[dict]]) -> None:
    """docs/ai.md: every detection rule flags some pull request of the sandbox, human co-authors
    (one named Claude) and near-miss trailers and labels flag none, and the cohort marts hold
    both small and large cohorts and an adoption week."""
    evidence = [row["ai_evidence"] for row in actual["fct_pull_requests"] if row["ai_assisted"]]
    for prefix in ("agent author ", "co-author ", "trailer ", "label "):
        assert any(e.startswith(prefix) for e in evidence), prefix
    assert all(row["ai_assisted"] == (row["ai_evidence"] is not None) for row in actual["fct_pull_requests"])
    # An AI agent's merged pull request has a person's cycle stages (it is in the AI cohort);
    # a dependency bot's has none.
    merged = [row for row in actual["fct_pull_requests"] if row["merged_at"] is not None]
    assert any(row["is_ai_agent"] and row["coding_hours"] is not None for row in merged)
    assert all(row["coding_hours"] is None for row in merged if row["is_bot"] and not row["is_ai_agent"])
    flagged = {row["pull_request_id"] for row in actual["fct_pull_requests"] if row["ai_assisted"]}
    human_co_authors = [name for name, _ in generator.HUMAN_CO_AUTHORS]
    near_misses = [
        pr for repo in org.repositories for pr in repo.pull_requests
        if any(f"Co-authored-by: {name} <" in c.message for c in pr.commits for name in human_co_authors)
        or any(t in c.message for c in pr.commits for t in generator.NOT_AI_TRAILERS)
        or set(pr.labels) & set(generator.NOT_AI_LABELS)
    ]
    assert any("Co-authored-by: Claude <claude@" in c.message for pr in near_misses for c in pr.commits)
    innocent = [pr for pr in near_misses if truth.ai_evidence(pr) is None]
    assert innocent and not {pr.node_id for pr in innocent} & flagged
    cohorts = actual["fct_ai_cohorts_weekly"]
    assert {row["is_too_small_12w"] for row in cohorts} == {True, False}
    assert all(row["median_pr_size_12w"] is None for row in cohorts if row["is_too_small_12w"])
    assert all(row["median_pr_size_12w"] is not None for row in cohorts if not row["is_too_small_12w"])
    assert any(row["adoption_week"] is not None and not row["is_too_small_after"] for row in actual["fct_ai_adoption"])


def test_truth_rules_are_the_dbt_defaults():
    """The ground truth restates dbt_project.yml's ai_* vars; they must agree."""
    variables = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    assert variables["ai_coauthor_emails"] == truth.AI_COAUTHOR_EMAILS
    assert variables["ai_agent_logins"] == truth.AI_AGENT_LOGINS
    assert variables["ai_trailer_keys"] == truth.AI_TRAILER_KEYS
    assert variables["ai_tool_pattern"] == truth.AI_TOOL_PATTERN
    assert variables["ai_label_pattern"] == truth.AI_LABEL_PATTERN
    assert variables["ai_cohort_min_prs"] == truth.AI_COHORT_MIN_PRS
    assert variables["ai_adoption_share"] == truth.AI_ADOPTION_SHARE
    assert variables["ai_adoption_window_weeks"] == truth.AI_ADOPTION_WINDOW_WEEKS
