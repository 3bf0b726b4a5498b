"""The user_summaries asset: marts in a real Postgres -> router (fake providers over HTTP) ->
app.summaries, the HTML/JSON report and the materialisation metadata."""

from __future__ import annotations

import datetime as dt
import json
import re

import dagster as dg
import psycopg2
import pytest
from fake_llm_servers import FakeAnthropic, FakeOpenAI

from ghmetrics_dagster.defs.summaries import ASSETS, user_summaries
from ghmetrics_dagster.llm import report
from ghmetrics_dagster.llm.aggregates import load_summary_input
from ghmetrics_dagster.llm.service import demo_summary

DORA_COLUMNS = """
    scope_type text, scope text, week_start date, deployments bigint, deployment_days bigint,
    median_lead_time_hours numeric, change_failure_rate numeric, failed_changes bigint, incidents bigint,
    median_time_to_restore_hours numeric, merged_prs bigint, review_coverage numeric, median_pr_size numeric,
    p90_pr_size numeric, median_coding_hours numeric, median_pickup_hours numeric, median_review_hours numeric,
    median_deploy_hours numeric, deployment_frequency_grade text, lead_time_grade text,
    change_failure_rate_grade text, time_to_restore_grade text, review_coverage_12w numeric,
    performance_score numeric
"""
PR_COLUMNS = """
    pull_request_id text, repo_full_name text, number int, title text, author_login text, is_bot boolean,
    is_draft boolean, state text, created_at timestamptz, ready_for_review_at timestamptz,
    first_commit_at timestamptz, first_review_at timestamptz, merged_at timestamptz, closed_at timestamptz,
    shipped_at timestamptz, shipping_deployment_id text, coding_hours numeric, pickup_hours numeric,
    review_hours numeric, deploy_hours numeric, lead_time_hours numeric, additions int, deletions int,
    pr_size int, review_count int, is_revert boolean
"""
LAST_WEEK = dt.date(2026, 5, 4)
REPOS = ("acme/api", "acme/web")


def seed_marts(url: str) -> None:
    """A small fct_dora_weekly / fct_pull_requests / ml.insights for user alice (contract columns)."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("create schema if not exists marts")
        cur.execute(f"create table marts.fct_dora_weekly ({DORA_COLUMNS})")
        cur.execute(f"create table marts.fct_pull_requests ({PR_COLUMNS})")
        cur.execute("insert into app.users (login, display_name) values ('alice', 'Alice'), ('bob', 'Bob')")
        cur.executemany("insert into app.user_repositories values ('alice', %s)", [(r,) for r in REPOS])
        for i in range(14):
            week = LAST_WEEK - dt.timedelta(weeks=13 - i)
            latest = i == 13
            # deployments 2..4, one failed change every third week; the last week's grade drops.
            deployments = 2 + i % 3
            cur.execute(
                "insert into marts.fct_dora_weekly values ('user', 'alice', %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " %s, 120, 300, 5.5, 3.25, 8, 1.5, %s, 'high', %s, 'high', 0.8, %s)",
                (
                    week,
                    deployments,
                    deployments,
                    20 + i,
                    (1 / deployments) if i % 3 == 0 else 0,
                    1 if i % 3 == 0 else 0,
                    1 if i % 3 == 0 else 0,
                    4.0 if i % 3 == 0 else None,
                    5,
                    0.8,
                    "medium" if latest else "high",
                    "high" if latest else "elite",
                    70.5 if latest else 75,
                ),
            )
            for repo, share in zip(REPOS, (deployments - 1, 1)):
                cur.execute(
                    "insert into marts.fct_dora_weekly (scope_type, scope, week_start, deployments,"
                    " median_lead_time_hours, performance_score) values ('repository', %s, %s, %s, %s, %s)",
                    (repo, week, share, 18.0 + i, 72.0),
                )
        merged = dt.datetime(2026, 5, 5, 12, tzinfo=dt.timezone.utc)
        for n, (coding, pickup, review, deploy) in enumerate([(2, 1, 4, 1), (4, 3, 6, 2), (6, 5, 8, 3)], start=1):
            cur.execute(
                "insert into marts.fct_pull_requests (pull_request_id, repo_full_name, number, author_login,"
                " is_bot, merged_at, shipped_at, coding_hours, pickup_hours, review_hours, deploy_hours,"
                " lead_time_hours) values (%s, 'acme/api', %s, 'alice', false, %s, %s, %s, %s, %s, %s, %s)",
                (f"PR_{n}", n, merged, merged, coding, pickup, review, deploy, coding + pickup + review + deploy),
            )
        cur.execute(  # a bot PR counts for nothing
            "insert into marts.fct_pull_requests (pull_request_id, repo_full_name, number, is_bot, merged_at,"
            " coding_hours) values ('PR_bot', 'acme/api', 99, true, %s, 500)",
            (merged,),
        )
        cur.execute(
            "insert into ml.insights (login, scope_type, scope, week_start, predicted_lead_time_hours,"
            " predicted_performance_score, anomaly_score, is_anomaly, anomaly_metric, model_version)"
            " values ('alice', 'user', 'alice', %s, 31.5, 72.25, 0.93, true, 'median_lead_time_hours', '3')",
            (LAST_WEEK,),
        )


def test_load_summary_input_reads_the_contract_columns(database_url):
    seed_marts(database_url)
    with psycopg2.connect(database_url) as conn:
        data = load_summary_input(conn, "alice")
    assert data.week_start == LAST_WEEK.isoformat() and len(data.weeks) == 14
    window = [2 + i % 3 for i in range(2, 14)]
    assert data.trailing["deployments"] == sum(window)
    assert data.trailing["change_failure_rate"] == pytest.approx(4 / sum(window))
    assert data.latest["median_lead_time_hours"] == 33
    assert data.cycle_medians_12w == {"coding": 4.0, "pickup": 3.0, "review": 6.0, "deploy": 2.0}
    assert data.trailing["median_lead_time_hours"] == 15.0
    assert [r.name for r in data.repositories] == list(REPOS)
    assert data.repositories[1].deployments_12w == 12
    assert data.grade_changes == {
        "deployment_frequency_grade": ("high", "medium"),
        "change_failure_rate_grade": ("elite", "high"),
    }
    assert [(a.week_start, a.metric, a.anomaly_score) for a in data.anomalies] == [
        (LAST_WEEK.isoformat(), "median_lead_time_hours", 0.93)
    ]
    assert data.predictions == {"predicted_lead_time_hours": 31.5, "predicted_performance_score": 72.25}
    with psycopg2.connect(database_url) as conn:
        assert not load_summary_input(conn, "bob").has_data


def test_user_summaries_asset_materialises_a_grounded_summary_and_report(database_url, tmp_path, monkeypatch):
    seed_marts(database_url)
    reports = tmp_path / "reports"
    monkeypatch.setenv("GHMETRICS_REPORTS_DIR", str(reports))
    with FakeOpenAI() as openai_fake, FakeAnthropic() as anthropic_fake, dg.instance_for_test() as instance:
        monkeypatch.setenv("OPENAI_API_KEY", openai_fake.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", openai_fake.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", anthropic_fake.api_key)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_fake.base_url)
        instance.add_dynamic_partitions("users", ["alice"])

        runs = []
        for _ in range(2):
            result = dg.materialize(ASSETS, instance=instance, partition_key="alice")
            assert result.success
            [event] = result.asset_materializations_for_node("app__user_summaries")
            runs.append((result.run_id, event.metadata))

        (first_run, first), (second_run, second) = runs
        # Anomaly + grade change: the strong tier, the cheapest strong model available.
        assert first["provider"].value == "openai" and first["model"].value == "gpt-4.1"
        assert first["grounded"].value is True and first["cost_usd"].value > 0
        assert "gpt-4.1" in first["summary"].value and "$" in first["summary"].value
        assert second["cache_hit"].value is True and second["cost_usd"].value == 0
        assert len(openai_fake.requests) == 1 and not anthropic_fake.requests

    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "select provider, model, cost_usd, cache_hit, grounded, run_id, input_tokens, text"
            " from app.summaries where login = 'alice' order by id"
        )
        rows = cur.fetchall()
    assert [(r[0], r[3], r[4], r[5]) for r in rows] == [
        ("openai", False, True, first_run),
        ("openai", True, True, second_run),
    ]
    assert float(rows[0][2]) > 0 and float(rows[1][2]) == 0 and rows[0][6] > 0
    assert rows[0][7] == rows[1][7] and "2026-05-04" in rows[0][7]

    html_path, json_path = second["report_html"].value, second["report_json"].value
    assert html_path == str(reports / "alice.html") and json_path == str(reports / "alice.json")
    page = open(html_path, encoding="utf-8").read()
    # Offline: the folder's one copy of plotly.js, nothing from elsewhere; the page itself is small.
    (script,) = re.findall(r'<script src="([^"]+)"', page)
    assert script == report.PLOTLY_FILE and (reports / script).read_bytes().startswith(b"/**")
    assert len(page) < 200_000 and "cdn" not in page.lower()
    assert "Weekly DORA metrics" in page and "Cycle time" in page.replace("Cycle-time", "Cycle time")
    assert "median_lead_time_hours" in page and rows[0][7].split(".")[0] in page
    exported = json.loads(open(json_path).read())
    assert exported["summary"]["text"] == rows[1][7] and exported["summary"]["cache_hit"] is True
    assert exported["aggregates"]["login"] == "alice" and len(exported["aggregates"]["weeks"]) == 14


def test_demo_summary_without_keys_uses_the_rule_based_writer(database_url, tmp_path, monkeypatch):
    seed_marts(database_url)
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GHMETRICS_REPORTS_DIR", str(tmp_path / "r"))
    text, path = demo_summary(database_url=database_url)
    assert text.startswith("Summary for alice, week starting 2026-05-04.")
    assert path.exists() and path.name == "alice.html"
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("select provider, grounded, cost_usd from app.summaries")
        assert cur.fetchall() == [("rules", True, 0)]


def test_asset_definition_matches_the_shared_conventions():
    spec = user_summaries.specs_by_key[dg.AssetKey(["app", "user_summaries"])]
    assert user_summaries.partitions_def.name == "users"
    assert {d.asset_key for d in spec.deps} >= {dg.AssetKey(["marts", "fct_dora_weekly"]), dg.AssetKey(["ml", "insights"])}
