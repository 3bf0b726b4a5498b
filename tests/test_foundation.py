"""Foundation: migrations, the CLI's user commands and errors, secrets at rest, embedded Postgres."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import psycopg2
import pytest
from click.testing import CliRunner
from conftest import env_settings

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.cli import main
from ghmetrics_dagster.core import secrets

TOKEN = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0" * 2


def invoke(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_migrations_are_idempotent_and_create_the_contract_tables(database_url):
    assert warehouse.migrate(database_url) == []  # the fixture applied them already
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ('app', 'raw', 'ml')"
        )
        tables = {row[0] for row in cur.fetchall()}
    expected = {
        "app.users", "app.user_repositories", "app.user_logins", "app.repository_settings",
        "app.summaries", "app.llm_cache", "ml.insights", "raw.sync_state",
        "raw.repositories", "raw.pull_requests", "raw.pull_request_reviews", "raw.pull_request_commits",
        "raw.deployments", "raw.releases", "raw.workflow_runs", "raw.issues",
    }
    assert expected <= tables


def test_migration_version_prefixes_are_unique_from_now_on():
    # The three 0002 files were applied under their full names long ago and stay as they are;
    # every later migration has a number of its own, so their order never depends on a name.
    prefixes = [version.split("_", 1)[0] for version, _ in warehouse.migration_files()]
    assert sorted(prefixes) == prefixes
    later = [p for p in prefixes if p != "0002"]
    assert len(later) == len(set(later)), later
    assert prefixes.count("0002") == 3


def test_users_add_list_and_login(database_url):
    result = invoke("users", "add", "alice", "--repo", "acme/api", "--repo", "acme/web", "--display-name", "Alice")
    assert result.exit_code == 0, result.output
    assert "2 repositories" in result.output
    result = invoke("users", "list")
    assert "alice" in result.output and "Alice" in result.output
    result = invoke("login", "alice")
    assert result.exit_code == 0 and "recorded for alice" in result.output
    assert "refreshed now" in result.output and "no Dagster daemon is running" in result.output
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("select login from app.user_logins")
        assert cur.fetchall() == [("alice",)]
        cur.execute("select repo_full_name from app.user_repositories where login = 'alice' order by 1")
        assert [r[0] for r in cur.fetchall()] == ["acme/api", "acme/web"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["login", "nobody"], "unknown user 'nobody'"),
        (["users", "add", "bob", "--repo", "not-a-repo"], "'not-a-repo' is not a repository name"),
        (["users", "add", "bad login!"], "not a valid GitHub login"),
    ],
)
def test_bad_input_is_one_line_without_traceback(database_url, args, expected):
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    output = result.output.strip()
    assert expected in output
    assert "Traceback" not in output and len(output.splitlines()) == 1


def test_unreachable_database_is_one_line(home):
    env = {**os.environ, "GHMETRICS_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none", "GHMETRICS_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-m", "ghmetrics_dagster.cli", "users", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: cannot connect to the warehouse")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_token_is_stored_encrypted_and_key_file_is_private(database_url, home):
    result = invoke("users", "add", "carol", "--token-stdin", input=TOKEN + "\n")
    assert result.exit_code == 0 and TOKEN not in result.output
    key_file = home / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("select token_ciphertext from app.users where login = 'carol'")
        ciphertext = cur.fetchone()[0]
        # Nowhere in any table of the database does the clear token appear.
        cur.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('app', 'raw', 'ml', 'public') and table_type = 'BASE TABLE'"
        )
        for schema, table in cur.fetchall():
            cur.execute(f'select count(*) from "{schema}"."{table}" t where t::text like %s', (f"%{TOKEN}%",))
            assert cur.fetchone()[0] == 0, f"{schema}.{table} holds the clear token"
    assert ciphertext != TOKEN and secrets.keyring(env_settings()).decrypt(ciphertext) == TOKEN


def test_secret_key_from_environment_and_wrong_key_is_explained(home, monkeypatch):
    from cryptography.fernet import Fernet

    monkeypatch.setenv("GHMETRICS_SECRET_KEY", Fernet.generate_key().decode())
    ciphertext = secrets.keyring(env_settings()).encrypt(TOKEN)
    monkeypatch.setenv("GHMETRICS_SECRET_KEY", Fernet.generate_key().decode())
    with pytest.raises(secrets.SecretKeyError, match="cannot be decrypted"):
        secrets.keyring(env_settings()).decrypt(ciphertext)
    monkeypatch.setenv("GHMETRICS_SECRET_KEY", "short")
    with pytest.raises(secrets.SecretKeyError, match="not a valid Fernet key"):
        secrets.keyring(env_settings()).encrypt(TOKEN)


def test_embedded_postgres_is_started_once_and_reused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GHMETRICS_DATABASE_URL"}
    env["GHMETRICS_HOME"] = str(tmp_path / "home")
    script = ("from ghmetrics_dagster import warehouse; from ghmetrics_dagster.core.settings import Settings; "
              "s = Settings.from_env(); print(warehouse.embedded_pid(s.home()), warehouse.database_url(s))")
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    pid, url = first.stdout.split()
    assert second.stdout.split() == [pid, url]  # the same server process answered both commands
    cli = subprocess.run(
        [sys.executable, "-m", "ghmetrics_dagster.cli", "db", "url"], env=env, capture_output=True, text=True, timeout=120
    )
    assert cli.stdout.strip() == url
    # The URL is usable by libpq clients such as psql.
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("select pg_backend_pid() > 0")
        assert cur.fetchone()[0] is True
    conn.close()
    subprocess.run([sys.executable, "-c", "import pgserver, pathlib; from pgserver._commands import pg_ctl; "
                    f"pg_ctl(['-w', 'stop'], pgdata=pathlib.Path({str(tmp_path / 'home' / 'pg')!r}), user='pgserver' if __import__('os').geteuid() == 0 else None)"],
                   env=env, capture_output=True, timeout=60)
