"""Copilot usage metrics (docs/contracts.md, "Copilot usage metrics"): the sandbox's reports
ingested over real HTTP equal what it served, incrementally by day and idempotently; a 403 or
404 reported per organisation without failing the rest of the wave; the download carries no
Authorization header; the dbt marts equal the report files' figures."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import psycopg2.extras
import pytest
from conftest import env_resources
from test_dbt_models import run_dbt

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.defs.partitions import users_partitions
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.sandbox import copilot as sandbox_copilot
from ghmetrics_dagster.sandbox import generator
from ghmetrics_dagster.sandbox.server import run_sandbox
from ghmetrics_dagster.sync import copilot

REPORTS = "/copilot/metrics/reports/"


@pytest.fixture
def sandbox():
    with run_sandbox(seed=5, repos=2, prs_per_repo=30) as handle:
        yield handle


def _client(sandbox) -> GitHubClient:
    return GitHubClient(sandbox.rest_url, sandbox.graphql_url, [sandbox.tokens[0]], backoff_base=0.01)


def _stored(url: str) -> tuple[dict, dict]:
    with warehouse.connect(url) as conn, conn.cursor(cursor_factory=psycopg2.extras.DictCursor) as cur:
        cur.execute("select org, day, data, ingested_at from raw.copilot_org_days")
        org_days = {(r["org"], r["day"]): (r["data"], r["ingested_at"]) for r in cur.fetchall()}
        cur.execute("select org, day, user_login, data from raw.copilot_user_days")
        user_days = {(r["org"], r["day"], r["user_login"]): r["data"] for r in cur.fetchall()}
    return org_days, user_days


def _served(org, first: dt.date, last: dt.date) -> tuple[dict, dict]:
    org_days, user_days = {}, {}
    day = first
    while day <= last:
        org_days[(org.login, day)] = sandbox_copilot.organization_day(org, day)
        for record in sandbox_copilot.user_days(org, day):
            user_days[(org.login, day, record["user_login"])] = record
        day += dt.timedelta(days=1)
    return org_days, user_days


def test_reports_ingested_incrementally_equal_what_was_served(sandbox, database_url):
    org = sandbox.org
    warehouse.migrate(database_url)
    client = _client(sandbox)

    result = copilot.ingest_organization(database_url, client, org.login, first_run_days=40)
    assert result.status == "ok", result.message
    yesterday = org.now.date() - dt.timedelta(days=1)
    first = yesterday - dt.timedelta(days=39)
    assert (result.first_day, result.last_day) == (first.isoformat(), yesterday.isoformat())
    assert result.days_fetched_one_by_one == 12  # 40 days: the 28-day window and 12 days before it
    stored_orgs, stored_users = _stored(database_url)
    served_orgs, served_users = _served(org, first, yesterday)
    assert {k: v[0] for k, v in stored_orgs.items()} == served_orgs
    assert stored_users == served_users
    assert result.org_days == 40 and result.user_days == len(served_users) > 40
    # Usage grows: more people active in the last week than in the first.
    assert served_orgs[(org.login, yesterday)]["weekly_active_users"] > served_orgs[(org.login, first + dt.timedelta(days=6))]["weekly_active_users"]

    # The report files were downloaded without the API token (the sandbox refuses 400 otherwise).
    downloads = [e for e in sandbox.requests() if e["path"].startswith(sandbox_copilot.DOWNLOAD_PREFIX)]
    assert downloads and all(e["status"] == 200 and e["token_fingerprint"] == "anonymous" for e in downloads)
    assert {e["fault"] for e in downloads} == {None}

    # Again: the same rows (replaced, not duplicated), nothing read one day at a time.
    again = copilot.ingest_organization(database_url, client, org.login, first_run_days=40)
    assert again.status == "ok" and again.days_fetched_one_by_one == 0
    restored_orgs, restored_users = _stored(database_url)
    assert {k: v[0] for k, v in restored_orgs.items()} == {k: v[0] for k, v in stored_orgs.items()}
    assert restored_users == stored_users

    # 40 days later: the days between the last stored day and the new 28-day window are read
    # with the 1-day reports, exactly those.
    with sandbox.lock:
        generator.advance(org, days=40)
    before = len(sandbox.requests())
    later = copilot.ingest_organization(database_url, client, org.login, first_run_days=40)
    assert later.status == "ok", later.message
    new_yesterday = org.now.date() - dt.timedelta(days=1)
    window_start = new_yesterday - dt.timedelta(days=27)
    gap = [yesterday + dt.timedelta(days=i) for i in range(1, (window_start - yesterday).days)]
    assert later.days_fetched_one_by_one == len(gap) == 12
    one_day = sorted({e["query"] for e in sandbox.requests()[before:] if e["path"].endswith("organization-1-day")})
    assert one_day == [f"day={d.isoformat()}" for d in gap]
    stored_orgs, stored_users = _stored(database_url)
    served_orgs, served_users = _served(org, first, new_yesterday)
    assert {k: v[0] for k, v in stored_orgs.items()} == served_orgs
    assert stored_users == served_users


def test_download_never_carries_the_token(sandbox):
    client = _client(sandbox)
    answer = client.rest(f"orgs/{sandbox.org.login}{REPORTS}users-28-day/latest").data
    assert len(answer["download_links"]) >= 2  # the users report is split into several files
    body = client.download(answer["download_links"][0])
    assert body.count(b"\n") == sandbox_copilot.USERS_PER_FILE
    (entry,) = [e for e in sandbox.requests() if e["path"].startswith(sandbox_copilot.DOWNLOAD_PREFIX)]
    assert entry["token_fingerprint"] == "anonymous" and entry["status"] == 200
    # The sandbox does refuse a download that carries one, so the check above means something.
    import requests

    refused = requests.get(answer["download_links"][0], headers={"Authorization": f"bearer {sandbox.tokens[0]}"})
    assert refused.status_code == 400
    # A tampered signature is refused too, and the error names the path, not the signature.
    tampered = answer["download_links"][0].replace("signature=", "signature=0")
    with pytest.raises(Exception, match="answered 403") as raised:
        client.download(tampered)
    assert "signature" not in str(raised.value)


def test_403_and_404_are_reported_per_organisation(sandbox, database_url):
    warehouse.migrate(database_url)
    org = sandbox.org.login
    results = copilot.ingest_organizations(database_url, lambda _: _client(sandbox), ["initech", org], first_run_days=28)
    by_org = {r.org: r for r in results}
    assert by_org[org].status == "ok" and by_org[org].org_days == 28
    assert by_org["initech"].status == "unavailable"
    assert by_org["initech"].summary() == f"initech: {copilot.NOT_ENABLED}"
    assert "(404): Copilot is not enabled" in by_org["initech"].summary()

    sandbox.set_copilot_reports(org, 403)
    (refused,) = copilot.ingest_organizations(database_url, lambda _: _client(sandbox), [org])
    assert refused.status == "unavailable" and "(403)" in refused.message and "manage_billing:copilot" in refused.message
    assert _stored(database_url)[0]  # what was stored stays


def test_wave_assets_go_on_when_copilot_is_refused(sandbox, database_url, tmp_path, monkeypatch):
    """The ingestion of repositories and of Copilot usage in one run: an organisation whose
    reports answer 403 fails only its line of the Copilot check; the next run reads them."""
    monkeypatch.setenv("GHMETRICS_GITHUB_API_URL", sandbox.rest_url)
    monkeypatch.setenv("GHMETRICS_GITHUB_GRAPHQL_URL", sandbox.graphql_url)
    monkeypatch.setenv("GITHUB_TOKEN", sandbox.tokens[0])
    warehouse.migrate(database_url)
    login = sorted(u for u, user in sandbox.org.users.items() if not user.is_bot)[0]
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("insert into app.users (login) values (%s)", (login,))
        for repo in sandbox.org.repositories:
            cur.execute("insert into app.user_repositories values (%s, %s)", (login, repo.full_name))

    from ghmetrics_dagster.defs.copilot import AVAILABLE_CHECK
    from ghmetrics_dagster.defs.ingest import SYNCED_CHECK, github_raw_tables

    def wave(instance):
        result = dg.materialize([github_raw_tables], resources=env_resources(), instance=instance,
                                partition_key=login)
        assert result.success
        checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
        rows = {tuple(e.materialization.asset_key.path): e.materialization.metadata["rows_upserted"].value
                for e in result.get_asset_materialization_events()}
        return checks, rows

    org = sandbox.org.login
    sandbox.set_copilot_reports(org, 403)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions(users_partitions.name, [login])
        checks, rows = wave(instance)
        assert checks[SYNCED_CHECK].passed  # the other streams are untouched
        assert not checks[AVAILABLE_CHECK].passed
        assert checks[AVAILABLE_CHECK].description == f"{org}: {copilot.NO_PERMISSION}"
        assert rows[("raw", "copilot_org_days")] == 0
        with warehouse.connect(database_url) as conn, conn.cursor() as cur:
            cur.execute("select count(*) from raw.pull_requests")
            assert cur.fetchone()[0] == sum(len(r.pull_requests) for r in sandbox.org.repositories)

        sandbox.set_copilot_reports(org, 200)
        checks, rows = wave(instance)
        assert checks[AVAILABLE_CHECK].passed
        assert rows[("raw", "copilot_org_days")] == copilot.FIRST_RUN_DAYS


def test_marts_equal_the_report_files(sandbox, database_url, tmp_path):
    org = sandbox.org
    warehouse.migrate(database_url)
    result = copilot.ingest_organization(database_url, _client(sandbox), org.login, first_run_days=35)
    assert result.status == "ok"
    run_dbt(database_url, "run", "--selector", "views", target_path=tmp_path / "views")
    run_dbt(database_url, "build", "--select", "+fct_copilot_org_daily+", "+fct_copilot_user_daily+",
            target_path=tmp_path / "build")
    last = org.now.date() - dt.timedelta(days=1)
    served_orgs, served_users = _served(org, last - dt.timedelta(days=34), last)
    with warehouse.connect(database_url) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("select * from marts.fct_copilot_org_daily")
        org_rows = {(r["org"], r["day"]): r for r in cur.fetchall()}
        cur.execute("select * from marts.fct_copilot_user_daily")
        user_rows = {(r["org"], r["day"], r["user_login"]): r for r in cur.fetchall()}
        cur.execute("select * from marts.fct_copilot_org_weekly order by week_start")
        weeks = cur.fetchall()
    assert set(org_rows) == set(served_orgs) and set(user_rows) == set(served_users)
    for key, served in served_orgs.items():
        row, prs = org_rows[key], served["pull_requests"]
        features = {f["feature"]: f for f in served["totals_by_feature"]}
        expected = {
            "daily_active_users": served["daily_active_users"], "weekly_active_users": served["weekly_active_users"],
            "monthly_active_users": served["monthly_active_users"],
            "monthly_active_chat_users": served["monthly_active_chat_users"],
            "monthly_active_agent_users": served["monthly_active_agent_users"],
            "user_initiated_interactions": served["user_initiated_interaction_count"],
            "chat_interactions": sum(f["user_initiated_interaction_count"] for name, f in features.items() if name.startswith("chat")),
            "code_generation_activities": served["code_generation_activity_count"],
            "code_acceptance_activities": served["code_acceptance_activity_count"],
            "loc_suggested_to_add": served["loc_suggested_to_add_sum"], "loc_added": served["loc_added_sum"],
            "loc_deleted": served["loc_deleted_sum"],
            "agent_loc_added": features.get("agent_edit", {}).get("loc_added_sum", 0),
            "pull_requests_created": prs["total_created"], "pull_requests_reviewed": prs["total_reviewed"],
            "pull_requests_created_by_copilot": prs["total_created_by_copilot"],
            "pull_requests_reviewed_by_copilot": prs["total_reviewed_by_copilot"],
        }
        assert {k: row[k] for k in expected} == expected, key
        generated = served["code_generation_activity_count"]
        rate = served["code_acceptance_activity_count"] / generated if generated else None
        assert (row["acceptance_rate"] is None) == (rate is None)
        assert rate is None or abs(float(row["acceptance_rate"]) - rate) < 1e-9
    for key, served in served_users.items():
        row = user_rows[key]
        assert (row["code_generation_activities"], row["loc_added"], row["used_chat"], row["used_agent"]) == (
            served["code_generation_activity_count"], served["loc_added_sum"], served["used_chat"], served["used_agent"])
    # The weekly rollup: distinct users of the week's reports, sums of the days.
    week = weeks[-2]
    days = [k for k in served_orgs if k[1] >= week["week_start"] and k[1] < week["week_start"] + dt.timedelta(days=7)]
    assert week["weekly_active_users"] == len({k[2] for k in served_users if k[1] in {d[1] for d in days}})
    assert week["code_generation_activities"] == sum(served_orgs[d]["code_generation_activity_count"] for d in days)
