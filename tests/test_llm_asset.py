"""The user_summaries asset: marts in a real Postgres -> router (fake providers over HTTP) ->
app.summaries, the HTML/JSON report and the materialisation metadata."""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics

import dagster as dg
import psycopg2
import pytest
from conftest import env_resources, env_router, env_settings
from fake_llm_servers import FakeAnthropic, FakeOpenAI

from ghmetrics_dagster.defs.summaries import user_summaries
from ghmetrics_dagster.metrics import contracts
from ghmetrics_dagster.summaries import report
from ghmetrics_dagster.summaries.aggregates import load_summary_input
from ghmetrics_dagster.summaries.service import demo_summary

# marts.fct_dora_weekly's columns (docs/contracts.md, docs/dora.md), in the mart's order.
DORA_COLUMNS = ", ".join(
    ["scope_type text", "scope text", "week_start date"]
    + [f"{c} {'bigint' if c in ('deployments', 'deployment_days', 'failed_changes', 'incidents', 'merged_prs') else 'numeric'}"
       for c in contracts.WEEKLY_METRICS]
    + [f"{c} text" for c in contracts.LEGACY_GRADE_COLUMNS]
    + [f"{c} numeric" for c in contracts.TRAILING_METRICS + contracts.DORA_WEEK_METRICS + contracts.DORA_WINDOW_METRICS]
    + [f"{c} integer" for c in contracts.BAND_COLUMNS]
    + [f"{c} numeric" for c in contracts.SCORE_COLUMNS + contracts.BENCHMARK_DELTA_COLUMNS]
)
BENCHMARKS = {"overall": 4.3, "throughput": 6.0, "stability": 7.9, "lead_time": 5.5, "deployment_frequency": 5.9,
              "recovery": 6.6, "change_fail": 7.4, "rework": 7.8}
PR_COLUMNS = """
    pull_request_id text, repo_full_name text, number int, title text, author_login text, is_bot boolean,
    is_draft boolean, state text, created_at timestamptz, ready_for_review_at timestamptz,
    first_commit_at timestamptz, first_review_at timestamptz, merged_at timestamptz, closed_at timestamptz,
    shipped_at timestamptz, shipping_deployment_id text, coding_hours numeric, pickup_hours numeric,
    review_hours numeric, deploy_hours numeric, lead_time_hours numeric, additions int, deletions int,
    pr_size int, review_count int, is_revert boolean
"""
# marts.fct_trailing_12w's columns, in the mart's order.
TRAILING_COLUMNS = """
    scope_type text, scope text, week_start date, deployments_12w bigint, median_weekly_deployment_days_12w numeric,
    change_failure_rate_12w numeric, incidents_12w bigint, median_time_to_restore_hours_12w numeric,
    merged_prs_12w bigint, review_coverage_12w numeric, median_lead_time_hours_12w numeric, median_pr_size_12w numeric,
    median_coding_hours_12w numeric, median_pickup_hours_12w numeric, median_review_hours_12w numeric,
    median_deploy_hours_12w numeric
"""
# The AI marts' columns the surfaces read (docs/ai.md; fct_copilot_org_weekly in docs/contracts.md).
AI_COHORT_COLUMNS = ", ".join(
    ["scope_type text", "scope text", "week_start date", "cohort text", "merged_prs bigint", "merged_prs_12w bigint",
     "is_too_small_12w boolean"]
    + [f"{field}_12w numeric" for field in ("median_lead_time_hours", "median_coding_hours", "median_pickup_hours",
                                              "median_review_hours", "median_deploy_hours", "median_pr_size",
                                              "review_coverage", "change_failure_rate", "rework_rate")]
)
LAST_WEEK = dt.date(2026, 5, 4)
ADOPTION_WEEK = LAST_WEEK - dt.timedelta(weeks=8)
REPOS = ("acme/api", "acme/web")


def seed_marts(url: str) -> None:
    """A small fct_dora_weekly / fct_pull_requests / fct_trailing_12w / ml.insights for user alice
    (contract columns)."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("create schema if not exists marts")
        cur.execute(f"create table marts.fct_dora_weekly ({DORA_COLUMNS})")
        cur.execute(f"create table marts.fct_pull_requests ({PR_COLUMNS})")
        cur.execute(f"create table marts.fct_trailing_12w ({TRAILING_COLUMNS})")
        cur.execute("insert into app.users (login, display_name) values ('alice', 'Alice'), ('bob', 'Bob')")
        cur.executemany("insert into app.user_repositories values ('alice', %s)", [(r,) for r in REPOS])
        cur.execute("create table marts.dora_benchmarks (metric text, segment_type text, segment text,"
                    " segment_label text, mean_score numeric, standard_deviation numeric, published_mean numeric,"
                    " published_scale text)")
        cur.executemany("insert into marts.dora_benchmarks (metric, segment_type, segment, segment_label, mean_score)"
                        " values (%s, 'all', 'all', 'All industries', %s)", list(BENCHMARKS.items()))
        weeks = []
        for i in range(14):
            week = LAST_WEEK - dt.timedelta(weeks=13 - i)
            latest = i == 13
            # deployments 2..4, one failed change every third week; in the last week the deployment
            # frequency drops a Quick Check band.
            deployments = 2 + i % 3
            row = {
                "scope_type": "user", "scope": "alice", "week_start": week,
                "deployments": deployments, "deployment_days": deployments, "median_lead_time_hours": 20 + i,
                "change_failure_rate": (1 / deployments) if i % 3 == 0 else 0, "failed_changes": 1 if i % 3 == 0 else 0,
                "incidents": 1 if i % 3 == 0 else 0, "median_time_to_restore_hours": 4.0 if i % 3 == 0 else None,
                "merged_prs": 5, "review_coverage": 0.8, "median_pr_size": 120, "p90_pr_size": 300,
                "median_coding_hours": 5.5, "median_pickup_hours": 3.25, "median_review_hours": 8,
                "median_deploy_hours": 1.5,
                "legacy_deployment_frequency_grade": "medium" if latest else "high",
                "legacy_lead_time_grade": "high",
                "legacy_change_failure_rate_grade": "high" if latest else "elite",
                "legacy_time_to_restore_grade": "high", "review_coverage_12w": 0.8,
                "legacy_performance_score": 70.5 if latest else 75,
                "rework_deployments": 0, "rework_rate": 0, "recovered_deployments": 1 if i % 3 == 0 else 0,
                "median_recovery_hours": 6.0 if i % 3 == 0 else None,
                "lead_time_hours_12w": 26.5, "deployment_days_per_week_12w": 2.75,
                "deployments_per_deployment_day_12w": 1, "change_failure_rate_12w": 0.125,
                "recovery_hours_12w": 6.0, "rework_rate_12w": 0.0625, "rework_rate_26w": 0.05,
                "lead_time_band": 4, "deployment_frequency_band": 3 if latest else 4, "recovery_band": 5,
                "lead_time_score": 6, "deployment_frequency_score": 4 if latest else 6, "recovery_score": 8,
                "change_fail_score": 8.75, "rework_score": 9.375,
                "throughput_score": 6 if latest else 6.6667, "stability_score": 9.0625,
                "overall_score": 7.225 if latest else 7.625,
                "overall_vs_benchmark": 2.925 if latest else 3.325,
                "throughput_vs_benchmark": 0 if latest else 0.6667, "stability_vs_benchmark": 1.1625,
            }
            weeks.append(row)
            cur.execute(f"insert into marts.fct_dora_weekly ({', '.join(row)}) values ({', '.join(['%s'] * len(row))})",
                        list(row.values()))
            for repo, share in zip(REPOS, (deployments - 1, 1), strict=False):
                cur.execute(
                    "insert into marts.fct_dora_weekly (scope_type, scope, week_start, deployments,"
                    " median_lead_time_hours, overall_score) values ('repository', %s, %s, %s, %s, %s)",
                    (repo, week, share, 18.0 + i, 7.2 if repo == "acme/api" else 5.4),
                )
        # The trailing 12 weeks as dbt sums them, with the medians of the pull requests below.
        window = weeks[-12:]
        deployments = sum(w["deployments"] for w in window)
        cur.execute(
            "insert into marts.fct_trailing_12w values ('user', 'alice', %s, %s, %s, %s, %s, null, %s, 0.8, 15, null,"
            " 4, 3, 6, 2)",
            (LAST_WEEK, deployments, statistics.median(w["deployment_days"] for w in window),
             sum(w["failed_changes"] for w in window) / deployments, sum(w["incidents"] for w in window),
             sum(w["merged_prs"] for w in window)),
        )
        cur.executemany(
            "insert into marts.fct_trailing_12w (scope_type, scope, week_start, deployments_12w)"
            " values ('repository', %s, %s, %s)",
            [("acme/api", LAST_WEEK, deployments - 12), ("acme/web", LAST_WEEK, 12)],
        )
        merged = dt.datetime(2026, 5, 5, 12, tzinfo=dt.UTC)
        for n, (coding, pickup, review, deploy) in enumerate([(2, 1, 4, 1), (4, 3, 6, 2), (6, 5, 8, 3)], start=1):
            cur.execute(
                "insert into marts.fct_pull_requests (pull_request_id, repo_full_name, number, author_login,"
                " is_bot, merged_at, shipped_at, coding_hours, pickup_hours, review_hours, deploy_hours,"
                " lead_time_hours) values (%s, 'acme/api', %s, 'alice', false, %s, %s, %s, %s, %s, %s, %s)",
                (f"PR_{n}", n, merged, merged, coding, pickup, review, deploy, coding + pickup + review + deploy),
            )
        # Alice's pull requests: 2 of the 5 a week AI-assisted, so both cohorts pass 20 over 12 weeks;
        # Copilot reports for acme (hers) and for an organisation outside her scope.
        cur.execute(f"create table marts.fct_ai_cohorts_weekly ({AI_COHORT_COLUMNS})")
        for i, week in enumerate(w["week_start"] for w in weeks):
            for cohort, per_week, lead, coverage in (("ai_assisted", 2, 18.5, 0.75), ("other", 3, 27.25, 0.9)):
                window = per_week * min(i + 1, 12)
                cur.execute(
                    "insert into marts.fct_ai_cohorts_weekly (scope_type, scope, week_start, cohort, merged_prs,"
                    " merged_prs_12w, is_too_small_12w, median_lead_time_hours_12w, review_coverage_12w)"
                    " values ('user', 'alice', %s, %s, %s, %s, %s, %s, %s)",
                    (week, cohort, per_week, window, window < 20, None if window < 20 else lead,
                     None if window < 20 else coverage),
                )
        cur.execute("create table marts.fct_ai_adoption (scope_type text, scope text, adoption_week date,"
                    " adoption_week_share numeric)")
        cur.execute("insert into marts.fct_ai_adoption values ('user', 'alice', %s, 0.4), ('user', 'bob', null, null)",
                    (ADOPTION_WEEK,))
        cur.execute("create table marts.fct_copilot_org_weekly (org text, week_start date, weekly_active_users bigint)")
        cur.executemany("insert into marts.fct_copilot_org_weekly values (%s, %s, %s)",
                        [(org, LAST_WEEK - dt.timedelta(weeks=k), users + k)
                         for org, users in (("acme", 3), ("elsewhere", 50)) for k in range(3)])
        cur.execute(  # a bot PR counts for nothing
            "insert into marts.fct_pull_requests (pull_request_id, repo_full_name, number, is_bot, merged_at,"
            " coding_hours) values ('PR_bot', 'acme/api', 99, true, %s, 500)",
            (merged,),
        )
        cur.execute(
            "insert into ml.insights (login, scope_type, scope, week_start, predicted_lead_time_hours,"
            " predicted_overall_score, predicted_lead_time_hours_low, predicted_lead_time_hours_high, interval_level,"
            " lead_time_forecast_status, overall_score_forecast_status, anomaly_score, is_anomaly, anomaly_metric,"
            " anomaly_z, anomaly_weeks_per_event, anomaly_observed, anomaly_expected_low, anomaly_expected_high,"
            " model_version)"
            " values ('alice', 'user', 'alice', %s, 31.5, 7.25, 24, 41, 0.8, 'published', 'published', 0.93, true,"
            " 'median_lead_time_hours', 3.4, 1500, 33, 12, 30, '3')",
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
    assert data.band_changes == {"deployment_frequency_band": (4, 3)}
    assert data.latest["overall_score"] == 7.225 and data.latest["recovery_hours_12w"] == 6.0
    assert data.benchmarks["overall"] == 4.3 and data.benchmark_segment == "All industries"
    assert data.legacy_grades["legacy_deployment_frequency_grade"] == "medium"
    assert [r.overall_score for r in data.repositories] == [7.2, 5.4]
    assert [(a.week_start, a.metric, a.anomaly_score) for a in data.anomalies] == [
        (LAST_WEEK.isoformat(), "median_lead_time_hours", 0.93)
    ]
    assert {k: v for k, v in data.predictions.items() if v is not None} == {
        "predicted_lead_time_hours": 31.5, "predicted_overall_score": 7.25, "predicted_lead_time_hours_low": 24,
        "predicted_lead_time_hours_high": 41, "interval_level": 0.8}
    assert data.forecast_status == {"lead_time": "published", "overall_score": "published"}
    assert (data.anomalies[0].z, data.anomalies[0].observed, data.anomalies[0].expected_high) == (3.4, 33, 30)
    # The AI cohorts over the latest week's 12 weeks, the adoption curve and week, and Copilot's
    # weekly active users of her organisation only.
    assert data.ai_comparable and data.ai_cohorts["ai_assisted"]["merged_prs"] == 24
    assert data.ai_cohorts["other"]["median_lead_time_hours"] == 27.25
    assert [(w["merged_prs"], w["ai_assisted_prs"]) for w in data.ai_weeks] == [(5, 2)] * 14
    assert data.ai_adoption["adoption_week"] == ADOPTION_WEEK.isoformat()
    assert {w["org"] for w in data.copilot_weeks} == {"acme"} and len(data.copilot_weeks) == 3
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
            result = dg.materialize([user_summaries], resources=env_resources(), instance=instance, partition_key="alice")
            assert result.success
            [event] = result.asset_materializations_for_node("app__user_summaries")
            runs.append((result.run_id, event.metadata))

        (first_run, first), (second_run, second) = runs
        # Anomaly + a Quick Check band change: the strong tier, the cheapest strong model available.
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
    # The five metrics and the scores against the benchmark; the overall score's trend; teams, not persons.
    assert "Overall <strong>7.2 / 10</strong> (DORA 2025 benchmark, All industries: 4.3)" in page
    for name in ("Lead time for changes", "Deployment frequency", "Failed deployment recovery time",
                 "Change fail rate", "Rework rate", "Throughput", "Stability"):
        assert f"<td>{name}</td>" in page or f"<th>{name}</th>" in page, name
    assert "Overall score (0-10" in page and "DORA 2025 benchmark, overall" in page
    assert "not a person" in page and "DORA 2023 grades (legacy" in page
    assert "median_lead_time_hours" in page and rows[0][7].split(".")[0] in page
    # The two cohorts side by side and the adoption curve (with Copilot's active users) beside the overall trend.
    assert "<th>median lead time</th><td class=\"num\">18.5 h</td><td class=\"num\">27.2 h</td>" in page
    assert "AI adoption: share of merged pull requests AI-assisted per week" in page
    assert "Copilot weekly active users" in page and "elsewhere" not in page
    # The summary compares them, with figures of the facts, and the grounding check passed.
    assert "AI-assisted pull requests, median lead time, last 12 weeks" in openai_fake.requests[0]["messages"][-1]["content"]
    exported = json.loads(open(json_path).read())
    assert exported["summary"]["text"] == rows[1][7] and exported["summary"]["cache_hit"] is True
    assert exported["aggregates"]["login"] == "alice" and len(exported["aggregates"]["weeks"]) == 14


def test_demo_summary_without_keys_uses_the_rule_based_writer(database_url, tmp_path, monkeypatch):
    seed_marts(database_url)
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GHMETRICS_REPORTS_DIR", str(tmp_path / "r"))
    text, path = demo_summary(database_url, env_router(database_url), env_settings().reports_dir())
    assert text.startswith("Summary for alice, week starting 2026-05-04. Overall 7.2 / 10 (DORA 2025 benchmark,"
                           " All industries: 4.3)")
    assert "not a person" in text and "rework rate 6.2% (score 9.4)" in text
    assert path.exists() and path.name == "alice.html"
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("select provider, grounded, cost_usd from app.summaries")
        assert cur.fetchall() == [("rules", True, 0)]


def test_asset_definition_matches_the_shared_conventions():
    spec = user_summaries.specs_by_key[dg.AssetKey(["app", "user_summaries"])]
    assert user_summaries.partitions_def.name == "users"
    assert {d.asset_key for d in spec.deps} >= {dg.AssetKey(["marts", "fct_dora_weekly"]), dg.AssetKey(["ml", "insights"])}
