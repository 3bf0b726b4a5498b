"""End to end: a login row -> the sensor -> one real Dagster run over ingestion, dbt marts,
insights and summary for that user, against the sandbox over HTTP and a real Postgres."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from conftest import env_defs, env_resources, env_settings

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.core import secrets
from ghmetrics_dagster.defs.partitions import users_partitions
from ghmetrics_dagster.defs.users import user_login_sensor
from ghmetrics_dagster.sandbox import generator
from ghmetrics_dagster.sandbox.server import run_sandbox


@pytest.fixture
def definitions(database_url, sandbox):
    """The project's definitions for this test's database and sandbox."""
    from ghmetrics_dagster.defs.transform import prepare_dbt_project

    prepare_dbt_project()
    return env_defs()


@pytest.fixture
def sandbox(monkeypatch):
    org = generator.generate(seed=11, repos=4, prs_per_repo=40, weeks=16, users=6)
    with run_sandbox(org=org) as handle:
        monkeypatch.setenv("GHMETRICS_GITHUB_API_URL", handle.rest_url)
        monkeypatch.setenv("GHMETRICS_GITHUB_GRAPHQL_URL", handle.graphql_url)
        monkeypatch.delenv("GITHUB_TOKEN", raising=False)
        yield handle


def _user_with_most_repositories(org) -> tuple[str, list[str]]:
    login = max(
        (name for name, repos in org.memberships.items() if not org.users[name].is_bot),
        key=lambda name: (len(org.memberships[name]), name),
    )
    return login, org.memberships[login]


def _insert(url: str, sql: str, params: tuple) -> None:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)


def _scalar(url: str, sql: str, params: tuple = ()):
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def test_login_refreshes_the_user_once_within_the_ttl(definitions, sandbox, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("GHMETRICS_WAVE_SETTLE_SECONDS", "0")  # tick right after the login
    login, repos = _user_with_most_repositories(sandbox.org)
    token = sandbox.tokens[1]
    # The user's own token, stored encrypted: the run must use it and never reveal it.
    _insert(database_url, "insert into app.users (login, token_ciphertext) values (%s, %s)", (login, secrets.keyring(env_settings()).encrypt(token)))
    for repo in repos:
        _insert(database_url, "insert into app.user_repositories values (%s, %s)", (login, repo))
    _insert(database_url, "insert into app.user_logins (login) values (%s)", (login,))

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        # Contexts are closed so the instance they open does not outlive the test.
        with dg.build_sensor_context(resources=env_resources(), instance=instance, definitions=definitions) as context:
            result = user_login_sensor(context)
        assert len(result.run_requests) == 1
        request = result.run_requests[0]
        assert request.partition_key == login
        assert [list(r.partition_keys) for r in result.dynamic_partitions_requests] == [[login]]
        instance.add_dynamic_partitions(users_partitions.name, [login])

        job = definitions.resolve_job_def("user_refresh")
        run = job.execute_in_process(instance=instance, partition_key=login, tags=request.tags)
        assert run.success

        # Everything downstream is fresh for that user after the one run.
        assert _scalar(database_url, "select count(*) from raw.repositories") == len(repos)
        assert _scalar(database_url, "select count(*) from marts.fct_dora_weekly where scope_type = 'user' and scope = %s", (login,)) > 0
        assert _scalar(database_url, "select count(*) from ml.insights where login = %s", (login,)) > 0
        assert _scalar(database_url, "select count(*) from app.summaries where login = %s", (login,)) == 1
        # The headline is the overall Quick Check score (0..10), forecast too, and the summary
        # compares it with DORA's benchmark and says whose delivery it describes.
        assert _scalar(database_url, "select count(*) from ml.insights where login = %s and"
                       " not predicted_overall_score between 0 and 10", (login,)) == 0
        overall = _scalar(database_url, "select overall_score from marts.fct_dora_weekly where scope_type = 'user'"
                          " and scope = %s order by week_start desc limit 1", (login,))
        provider, text = (_scalar(database_url, f"select {column} from app.summaries where login = %s", (login,))
                          for column in ("provider", "text"))
        if provider == "rules":  # no provider keys in the environment
            from ghmetrics_dagster.summaries.aggregates import format_value

            shown = format_value(float(overall), "score10")
            assert f"Overall {shown} / 10 (DORA 2025 benchmark, All industries: 4.3)" in text, text
            assert "not a person" in text
        # The sandbox saw the user's token, not anonymous requests.
        assert sandbox.stats(token)["requests"] > 0

        # A second login inside the TTL requests nothing and says why.
        _insert(database_url, "insert into app.user_logins (login) values (%s)", (login,))
        with dg.build_sensor_context(resources=env_resources(), instance=instance, cursor=result.cursor, definitions=definitions) as context:
            again = user_login_sensor(context)
        assert again.run_requests == []
        assert "TTL" in again.skip_reason.skip_message and login in again.skip_reason.skip_message

        # The clear token is nowhere in the Dagster event log.
        events = instance.all_logs(run.run_id)
        assert events
        assert token not in json.dumps([e.user_message for e in events] + [str(e.dagster_event) for e in events])

    assert _scalar(
        database_url, "select count(*) from app.users where token_ciphertext like %s", (f"%{token}%",)
    ) == 0


def test_unknown_repository_fails_only_that_repository(definitions, sandbox, database_url, tmp_path, monkeypatch):
    login, repos = _user_with_most_repositories(sandbox.org)
    monkeypatch.setenv("GITHUB_TOKEN", sandbox.tokens[0])
    _insert(database_url, "insert into app.users (login) values (%s)", (login,))
    for repo in [*repos, "acme/does-not-exist"]:
        _insert(database_url, "insert into app.user_repositories values (%s, %s)", (login, repo))

    from ghmetrics_dagster.defs.ingest import SYNCED_CHECK, github_raw_tables

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions(users_partitions.name, [login])
        result = dg.materialize([github_raw_tables], resources=env_resources(), instance=instance, partition_key=login)
        assert result.success  # the other repositories completed
        # The step also checks the organisations' Copilot reports (defs/copilot.py).
        check = next(c for c in result.get_asset_check_evaluations() if c.check_name == SYNCED_CHECK)
        assert check.check_name == SYNCED_CHECK and not check.passed
        assert "acme/does-not-exist" in check.description and "not found" in check.description
    assert _scalar(database_url, "select count(*) from raw.repositories") == len(repos)


def test_a_wave_decrypts_each_users_token_once(definitions, sandbox, database_url, tmp_path, monkeypatch):
    """The ingestion step reads a user's stored token once and uses it for the sync client and
    the scope check (which records that the user's own token decided)."""
    from ghmetrics_dagster.defs.ingest import github_raw_tables

    logins = sorted(sandbox.org.memberships)[:2]
    keyring = secrets.keyring(env_settings())
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        for login in logins:
            cur.execute("insert into app.users (login, token_ciphertext) values (%s, %s)",
                        (login, keyring.encrypt(sandbox.tokens[0], cur)))
    decrypted = []
    real_decrypt = secrets.Keyring.decrypt

    def counting_decrypt(self, ciphertext):
        decrypted.append(ciphertext)
        return real_decrypt(self, ciphertext)

    monkeypatch.setattr(secrets.Keyring, "decrypt", counting_decrypt)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions(users_partitions.name, logins)
        result = dg.materialize([github_raw_tables], resources=env_resources(), instance=instance,
                                tags={"dagster/asset_partition_range_start": logins[0],
                                      "dagster/asset_partition_range_end": logins[-1]})
        assert result.success
    assert len(decrypted) == len(logins)
    assert _scalar(database_url, "select count(distinct login) from app.user_repository_access"
                   " where checked_with = 'user token'") == len(logins)
