"""Findings 8 and 1: a user's scope — canonical names, no data, and only readable repositories.

Real Postgres, the sandbox over HTTP, the CLI as users run it.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import env_router, env_settings
from test_llm_asset import seed_marts

from ghmetrics_dagster import sync, warehouse
from ghmetrics_dagster.cli import main
from ghmetrics_dagster.github import queries
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.sandbox import generator, server
from ghmetrics_dagster.sandbox.server import Scripted
from ghmetrics_dagster.summaries.service import summarise_user
from ghmetrics_dagster.sync import discovery
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
        client = make_client(sb)
        repos = discovery.resolve_user_repositories(database_url, client, "alice")
        report = sync.sync_repositories(database_url, client, repos, streams=["repositories", "pull_requests"])
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
    outcome = summarise_user("bob", database_url, env_router(database_url), tmp_path)
    assert "No activity has been recorded for bob yet" in outcome.result.text
    assert outcome.result.grounded and outcome.html_path.exists()


# --- finding 1: isolation -------------------------------------------------------------------


def _not_found_for(sb, token: str, names: list[str], hidden: str) -> None:
    """The user's token gets GitHub's answer for a private repository it cannot see."""
    client = make_client(sb)
    variables = {}
    for i, name in enumerate(names):
        variables[f"o{i}"], variables[f"n{i}"] = name.split("/")
    data = client.graphql(queries.repositories_query(len(names)), variables)
    alias = f"r{names.index(hidden)}"
    data[alias] = None
    errors = [{"type": "NOT_FOUND", "path": [alias], "message": f"Could not resolve to a Repository with the name '{hidden}'."}]
    sb.script(Scripted(match="query Repositories", body=json.dumps({"data": data, "errors": errors}), token=token, times=None))


def test_repository_the_users_token_cannot_read_is_left_out_of_their_scope(org, database_url, tmp_path, monkeypatch):
    from ghmetrics_dagster.core import secrets
    from ghmetrics_dagster.github import access
    from ghmetrics_dagster.summaries.aggregates import load_summary_input
    from ml import data as ml_data

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    seed_marts(database_url)  # alice: acme/api and acme/web, with marts for both; bob: none
    names = ["acme/api", "acme/web"]
    assert [r.full_name for r in org.repositories] == names
    with server.run_sandbox(org) as sb:
        user_token, service_token = sb.tokens[0], sb.tokens[1]
        with warehouse.connect(database_url) as conn, conn.cursor() as cur:
            cur.execute("update app.users set token_ciphertext = %s where login = 'alice'", (secrets.keyring(env_settings()).encrypt(user_token, cur),))
            cur.execute("insert into app.user_repositories values ('bob', 'acme/web')")
        _not_found_for(sb, user_token, names, "acme/web")
        monkeypatch.setenv("GITHUB_TOKEN", service_token)
        monkeypatch.setenv("GHMETRICS_GITHUB_API_URL", sb.rest_url)
        monkeypatch.setenv("GHMETRICS_GITHUB_GRAPHQL_URL", sb.graphql_url)
        alice = access.record_access(database_url, "alice", names, with_own_token=True, client=make_client(sb, [user_token]))
        # no token: the service token's view
        bob = access.record_access(database_url, "bob", ["acme/web"], with_own_token=False,
                                   client=make_client(sb, [service_token]))
        # Another user's run ingests acme/web with the service token.
        report = sync.sync_repositories(database_url, make_client(sb, [service_token]), names, streams=["repositories"])
        assert report.ok
    assert (alice.checked_with, alice.readable, list(alice.unreadable)) == ("user token", ["acme/api"], ["acme/web"])
    assert (bob.checked_with, bob.readable) == ("service token", ["acme/web"])
    assert rows(database_url, "select login, repo_full_name from app.user_scope order by 1, 2") == [
        ("alice", "acme/api"), ("bob", "acme/web")
    ]
    # Summary input, report and insights see only the readable repository, and say why.
    with warehouse.connect(database_url) as conn:
        data = load_summary_input(conn, "alice")
    assert [r.name for r in data.repositories] == ["acme/api"]
    assert "acme/web" in data.scope_note and "user's own token" in data.scope_note
    assert ml_data.user_scopes(database_url, "alice") == [("user", "alice"), ("repository", "acme/api")]
    outcome = summarise_user("alice", database_url, env_router(database_url), tmp_path)
    assert "acme/web" not in outcome.result.text
    assert "left out because that token cannot read them: acme/web" in outcome.html_path.read_text()


def test_dbt_user_scope_follows_app_user_scope(database_url, tmp_path):
    from test_dbt_models import run_dbt

    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("insert into app.users (login) values ('alice')")
        cur.execute("insert into app.user_repositories values ('alice', 'acme/api'), ('alice', 'acme/web')")
        cur.execute(
            "insert into app.user_repository_access (login, repo_full_name, readable, checked_with)"
            " values ('alice', 'acme/api', true, 'user token'), ('alice', 'acme/web', false, 'user token')"
        )
    run_dbt(database_url, "run", "--select", "stg_app__user_repositories", target_path=tmp_path / "t")
    assert rows(database_url, "select login, repo_full_name from staging.stg_app__user_repositories") == [("alice", "acme/api")]

