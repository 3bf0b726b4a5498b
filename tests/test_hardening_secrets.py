"""Secrets never leak: GitHub errors that echo the credential, database passwords in any form.

Against the sandbox GitHub server over real HTTP and a real Postgres.
"""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner
from conftest import env_settings

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.cli import main
from ghmetrics_dagster.github import errors
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.sandbox import generator, server
from ghmetrics_dagster.sandbox.server import Scripted
from ghmetrics_dagster.sync import discovery

# Not shaped like a GitHub token: only the client's own knowledge of its tokens can mask it.
PLAIN_TOKEN = "plain-credential-0123456789abcdef"
DB_PASSWORD = "hunter2-db-secret"


@pytest.fixture
def sandbox():
    org = generator.generate(3, repos=2, prs_per_repo=10, weeks=2, users=3)
    with server.run_sandbox(org, tokens=[PLAIN_TOKEN]) as sb:
        yield sb


def client_for(sb, **kwargs) -> GitHubClient:
    return GitHubClient(sb.rest_url, sb.graphql_url, [PLAIN_TOKEN], backoff_base=0.01, timeout=5, **kwargs)


def test_repository_discovery_error_echoing_the_token_is_redacted(sandbox, database_url, caplog):
    """Finding 3: a user added without --repo; discovery's GraphQL error echoes the credential."""
    sandbox.script(
        Scripted(
            match="UserRepositories",
            body='{"data": null, "errors": [{"type": "INTERNAL", "message": "credential {authorization} denied"}]}',
        )
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(errors.GitHubError) as raised:
        discovery.resolve_user_repositories(database_url, client_for(sandbox), "someone")
    exc = raised.value
    assert "denied" in str(exc) and PLAIN_TOKEN not in str(exc)
    assert PLAIN_TOKEN not in repr(getattr(exc, "errors", ""))
    assert PLAIN_TOKEN not in caplog.text


def test_rest_error_echoing_the_token_is_redacted(sandbox):
    sandbox.script(Scripted(match="/repos/", status=422, body='{"message": "Validation of token {authorization}"}'))
    with pytest.raises(errors.GitHubError) as raised:
        client_for(sandbox).rest("/repos/acme/none")
    assert "422" in str(raised.value) and PLAIN_TOKEN not in str(raised.value)


def test_github_error_masks_token_shapes_wherever_it_is_built():
    token = "ghp_" + "Z" * 36
    assert token not in str(errors.GitHubError(f"GitHub said {token}"))
    assert token not in str(errors.GraphQLError(f"bad {token}", []))


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://127.0.0.1:1/db?user=ghm&password={DB_PASSWORD}",
        f"postgresql://ghm:{DB_PASSWORD}@127.0.0.1:1/db",
        f"postgresql://127.0.0.1:1/db?sslmode=disable&password={DB_PASSWORD}&user=ghm",
        f"host=127.0.0.1 port=1 user=ghm password={DB_PASSWORD} dbname=db",
        f"host=127.0.0.1 port=1 user=ghm password='{DB_PASSWORD} x' dbname=db",
    ],
)
def test_database_password_is_masked_in_every_form(url):
    """Finding 4: the query-string and keyword forms were shown in clear."""
    with pytest.raises(warehouse.WarehouseError) as raised:
        with warehouse.connect(url):
            pass
    message = str(raised.value)
    assert "cannot connect to the warehouse" in message and "***" in message
    assert DB_PASSWORD not in message and "\n" not in message


def test_cli_database_error_is_one_line_without_the_password(monkeypatch, home):
    monkeypatch.setenv("GHMETRICS_DATABASE_URL", f"postgresql://127.0.0.1:1/db?user=ghm&password={DB_PASSWORD}")
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 1
    assert DB_PASSWORD not in result.output and result.output.count("\n") == 1, result.output


def test_non_postgres_database_url_is_refused_in_one_line(monkeypatch, home):
    monkeypatch.setenv("GHMETRICS_DATABASE_URL", f"mysql://ghm:{DB_PASSWORD}@db.example/metrics")
    with pytest.raises(warehouse.WarehouseError, match="needs Postgres") as raised:
        warehouse.database_url(env_settings())
    assert DB_PASSWORD not in str(raised.value)
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 1 and "needs Postgres" in result.output and DB_PASSWORD not in result.output
