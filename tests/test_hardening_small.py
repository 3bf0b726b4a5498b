"""Finding 9: the smaller items, each against the real thing (Postgres, dbt, the sandbox, the CLI)."""

from __future__ import annotations

import stat

import pytest
from click.testing import CliRunner
from conftest import env_router, env_settings
from test_dbt_models import run_dbt
from test_llm_asset import seed_marts

from ghmetrics_dagster import sync, warehouse
from ghmetrics_dagster.cli import main
from ghmetrics_dagster.github import errors
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.sandbox import generator, server
from ghmetrics_dagster.sandbox.server import Scripted
from ghmetrics_dagster.summaries.service import summarise_user
from ghmetrics_dagster.warehouse.dbt_env import dbt_env


def rows(url: str, sql: str, *args) -> list[tuple]:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


@pytest.mark.parametrize(
    "regex, says",
    [
        (r"^(a+)+\1$", "back-references"),
        (r"(?P<x>inc)(?P=x)", "back-references"),
        (r"(?i)\bincident\b", "word boundary in Python but a backspace in Postgres"),
        (r"prod\B", "backslash in Postgres"),
    ],
)
def test_repos_set_refuses_back_references_and_word_boundaries(database_url, regex, says):
    result = CliRunner().invoke(main, ["repos", "set", "acme/api", "--incident-label-regex", regex])
    assert result.exit_code == 1 and says in result.output and result.output.count("\n") == 1, result.output
    assert rows(database_url, "select count(*) from app.repository_settings")[0][0] == 0
    # An escaped backslash followed by b is a literal, accepted.
    assert CliRunner().invoke(main, ["repos", "set", "acme/api", "--incident-label-regex", r"^a\\b$"]).exit_code == 0


def test_dbt_runs_with_a_statement_timeout(database_url, tmp_path, monkeypatch):
    assert dbt_env(database_url)["PGOPTIONS"] == "-c statement_timeout=15min"
    monkeypatch.setenv("GHMETRICS_DBT_STATEMENT_TIMEOUT", "1s")
    proc = run_dbt(database_url, "show", "--inline", "select pg_sleep(4) as slept", target_path=tmp_path / "t", check=False)
    assert proc.returncode != 0 and "statement timeout" in proc.stdout + proc.stderr


def test_summary_row_is_committed_only_with_its_report(database_url, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    seed_marts(database_url)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    with pytest.raises(OSError):
        summarise_user("alice", database_url, env_router(database_url), blocked / "reports")
    assert rows(database_url, "select count(*) from app.summaries")[0][0] == 0  # no orphan row
    outcome = summarise_user("alice", database_url, env_router(database_url), tmp_path / "reports")
    assert rows(database_url, "select id from app.summaries") == [(outcome.summary_id,)]
    for path in (outcome.html_path, outcome.json_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "reports").stat().st_mode) == 0o700


def test_ghmetrics_home_is_private(tmp_path, monkeypatch):
    shared = tmp_path / "home"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    monkeypatch.setenv("GHMETRICS_HOME", str(shared))
    # Nobody else may list or read it; they may only pass through to what has its own mode
    # (the embedded Postgres, which runs as its own user when ghmetrics runs as root).
    assert stat.S_IMODE(env_settings().home().stat().st_mode) == 0o711


def test_plain_http_github_url_needs_an_opt_in(monkeypatch):
    monkeypatch.delenv("GHMETRICS_ALLOW_INSECURE_HTTP", raising=False)
    with pytest.raises(errors.GitHubError, match="plain http: tokens would be sent in clear") as raised:
        GitHubClient("http://github.example.com/api/v3", tokens=["ghp_" + "x" * 36])
    assert "\n" not in str(raised.value)
    GitHubClient("http://127.0.0.1:9/api", tokens=["t"])  # loopback (the sandbox) is fine
    GitHubClient("http://[::1]:9/api", tokens=["t"])
    monkeypatch.setenv("GHMETRICS_ALLOW_INSECURE_HTTP", "1")
    GitHubClient("http://github.example.com/api/v3", tokens=["t"], allow_insecure_http=env_settings().allow_insecure_http)


@pytest.fixture(scope="module")
def org():
    return generator.generate(17, repos=1, prs_per_repo=10, weeks=3, users=4)


def _client(sb):
    return GitHubClient(sb.rest_url, sb.graphql_url, list(sb.tokens), backoff_base=0.01, timeout=5)


def test_empty_workflow_run_page_never_moves_the_watermark_back(org, database_url):
    repo = org.repositories[0].full_name
    query = "select watermark from raw.sync_state where repo_full_name = %s and stream = 'workflow_runs'"
    with server.run_sandbox(org) as sb:
        sync.sync_repositories(database_url, _client(sb), [repo], streams=["workflow_runs"])
        first = rows(database_url, query, repo)[0][0]
        assert first is not None
        for _ in range(2):
            sb.script(Scripted(match="/actions/runs", body='{"total_count": 0, "workflow_runs": []}'))
            report = sync.sync_repositories(database_url, _client(sb), [repo], streams=["workflow_runs"])
            assert report.ok
            assert rows(database_url, query, repo)[0][0] == first


def test_rows_total_counts_the_rows_stored(database_url):
    org = generator.generate(17, repos=1, prs_per_repo=10, weeks=3, users=4, styles=["releases"])
    repo = org.repositories[0].full_name
    with server.run_sandbox(org) as sb:
        for _ in range(3):
            # A fresh answer to the change check: the releases are read (and upserted) again.
            sb.script(Scripted(match="/releases", body="[]", headers={"ETag": 'W/"new"'}))
            sync.sync_repositories(database_url, _client(sb), [repo], streams=["repositories", "releases"])
    totals = dict(rows(database_url, "select stream, rows_total from raw.sync_state where repo_full_name = %s", repo))
    assert totals["repositories"] == 1
    assert totals["releases"] == rows(database_url, "select count(*) from raw.releases where repo_full_name = %s", repo)[0][0]
    assert totals["releases"] > 0


def test_cli_failure_is_one_line_and_verbose_shows_details(monkeypatch, home):
    monkeypatch.setenv("GHMETRICS_DATABASE_URL", "postgresql://127.0.0.1:1/none")
    result = CliRunner().invoke(main, ["users", "list"])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and result.output.startswith("error: ")
    verbose = CliRunner().invoke(main, ["--verbose", "users", "list"])
    assert verbose.exit_code == 1 and isinstance(verbose.exception, warehouse.WarehouseError)
