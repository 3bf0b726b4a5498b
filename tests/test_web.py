"""The dashboard over real HTTP: GitHub sign-in through the sandbox's OAuth flow, real Postgres
filled by a real wave of the pipeline, authorization on every page and API endpoint, and (in
test_web_browser.py) Chromium driving it end to end.

One module-wide warehouse: admin registers `reader` for a repository their token cannot read,
`reader` and `other` sign in through the sandbox's consent page, one wave refreshes both.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from click.testing import CliRunner
from conftest import env_settings

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.cli import dagster_home, main, pipeline
from ghmetrics_dagster.core import secrets
from ghmetrics_dagster.sandbox import generator
from ghmetrics_dagster.sandbox.server import run_sandbox
from ghmetrics_dagster.web.config import WebConfig
from ghmetrics_dagster.web.server import serve_in_thread

ROOT = Path(__file__).resolve().parents[1]


class World:
    """The module's sandbox, warehouse, dashboard and the people in it."""

    def __init__(self, sandbox, url: str, web_url: str, config: WebConfig, reader: str, other: str,
                 hidden: str, others_only: str):
        self.sandbox, self.url, self.web_url, self.config = sandbox, url, web_url, config
        self.reader, self.other = reader, other
        self.hidden = hidden  # registered for `reader`, unreadable with their token
        self.others_only = others_only  # one of `other`'s repositories that `reader` is not registered for

    def rows(self, sql: str, *args) -> list[tuple]:
        with warehouse.connect(self.url) as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()


def consent_form(session: requests.Session, web_url: str) -> dict:
    """Our /auth/github leads to the sandbox's consent page; its hidden fields, as a browser posts them."""
    consent = session.get(web_url + "/auth/github")
    assert consent.status_code == 200 and "Authorize application" in consent.text
    return {k: html.unescape(v) for k, v in
            re.findall(r'name="(client_id|redirect_uri|state|scope)" value="([^"]*)"', consent.text)}


def sign_in(sandbox, web_url: str, login: str) -> requests.Session:
    """The OAuth web flow as a browser follows it: our /auth/github, the sandbox's consent page,
    its redirect to our callback, then the dashboard."""
    session = requests.Session()
    form = consent_form(session, web_url)
    landed = session.post(sandbox.rest_url + "/login/oauth/authorize", data={**form, "login": login, "decision": "authorize"})
    assert landed.status_code == 200 and landed.url.rstrip("/") == web_url, landed.url
    return session


@pytest.fixture(scope="module")
def world(server_url, tmp_path_factory):
    org = generator.generate(seed=11, repos=4, prs_per_repo=30, weeks=12, users=12)
    people = sorted(login for login, repos in org.memberships.items() if repos and not org.users[login].is_bot)
    reader = next(p for p in people if len(org.memberships[p]) >= 2)
    hidden = org.memberships[reader][-1]
    other = next(p for p in people if p != reader and set(org.memberships[p]) - set(org.memberships[reader]))
    others_only = sorted(set(org.memberships[other]) - set(org.memberships[reader]))[0]
    tmp = tmp_path_factory.mktemp("web")
    with pytest.MonkeyPatch.context() as mp, \
            warehouse.scratch_database(server_url, prefix="ghm_web") as url, \
            warehouse.scratch_database(server_url, prefix="ghm_web_dagster") as storage_url, \
            run_sandbox(org=org) as sandbox:
        (tmp / "home").mkdir()
        (tmp / "dagster").mkdir()
        dagster_home.write_instance(tmp / "dagster")
        for name, value in {
            "GHMETRICS_HOME": str(tmp / "home"), "GHMETRICS_DATABASE_URL": url,
            "DAGSTER_HOME": str(tmp / "dagster"), "GHMETRICS_DAGSTER_PG_URL": warehouse.sqlalchemy_url(storage_url),
            "GHMETRICS_GITHUB_API_URL": sandbox.rest_url, "GHMETRICS_GITHUB_GRAPHQL_URL": sandbox.graphql_url,
            "GITHUB_TOKEN": sandbox.tokens[0], "GHMETRICS_WAVE_SETTLE_SECONDS": "0",
        }.items():
            mp.setenv(name, value)
        for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
            mp.delenv(key, raising=False)
        warehouse.migrate(url)
        # An admin lists a repository for `reader` that GitHub will not show them.
        assert CliRunner().invoke(main, ["users", "add", reader, "--repo", hidden]).exit_code == 0
        sandbox.hide(hidden, reader)
        config = WebConfig(database_url=url, client_id=sandbox.oauth_client_id,
                           client_secret=sandbox.oauth_client_secret, session_secret="w" * 48,
                           oauth_url=sandbox.rest_url, api_url=sandbox.rest_url, graphql_url=sandbox.graphql_url,
                           refresh_ttl_minutes=0, keyring=secrets.keyring(env_settings()))
        with serve_in_thread(config) as web:
            for login in (reader, other):
                sign_in(sandbox, web.url, login)
            outcome = pipeline.refresh_users(env_settings(), [reader, other], trigger="test")
            assert outcome.success, outcome.failure
            yield World(sandbox, url, web.url, config, reader, other, hidden, others_only)


# --- signing in -------------------------------------------------------------------------------


def test_signing_in_records_the_user_their_encrypted_token_their_repositories_and_a_login(world):
    (ciphertext,) = world.rows("select token_ciphertext from app.users where login = %s", world.reader)[0]
    issued = [t for t, who in world.sandbox._server.token_logins.items() if who == world.reader and t.startswith("gho_")]
    assert issued, "the sandbox issued no OAuth token"
    assert all(t not in ciphertext for t in issued)
    assert secrets.keyring(env_settings()).decrypt(ciphertext) in issued  # encrypted under the home's key, as `users add` stores it
    registered = {row[0] for row in world.rows("select repo_full_name from app.user_repositories where login = %s", world.reader)}
    readable = set(world.sandbox.org.memberships[world.reader]) - {world.hidden}
    assert registered == readable | {world.hidden}
    access = dict(world.rows("select repo_full_name, readable from app.user_repository_access where login = %s", world.reader))
    assert access[world.hidden] is False and all(access[name] for name in readable)
    assert world.rows("select count(*) from app.user_logins where login = %s", world.reader)[0][0] >= 1


def test_the_session_cookie_is_signed_http_only_and_same_site(world):
    session = requests.Session()
    response = session.get(world.web_url + "/auth/github", allow_redirects=False)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "ghmetrics_session=" in cookie
    forged = requests.get(world.web_url + "/api/me", cookies={"ghmetrics_session": "eyJsb2dpbiI6ICJ4In0=.forged.sig"})
    assert forged.status_code == 401


def test_a_forged_or_missing_state_is_refused_and_no_code_is_exchanged(world):
    session = requests.Session()
    session.get(world.web_url + "/auth/github", allow_redirects=False)  # a real state sits in the session
    exchanged = len([r for r in world.sandbox.requests() if r["path"] == "/login/oauth/access_token"])
    for query in ("?code=abc&state=forged", "?code=abc"):
        refused = session.get(world.web_url + "/auth/callback" + query)
        assert refused.status_code == 400 and "state mismatch" in refused.text
    assert len([r for r in world.sandbox.requests() if r["path"] == "/login/oauth/access_token"]) == exchanged
    assert session.get(world.web_url + "/api/me").status_code == 401


def test_the_sandbox_answers_oauth_errors_as_github_does(world):
    token_url = world.sandbox.rest_url + "/login/oauth/access_token"
    json_accept = {"Accept": "application/json"}
    wrong_secret = requests.post(token_url, data={"client_id": world.config.client_id, "client_secret": "nope", "code": "x"},
                                 headers=json_accept).json()
    assert wrong_secret["error"] == "incorrect_client_credentials"
    bad_code = requests.post(token_url, data={"client_id": world.config.client_id,
                                              "client_secret": world.config.client_secret, "code": "x"}, headers=json_accept)
    assert bad_code.status_code == 200 and bad_code.json()["error"] == "bad_verification_code"
    # A code works once, and the form-encoded answer is GitHub's default.
    consent = requests.post(world.sandbox.rest_url + "/login/oauth/authorize", allow_redirects=False, data={
        "client_id": world.config.client_id, "redirect_uri": "http://127.0.0.1:9/cb", "state": "s1",
        "login": world.other, "decision": "authorize"})
    code = parse_qs(urlsplit(consent.headers["location"]).query)["code"][0]
    form = {"client_id": world.config.client_id, "client_secret": world.config.client_secret, "code": code}
    first = requests.post(token_url, data=form)
    assert first.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert parse_qs(first.text)["access_token"][0].startswith("gho_")
    assert requests.post(token_url, data=form, headers=json_accept).json()["error"] == "bad_verification_code"
    cancelled = requests.post(world.sandbox.rest_url + "/login/oauth/authorize", allow_redirects=False, data={
        "client_id": world.config.client_id, "redirect_uri": "http://127.0.0.1:9/cb", "state": "s2", "decision": "cancel"})
    assert parse_qs(urlsplit(cancelled.headers["location"]).query) == {
        "error": ["access_denied"], "state": ["s2"], "error_description": ["The user has denied your application access."]}


def test_cancelling_on_github_returns_to_sign_in_with_a_message(world):
    session = requests.Session()
    form = consent_form(session, world.web_url)
    back = session.post(world.sandbox.rest_url + "/login/oauth/authorize", data={**form, "decision": "cancel"})
    assert back.url.endswith("/login") and "You cancelled signing in." in back.text


# --- authorization --------------------------------------------------------------------------


def test_without_a_session_pages_redirect_to_sign_in_and_the_api_answers_401(world):
    for path in ("/", "/team", f"/repos/{world.others_only}"):
        response = requests.get(world.web_url + path, allow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/login", path
    for path in ("/api/me", "/api/metrics", "/api/status", "/api/repos", f"/api/repos/{world.others_only}"):
        assert requests.get(world.web_url + path).status_code == 401, path


def test_another_users_repository_is_404_by_page_and_by_api(world):
    reader = sign_in(world.sandbox, world.web_url, world.reader)
    for name in (world.others_only, world.others_only.upper(), "acme/does-not-exist"):
        assert reader.get(f"{world.web_url}/repos/{name}").status_code == 404, name
        assert reader.get(f"{world.web_url}/api/repos/{name}").status_code == 404, name
    other = sign_in(world.sandbox, world.web_url, world.other)
    assert other.get(f"{world.web_url}/api/repos/{world.others_only}").status_code == 200


def test_a_repository_the_users_token_cannot_read_is_nowhere_in_their_dashboard(world):
    reader = sign_in(world.sandbox, world.web_url, world.reader)
    assert reader.get(f"{world.web_url}/repos/{world.hidden}").status_code == 404
    assert reader.get(f"{world.web_url}/api/repos/{world.hidden}").status_code == 404
    me = reader.get(world.web_url + "/api/me").json()
    assert world.hidden not in me["repositories"] and me["repositories"]
    assert world.hidden not in {row["scope"] for row in reader.get(world.web_url + "/api/repos").json()["repositories"]}
    for path in ("/", "/team"):
        page = reader.get(world.web_url + path).text
        assert f"/repos/{world.hidden}\"" not in page and f">{world.hidden}<" not in page, path
    metrics = reader.get(world.web_url + "/api/metrics").json()
    assert world.hidden not in metrics["summary"]["text"]
    # The user's figures are those of the readable repositories alone.
    readable = me["repositories"]
    week = metrics["latest_week"]
    (expected,) = world.rows(
        "select coalesce(sum(deployments), 0) from marts.fct_dora_weekly"
        " where scope_type = 'repository' and scope = any(%s) and week_start = %s", readable, week)[0]
    latest = next(m for m in metrics["metrics"] if m["key"] == "deployments")["latest"]
    assert latest == float(expected)


# --- what the pages show ----------------------------------------------------------------------


def test_my_metrics_shows_each_metric_with_its_definition_score_and_both_windows(world):
    reader = sign_in(world.sandbox, world.web_url, world.reader)
    api = reader.get(world.web_url + "/api/metrics").json()
    (row,) = world.rows(
        "select week_start::text, deployments, median_lead_time_hours, lead_time_score, recovery_hours_12w,"
        " rework_rate_12w, rework_score, overall_score, legacy_lead_time_grade from marts.fct_dora_weekly"
        " where scope_type = 'user' and scope = %s order by week_start desc limit 1", world.reader)
    benchmarks = dict(world.rows("select metric, mean_score from marts.dora_benchmarks"))
    (segment,) = world.rows("select segment_label from marts.dora_benchmarks where metric = 'overall'")[0]
    assert api["latest_week"] == row[0]
    cards = {m["key"]: m for m in api["metrics"]}
    assert cards["deployments"]["latest"] == float(row[1])
    # DORA's five metrics, each with its 12-week value and its 0-10 score against the benchmark.
    assert [m["title"] for m in api["metrics"] if m["dora"]] == [
        "Lead time for changes", "Deployment frequency", "Failed deployment recovery time", "Change fail rate",
        "Rework rate"]
    assert cards["median_lead_time_hours"]["score"] == float(row[3])
    assert cards["median_lead_time_hours"]["legacy_grade"] == row[8]
    assert cards["median_recovery_hours"]["trailing"] == (None if row[4] is None else float(row[4]))
    assert cards["rework_rate"]["trailing"] == (None if row[5] is None else float(row[5]))
    assert cards["rework_rate"]["score"] == (None if row[6] is None else float(row[6]))
    assert cards["rework_rate"]["benchmark"] == float(benchmarks["rework"])
    overall = api["headline"]["scores"][0]
    assert overall["title"] == "Overall" and overall["score"] == float(row[7])
    assert overall["benchmark"] == float(benchmarks["overall"]) and api["headline"]["segment"] == segment
    response = reader.get(world.web_url + "/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    raw = response.text
    page = html.unescape(raw)
    for card in api["metrics"]:
        assert card["title"] in page and card["definition"] in page and card["thresholds"] in page
    assert f"the week starting <strong>{row[0]}</strong>" in page and "Median over 12 weeks" in page
    assert "Scores against the benchmark" in page and f"DORA 2025 benchmark, {segment}" in page
    assert "not a person" in page
    assert "Where the time goes" in page and "Summary" in page
    # plotly.js comes from the app, once, cacheable; no page inlines it or calls a CDN.
    script = re.search(r'src="(/assets/plotly-[^"]+\.min\.js)"', raw).group(1)
    served = requests.get(world.web_url + script)
    assert served.status_code == 200 and "immutable" in served.headers["cache-control"]
    assert len(raw) < 200_000 and "cdn" not in raw.lower()


def test_an_anomaly_is_drawn_on_its_own_metrics_chart_with_a_sentence(world):
    reader = sign_in(world.sandbox, world.web_url, world.reader)
    for name in reader.get(world.web_url + "/api/me").json()["repositories"]:
        view = reader.get(f"{world.web_url}/api/repos/{name}").json()
        for anomaly in view.get("anomalies", []):
            assert anomaly["title"] in anomaly["sentence"] and anomaly["week_start"] in anomaly["sentence"]
            for key, chart in view["charts"].items():
                marked = [t for t in chart["data"] if t["name"] == "anomaly"]
                assert bool(marked) == any(a["metric"] == key for a in view["anomalies"]), key


def test_the_page_names_the_bottleneck_and_reads_forecasts_and_anomalies_on_their_scales(world):
    reader = sign_in(world.sandbox, world.web_url, world.reader)
    api = reader.get(world.web_url + "/api/metrics").json()
    page = html.unescape(reader.get(world.web_url + "/").text)
    (stage, share), = world.rows(
        "select dominant_stage, dominant_share_12w from marts.fct_bottlenecks where scope_type = 'user'"
        " and scope = %s order by week_start desc limit 1", world.reader)
    assert stage is not None  # the sandbox user ships enough pull requests to name one
    assert api["bottleneck"]["stage"] == stage and api["bottleneck"]["share"] == pytest.approx(float(share))
    assert f"Bottleneck: {stage}" in page and f"takes {float(share) * 100:.0f} % of the time" in page
    (low, high, lead_status, score_status), = world.rows(
        "select predicted_lead_time_hours_low, predicted_lead_time_hours_high, lead_time_forecast_status,"
        " overall_score_forecast_status from ml.insights where login = %s and scope_type = 'user' and scope = %s"
        " order by week_start desc limit 1", world.reader, world.reader)
    forecasts = {f["metric"]: f for f in api["forecasts"]}
    for metric, status in (("median_lead_time_hours", lead_status), ("overall_score", score_status)):
        shown = forecasts.get(metric)
        if status is None:  # no forecasting model yet (too few weeks): nothing shown, and the page says so
            assert shown is None and "No forecast yet" in page
        elif status == "published":
            assert shown["value"] is not None and f"likely between {shown['range']}" in page
        else:  # withheld: the page says why and gives no number
            assert shown["value"] is None and f"no forecast shown, {shown['withheld']}" in page
    if lead_status == "published" and low is not None:
        assert shown is not None and forecasts["median_lead_time_hours"]["low"] == pytest.approx(float(low))
        assert forecasts["median_lead_time_hours"]["high"] == pytest.approx(float(high))
    explained = [a for name in reader.get(world.web_url + "/api/me").json()["repositories"]
                 for a in reader.get(f"{world.web_url}/api/repos/{name}").json().get("anomalies", [])]
    for anomaly in explained:
        assert "against an expected" in anomaly["sentence"] and anomaly["score_text"].startswith("z-score ")
        assert not anomaly["expected_low"] <= anomaly["observed"] <= anomaly["expected_high"] or abs(anomaly["z"]) < 3.25


def test_the_ai_cohorts_sit_side_by_side_with_the_adoption_curve_by_page_and_api(world):
    reader = sign_in(world.sandbox, world.web_url, world.reader)
    api = reader.get(world.web_url + "/api/metrics").json()
    page = html.unescape(reader.get(world.web_url + "/").text)
    cohorts = {c["key"]: c for c in api["ai"]["cohorts"]}
    marts = world.rows(
        "select cohort, merged_prs_12w, is_too_small_12w, median_lead_time_hours_12w from marts.fct_ai_cohorts_weekly"
        " where scope_type = 'user' and scope = %s and week_start = %s::date", world.reader, api["latest_week"])
    assert {m[0] for m in marts} == {"ai_assisted", "other"}
    lead = {row["key"]: row for row in api["ai"]["rows"]}["median_lead_time_hours"]
    assert "AI-assisted pull requests" in page and 'data-chart="ai_adoption"' in page
    for cohort, merged, small, lead_time in marts:
        assert (cohorts[cohort]["merged_prs"], cohorts[cohort]["too_small"]) == (merged, small)
        if small:  # too few to compare: said in words, no figure
            assert lead[cohort]["value"] is None
            assert f"too few pull requests to compare (n = {merged})" in page
        else:
            assert lead[cohort]["value"] == pytest.approx(float(lead_time))
    assert api["ai"]["comparable"] == (not any(small for _, _, small, _ in marts))
    # The adoption curve: each week's AI-assisted share of the merged pull requests, as the marts count them.
    weekly = dict(world.rows(
        "select week_start::text, 100.0 * sum(merged_prs) filter (where cohort = 'ai_assisted')"
        " / nullif(sum(merged_prs), 0) from marts.fct_ai_cohorts_weekly where scope_type = 'user' and scope = %s"
        " group by week_start", world.reader))
    share, *copilot = api["charts"]["ai_adoption"]["data"]
    assert share["x"] == api["weeks"]
    assert share["y"] == [None if weekly[w] is None else pytest.approx(float(weekly[w])) for w in share["x"]]
    # Copilot's weekly active users of the organisations owning the reader's repositories, on a second axis.
    orgs = sorted({name.split("/")[0] for name in reader.get(world.web_url + "/api/me").json()["repositories"]})
    reported = world.rows("select distinct org from marts.fct_copilot_org_weekly where org = any(%s)", orgs)
    assert len(copilot) == len(reported) and all(t["yaxis"] == "y2" for t in copilot)
    # Before and after the adoption week, as fct_ai_adoption has them.
    (week, before, after, lead_before), = world.rows(
        "select adoption_week::text, merged_prs_before, merged_prs_after, median_lead_time_hours_before"
        " from marts.fct_ai_adoption where scope_type = 'user' and scope = %s", world.reader)
    assert api["ai"]["adoption_week"] == week
    if week is not None:
        periods = {p["key"]: p for p in api["ai"]["periods"]}
        assert (periods["before"]["merged_prs"], periods["after"]["merged_prs"]) == (before, after)
        lead_rows = {row["key"]: row for row in api["ai"]["period_rows"]}["median_lead_time_hours"]
        assert lead_rows["before"]["value"] == (None if lead_before is None or periods["before"]["too_small"]
                                                else pytest.approx(float(lead_before)))
        assert "Before and after adoption" in page
    # A repository's page compares that repository's own cohorts.
    name = reader.get(world.web_url + "/api/me").json()["repositories"][0]
    view = reader.get(f"{world.web_url}/api/repos/{name}").json()
    (merged,), = world.rows("select merged_prs_12w from marts.fct_ai_cohorts_weekly where scope_type = 'repository'"
                            " and scope = %s and week_start = %s::date and cohort = 'ai_assisted'",
                            name, view["latest_week"])
    assert {c["key"]: c for c in view["ai"]["cohorts"]}["ai_assisted"]["merged_prs"] == merged


def test_the_team_page_sorts_repositories_by_overall_score(world):
    reader = sign_in(world.sandbox, world.web_url, world.reader)
    rows = reader.get(world.web_url + "/api/repos").json()["repositories"]
    assert rows and all("overall_score" in r and "legacy_performance_score" in r for r in rows)
    assert not any("performance_score" in r or "lead_time_grade" in r for r in rows)
    scores = [r["overall_score"] for r in rows if r["overall_score"] is not None]
    assert scores == sorted(scores, reverse=True)
    page = html.unescape(reader.get(world.web_url + "/team").text)
    positions = [page.index(f'href="/repos/{r["scope"]}"') for r in rows]
    assert positions == sorted(positions) and "Overall" in page and "Rework rate, 12 weeks" in page


def test_a_repository_page_lists_the_rows_behind_its_numbers(world):
    reader = sign_in(world.sandbox, world.web_url, world.reader)
    name = reader.get(world.web_url + "/api/me").json()["repositories"][0]
    view = reader.get(f"{world.web_url}/api/repos/{name}").json()
    shipped = world.rows(
        "select number from marts.fct_pull_requests where repo_full_name = %s and not is_bot"
        " and shipped_at >= %s::date and shipped_at < %s::date + 7", name, view["latest_week"], view["latest_week"])
    assert sorted(pr["number"] for pr in view["behind"]["shipped"]) == sorted(r[0] for r in shipped)
    failing = world.rows(
        "select count(*) from marts.fct_deployments where repo_full_name = %s and fails_change"
        " and week_start > %s::date - 84", name, view["latest_week"])[0][0]
    assert len(view["behind"]["failures"]) == failing
    causes = dict(world.rows(
        "select deployment_id, failure_cause from marts.fct_deployments where repo_full_name = %s and fails_change"
        " and week_start > %s::date - 84", name, view["latest_week"]))
    assert {d["deployment_id"]: d["failure_cause"] for d in view["behind"]["failures"]} == causes
    rework = world.rows(
        "select p.number from marts.fct_pull_requests p join marts.fct_deployments d"
        " on d.deployment_id = p.shipping_deployment_id where d.repo_full_name = %s and p.rework_reason is not null"
        " and d.week_start > %s::date - 84", name, view["latest_week"])
    assert sorted(r["number"] for r in view["behind"]["rework"]) == sorted(r[0] for r in rework)
    page = reader.get(f"{world.web_url}/repos/{name}").text
    assert "The rows behind the numbers" in page and name in page
    assert "its rework rate" in page and "its change fail rate and recovery time" in page


def test_the_api_is_described_by_openapi_and_health_checks_answer(world):
    spec = requests.get(world.web_url + "/openapi.json").json()
    assert {"/api/me", "/api/status", "/api/metrics", "/api/repos", "/api/repos/{owner}/{name}",
            "/healthz", "/readyz"} <= set(spec["paths"])
    assert requests.get(world.web_url + "/healthz").json() == {"status": "ok"}
    assert requests.get(world.web_url + "/readyz").json() == {"status": "ready"}


def test_readyz_says_unavailable_before_the_marts_exist(database_url):
    config = WebConfig(database_url=database_url, client_id="c", client_secret="s", session_secret="x" * 40)
    with serve_in_thread(config) as web:
        response = requests.get(web.url + "/readyz")
    assert response.status_code == 503 and "marts" in response.json()["reason"]


def test_signing_out_needs_the_forms_csrf_token(world):
    reader = sign_in(world.sandbox, world.web_url, world.reader)
    assert reader.post(world.web_url + "/logout", data={"csrf": "guess"}).status_code == 403
    assert reader.get(world.web_url + "/api/me").status_code == 200
    token = re.search(r'name="csrf" value="([^"]+)"', reader.get(world.web_url + "/").text).group(1)
    foreign = reader.post(world.web_url + "/logout", data={"csrf": token}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    out = reader.post(world.web_url + "/logout", data={"csrf": token})
    assert out.url.endswith("/login") and "You are signed out." in out.text
    assert reader.get(world.web_url + "/api/me").status_code == 401


def test_the_status_says_refreshing_after_a_login_and_fresh_once_a_summary_follows(world):
    reader = sign_in(world.sandbox, world.web_url, world.reader)  # TTL 0: every login asks for a refresh
    assert reader.get(world.web_url + "/api/status").json()["state"] == "refreshing"
    with warehouse.connect(world.url) as conn, conn.cursor() as cur:
        cur.execute("insert into app.summaries (login, provider, text, grounded) values (%s, 'rules', 'x', true)",
                    (world.reader,))
    assert reader.get(world.web_url + "/api/status").json()["state"] == "fresh"


def test_a_failed_refresh_waiting_for_its_retry_is_said_with_its_reason(world):
    reader = sign_in(world.sandbox, world.web_url, world.reader)
    with warehouse.connect(world.url) as conn, conn.cursor() as cur:  # as the login sensor records it
        cur.execute("insert into app.refresh_failures values (%s, 2, now(), now() + interval '2 minutes',"
                    " 'run 1a2b ended failure')", (world.reader,))
    status = reader.get(world.web_url + "/api/status").json()
    assert status["state"] == "retrying"
    assert "The refresh failed (run 1a2b ended failure; attempt 2)" in status["message"] and "UTC" in status["message"]
    page = reader.get(world.web_url + "/").text
    assert 'data-state="retrying"' in page
    with warehouse.connect(world.url) as conn, conn.cursor() as cur:
        cur.execute("delete from app.refresh_failures")


def test_no_secret_reaches_the_pages_or_the_database_in_clear(world):
    reader = sign_in(world.sandbox, world.web_url, world.reader)
    tokens = [t for t, who in world.sandbox._server.token_logins.items() if t.startswith("gho_")]
    pages = "".join(reader.get(world.web_url + path).text for path in ("/", "/team", "/api/metrics", "/api/me"))
    dump = str(world.rows("select * from app.users")) + str(world.rows("select * from app.user_logins"))
    for secret in tokens + [world.config.client_secret]:
        assert secret not in pages and secret not in dump


# --- in a real browser ------------------------------------------------------------------------

ARTIFACTS = Path(os.environ.get("GHMETRICS_TEST_ARTIFACTS", ROOT / ".test-artifacts")) / "web"


def chromium_path() -> str | None:
    """Debian's chromium (`.ci/run` and `make test` install it where they can)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.slow
def test_in_a_browser_sign_in_see_cached_data_watch_it_refresh_open_a_repository_sign_out(world):
    """The whole visit, with the Dagster daemon turning the sign-in into a wave; screenshots of
    each step land in .test-artifacts/web/."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine: install Debian's chromium package to run the browser test")
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pipeline.prepare_instance(env_settings())
    env = {**os.environ, "GHMETRICS_REFRESH_TTL_MINUTES": "0"}  # this sign-in asks for a refresh
    log = open(Path(os.environ["DAGSTER_HOME"]) / "daemon.log", "w")
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    readable = sorted(set(world.sandbox.org.memberships[world.reader]) - {world.hidden}, key=str.lower)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def shot(name: str) -> None:
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

            page.goto(world.web_url + "/team")
            expect(page).to_have_url(re.compile(r"/login$"))
            page.keyboard.press("Tab")
            expect(page.locator(".skip")).to_be_focused()  # keyboard users can skip to the content
            shot("1-sign-in")
            page.get_by_role("link", name="Sign in with GitHub").click()
            expect(page.get_by_role("heading", name="Authorize application")).to_be_visible()
            page.get_by_label(re.compile(rf"^\s*{re.escape(world.reader)} \(")).check()
            shot("2-sandbox-consent")
            page.get_by_role("button", name="Authorize").click()

            # Back where they asked to go, then to their metrics: cached figures at once, refreshing.
            expect(page).to_have_url(re.compile(r"/team$"))
            page.get_by_role("link", name="My metrics").click()
            status = page.locator("#refresh-status")
            expect(status).to_have_attribute("data-state", "refreshing")
            expect(page.locator("#metric-deployments .value").first).not_to_have_text("–")
            expect(page.locator("#metric-deployments .js-plotly-plot")).to_be_visible()
            page.evaluate("window.stillTheSamePage = true")
            shot("3-cached-and-refreshing")

            # The login sensor's wave finishes; the page updates itself.
            expect(status).to_have_attribute("data-state", "fresh", timeout=300_000)
            assert page.evaluate("window.stillTheSamePage === true"), "the page reloaded"
            expect(page.locator("#metric-deployments .js-plotly-plot")).to_be_visible()
            shot("4-fresh")

            page.get_by_label("Repository").select_option(readable[0])
            page.get_by_role("button", name="Open").click()
            expect(page.get_by_role("heading", name=readable[0], exact=True)).to_be_visible()
            expect(page.get_by_role("heading", name="The rows behind the numbers")).to_be_visible()
            shot("5-repository")

            page.get_by_role("link", name="Team").click()
            page.get_by_role("button", name="Repository").click()
            page.get_by_role("button", name="Repository").click()  # second click: descending
            names = page.locator("#team-table tbody th").all_inner_texts()
            assert names == sorted(readable, key=str.lower, reverse=True)
            expect(page.locator("#team-table thead th").first).to_have_attribute("aria-sort", "descending")
            shot("6-team-sorted")

            page.get_by_role("button", name="Sign out").click()
            expect(page).to_have_url(re.compile(r"/login$"))
            expect(page.get_by_text("You are signed out.")).to_be_visible()
            shot("7-signed-out")
            page.goto(world.web_url + "/")
            expect(page).to_have_url(re.compile(r"/login$"))
            browser.close()
            assert not errors, errors
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        log.close()
    assert world.rows("select count(*) from app.summaries where login = %s and generated_at > "
                      "(select max(logged_in_at) from app.user_logins where login = %s)", world.reader, world.reader)[0][0]
