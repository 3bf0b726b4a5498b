"""Findings 8 and 1: a user's scope — canonical names, no data, and only readable repositories.

Real Postgres, the sandbox over HTTP, the CLI as users run it.
"""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from test_llm_asset import seed_marts

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.cli import main
from ghmetrics_dagster.github import sync
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.llm.service import summarise_user
from ghmetrics_dagster.sandbox import generator, server
from ml import insights


@pytest.fixture(scope="module")
def org():
    return generator.generate(13, repos=2, prs_per_repo=10, weeks=3, users=4)


def make_client(sb, tokens=None) -> GitHubClient:
    return GitHubClient(sb.rest_url, sb.graphql_url, list(tokens or sb.tokens), backoff_base=0.01, timeout=5)


def rows(url: str, sql: str, *args) -> list[tuple]:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def test_repository_added_in_another_case_takes_githubs_name(org, database_url):
    canonical = org.repositories[0].full_name
    shouted = canonical.upper()
    assert CliRunner().invoke(main, ["users", "add", "alice", "--repo", shouted]).exit_code == 0
    assert CliRunner().invoke(main, ["users", "add", "bob", "--repo", shouted, "--repo", canonical]).exit_code == 0
    with server.run_sandbox(org) as sb:
        report = sync.sync_user(database_url, "alice", make_client(sb), streams=["repositories", "pull_requests"])
    assert report.ok, report.metadata()["errors"]
    assert rows(database_url, "select login, repo_full_name from app.user_repositories order by 1") == [
        ("alice", canonical), ("bob", canonical)
    ]
    # The scope now meets the ingested rows.
    assert rows(database_url, "select count(*) from raw.pull_requests where repo_full_name = %s", canonical)[0][0] > 0


def test_insights_on_an_empty_frame_keep_their_columns():
    """ml__insights failed with KeyError: 'anomaly_metric' for a user with no data."""
    scored = insights.score(pd.DataFrame(), insights.Champions(), "newcomer")
    flagged = scored[scored["is_anomaly"]]  # the asset's own expression
    assert list(flagged["anomaly_metric"].dropna()) == [] and "anomaly_metric" in flagged.columns


def test_user_with_no_data_gets_a_no_activity_summary(database_url, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    seed_marts(database_url)  # alice has weeks, bob has none
    outcome = summarise_user("bob", database_url, reports_dir=tmp_path)
    assert "No activity has been recorded for bob yet" in outcome.result.text
    assert outcome.result.grounded and outcome.html_path.exists()
