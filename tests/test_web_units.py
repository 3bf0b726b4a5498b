"""The dashboard's pure helpers: formatting, trends, anomaly sentences, OAuth URLs, settings."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from ghmetrics_dagster.summaries import report
from ghmetrics_dagster.summaries.aggregates import Anomaly, SummaryInput
from ghmetrics_dagster.web import accounts, oauth, views
from ghmetrics_dagster.web.config import WebConfig, WebConfigError


def config(**changes) -> WebConfig:
    values = {"database_url": "postgresql://x/y", "client_id": "Iv1.abc", "client_secret": "s3cret",
              "session_secret": "k" * 40, "oauth_url": "https://ghe.example.com"}
    return WebConfig(**{**values, **changes})


def test_values_read_as_people_read_them():
    assert views.fmt(0.0912, "ratio") == "9 %"
    assert views.fmt(40.62, "hours") == "40.6 h" and views.fmt(50.7, "hours") == "51 h"
    assert views.fmt(None, "hours") == "–" and views.fmt(12, "count") == "12" and views.fmt(83.9, "score") == "84"
    assert views.fmt(6.4, "score10") == "6.4" and views.fmt(10, "score10") == "10.0"


def test_the_catalogue_shows_doras_five_metrics_with_their_scores_and_the_headline_against_the_benchmark():
    from test_llm_grounding import sample_input

    data = sample_input()
    data.weeks = [dict(data.latest, week_start="2026-04-27", overall_score=7.0),
                  dict(data.latest, week_start="2026-05-04", legacy_lead_time_grade="high")]
    five = [key for key, spec in views.METRICS.items() if spec["dora"]]
    assert [views.METRICS[k]["title"] for k in five] == [
        "Lead time for changes", "Deployment frequency", "Failed deployment recovery time", "Change fail rate",
        "Rework rate"]
    cards = {key: views._metric_card(key, data) for key in views.METRICS}
    assert (cards["median_lead_time_hours"]["trailing_display"], cards["median_lead_time_hours"]["score_display"],
            cards["median_lead_time_hours"]["benchmark_display"]) == ("30.1 h", "6.0", "5.5")
    assert cards["deployments"]["trailing_display"] == "2.5" and cards["deployments"]["score"] == 6
    assert (cards["median_recovery_hours"]["trailing_display"], cards["median_recovery_hours"]["score"]) == ("5.5 h", 8)
    assert (cards["change_failure_rate"]["trailing_display"], cards["change_failure_rate"]["score"]) == ("10 %", 9)
    assert (cards["rework_rate"]["trailing_display"], cards["rework_rate"]["score"]) == ("5 %", 9.5)
    # The 2023 grade stays, named as legacy; the incident's own restore time keeps its name, unscored.
    assert cards["median_lead_time_hours"]["legacy_grade"] == "high"
    assert views.METRICS["median_time_to_restore_hours"]["title"] == "Incident time to restore"
    assert cards["median_time_to_restore_hours"]["score"] is None
    assert cards["overall_score"]["trend"]["text"] == "up 0.7 on the week before"
    headline = views._headline(data)
    assert headline["segment"] == "All industries" and headline["edition"] == "DORA 2025"
    assert [(h["title"], h["display"], h["benchmark_display"], h["vs_display"]) for h in headline["scores"]] == [
        ("Overall", "7.7", "4.3", "+3.4"), ("Throughput", "6.7", "6.0", "+0.7"), ("Stability", "9.2", "7.9", "+1.4")]
    # The overall score's chart is on the 0-10 scale with the benchmark mean drawn across it.
    chart = views._series("overall_score", data, [], [])
    assert chart["layout"]["yaxis"]["range"] == [0, 10]
    assert [t["y"] for t in chart["data"] if t["name"] == "DORA 2025 benchmark"] == [[4.3, 4.3]]


def test_a_trend_says_which_way_and_whether_that_is_good():
    assert views._trend(20, 30, "down", "hours") == {"direction": "down", "text": "down 10.0 h on the week before", "good": True}
    assert views._trend(0.2, 0.1, "down", "ratio")["text"] == "up 10 points on the week before"
    assert views._trend(84.0, 83.99, "up", "score")["direction"] == "flat"  # too small to show
    assert views._trend(None, 3, "up", "count") is None


def test_an_anomaly_sentence_gives_the_value_the_typical_value_and_the_ratio():
    weeks = [{"week_start": f"2026-01-{d:02d}", "median_pr_size": 100.0} for d in (5, 12, 19, 26)]
    weeks.append({"week_start": "2026-02-02", "median_pr_size": 320.0})
    explained = views._explain_anomaly(Anomaly("2026-02-02", "median_pr_size", 1.4, "acme/api"), weeks)
    assert explained["sentence"] == ("Pull-request size in the week of 2026-02-02: 320, 3.2 times the typical 100 "
                                     "(median of the 4 weeks before).")
    assert "1.40: 1.00 is the flagging threshold" in explained["score_text"]
    low = views._explain_anomaly(Anomaly("2026-02-02", "median_pr_size", 1.1), weeks[:4] + [
        {"week_start": "2026-02-02", "median_pr_size": 20.0}])
    assert "80 % below the typical 100" in low["sentence"]


def test_an_anomaly_reads_on_its_stated_scale_with_the_expected_range():
    explained = views._explain_anomaly(
        Anomaly("2026-02-02", "median_review_hours", 1.6, "acme/api", z=5.15, weeks_per_event=3.8e6, observed=19.54,
                expected_low=1.52, expected_high=11.77), [])
    assert explained["sentence"] == "Median review time in the week of 2026-02-02: 19.5 h against an expected 1.5 h – 11.8 h."
    assert explained["score_text"] == ("z-score +5.2: 5.2 robust standard deviations above this scope's usual weeks "
                                       "(3.25 flags); a week this far out comes rarer than once in 10,000 weeks")
    low = views._explain_anomaly(Anomaly("2026-02-02", "review_coverage", 1.1, "acme/api", z=-3.6, weeks_per_event=3100,
                                         observed=0.4, expected_low=0.6, expected_high=1.0), [])
    assert "about once in 3,100 weeks" in low["score_text"] and "below" in low["score_text"]


def test_a_withheld_forecast_says_why_and_a_shown_one_gives_its_interval():
    data = SummaryInput(login="alice", week_start="2026-05-25", weeks=[{"week_start": "2026-05-25"}],
                        predictions={"predicted_lead_time_hours": 41.2, "predicted_lead_time_hours_low": 30.1,
                                     "predicted_lead_time_hours_high": 55.0, "interval_level": 0.8},
                        forecast_status={"lead_time": "published", "overall_score": "behind_naive_live"})
    lead, score = views._forecasts(data)
    assert lead["range"] == "30.1 h – 55 h" and lead["level"] == "80 %"
    assert score["value"] is None and score["withheld"].startswith("withdrawn: lately worse than last week's value")
    chart = views._series("median_lead_time_hours", data, [], [lead, score])
    forecast = next(t for t in chart["data"] if t["name"] == "forecast, next week")
    assert forecast["error_y"]["array"] == [pytest.approx(13.8)] and forecast["error_y"]["arrayminus"] == [pytest.approx(11.1)]


def test_the_authorize_url_carries_the_app_the_callback_the_scopes_and_the_state():
    url = oauth.authorize_url(config(), "st4te", "https://metrics.example.com/auth/callback")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://ghe.example.com/login/oauth/authorize"
    query = parse_qs(parts.query)
    assert query["client_id"] == ["Iv1.abc"] and query["state"] == ["st4te"] and query["scope"] == ["repo read:org"]
    assert query["redirect_uri"] == ["https://metrics.example.com/auth/callback"] and "s3cret" not in url


def test_states_must_match_exactly_and_exist():
    assert oauth.states_match("abc", "abc")
    assert not oauth.states_match("abc", "abd") and not oauth.states_match(None, "abc") and not oauth.states_match("abc", None)
    assert not oauth.states_match("", "")
    assert oauth.new_state() != oauth.new_state()


def test_only_the_configured_organisations_repositories_are_recorded():
    repos = ["acme/api", "ACME-labs/x", "someone/dotfiles"]
    assert accounts.in_organizations(repos, ()) == repos
    assert accounts.in_organizations(repos, ("acme", "acme-labs")) == ["acme/api", "ACME-labs/x"]


def test_the_dashboard_will_not_start_without_an_oauth_app_or_with_a_short_secret(monkeypatch):
    with pytest.raises(WebConfigError, match="GHMETRICS_OAUTH_CLIENT_ID and GHMETRICS_OAUTH_CLIENT_SECRET"):
        config(client_id="").check()
    with pytest.raises(WebConfigError, match="at least 32"):
        config(session_secret="short").check()
    assert "s3cret" not in repr(config()) and "k" * 40 not in repr(config())


def test_ghmetrics_web_without_an_oauth_app_fails_in_one_line(database_url, monkeypatch):
    from click.testing import CliRunner

    from ghmetrics_dagster.cli import main

    for name in ("GHMETRICS_OAUTH_CLIENT_ID", "GHMETRICS_OAUTH_CLIENT_SECRET", "GHMETRICS_INSTANCE"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["web", "--port", "1"])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "GHMETRICS_OAUTH_CLIENT_ID and GHMETRICS_OAUTH_CLIENT_SECRET" in lines[0]


def test_ghmetrics_web_in_a_container_needs_the_shared_secret_key(database_url, monkeypatch):
    from click.testing import CliRunner

    from ghmetrics_dagster.cli import main

    monkeypatch.setenv("GHMETRICS_INSTANCE", "production")
    monkeypatch.delenv("GHMETRICS_SECRET_KEY", raising=False)
    result = CliRunner().invoke(main, ["web"])
    assert result.exit_code != 0 and "GHMETRICS_SECRET_KEY is not set" in result.output



def test_the_ai_cohorts_sit_side_by_side_and_a_small_one_says_so_instead_of_numbers():
    from test_llm_grounding import ADOPTION, ai_cohorts, sample_input

    data = sample_input(ai_cohorts=ai_cohorts(), ai_adoption=ADOPTION)
    ai = views.ai_comparison(data)
    assert ai["comparable"] and [c["title"] for c in ai["cohorts"]] == ["AI-assisted", "Other"]
    rows = {row["key"]: row for row in ai["rows"]}
    assert (rows["merged_prs"]["ai_assisted"]["display"], rows["merged_prs"]["other"]["display"]) == ("34", "46")
    assert (rows["median_lead_time_hours"]["ai_assisted"]["display"],
            rows["median_lead_time_hours"]["other"]["display"]) == ("20.1 h", "31.4 h")
    assert (rows["review_coverage"]["ai_assisted"]["display"], rows["review_coverage"]["other"]["display"]) == (
        "85 %", "90 %")
    assert ai["adoption_text"] == ("AI-assisted pull requests first reached 31 % of the week's merged pull requests "
                                   "in the week of 2026-03-02.")

    small = views.ai_comparison(sample_input(ai_cohorts=ai_cohorts(ai_prs=12)))
    assert not small["comparable"]
    assert [(c["too_small"], c["too_small_text"]) for c in small["cohorts"]] == [
        (True, "too few pull requests to compare (n = 12)"), (False, None)]
    assert all(row["ai_assisted"]["value"] is None for row in small["rows"][1:])
    assert "no week" in small["adoption_text"].lower()
    assert views.ai_comparison(sample_input()) is None  # before the marts have the cohorts


def test_the_adoption_curve_charts_the_weekly_share_and_copilots_active_users_on_a_second_axis():
    from test_llm_grounding import ADOPTION, sample_input

    data = sample_input(ai_adoption=ADOPTION, ai_weeks=[
        {"week_start": "2026-02-23", "merged_prs": 10, "ai_assisted_prs": 2},
        {"week_start": "2026-03-02", "merged_prs": 16, "ai_assisted_prs": 5},
        {"week_start": "2026-03-09", "merged_prs": 0, "ai_assisted_prs": 0}])
    figure = report.adoption_figure(data)
    (share,) = figure["data"]
    assert share["y"] == [20.0, 31.25, None] and figure["layout"]["yaxis"]["range"] == [0, 100]
    assert figure["layout"]["shapes"][0]["x0"] == "2026-03-02"  # the adoption week, marked
    assert "yaxis2" not in figure["layout"]  # no Copilot data: no second axis
    data.copilot_weeks = [{"org": "acme", "week_start": w, "weekly_active_users": n}
                          for w, n in (("2026-02-23", 4), ("2026-03-02", 7))]
    share, users = report.adoption_figure(data)["data"]
    assert users["name"] == "Copilot weekly active users" and users["y"] == [4, 7] and users["yaxis"] == "y2"


def test_the_report_shows_the_two_cohorts_and_the_adoption_curve_beside_the_overall_trend():
    from test_llm_grounding import ADOPTION, ai_cohorts, sample_input

    data = sample_input(ai_cohorts=ai_cohorts(), ai_adoption=ADOPTION, weeks=[
        {"week_start": "2026-03-02", "overall_score": 7.0}],
        ai_weeks=[{"week_start": "2026-03-02", "merged_prs": 16, "ai_assisted_prs": 5}])
    page = report.render_html(data, {"text": "x", "provider": "rules", "model": "rules-v3", "cost_usd": 0,
                                     "grounded": True})
    assert "AI-assisted pull requests against the others" in page
    assert "<th>median lead time</th><td class=\"num\">20.1 h</td><td class=\"num\">31.4 h</td>" in page
    assert "AI adoption: share of merged pull requests AI-assisted per week" in page
    assert page.index('<div class="side-by-side">') < page.index("AI adoption") < page.index("Weekly trends")
    small = report.render_html(sample_input(ai_cohorts=ai_cohorts(other_prs=7)),
                               {"text": "x", "provider": "rules", "model": "rules-v3", "cost_usd": 0})
    assert "too few pull requests to compare (n = 7)" in small and "31.4 h" not in small


def test_before_and_after_adoption_sit_side_by_side_in_the_dashboard_and_the_report():
    from test_llm_grounding import ADOPTION, ai_cohorts, sample_input

    adoption = {**ADOPTION, "window_weeks": 12,
                "merged_prs_before": 41, "is_too_small_before": False, "median_lead_time_hours_before": 30.5,
                "review_coverage_before": 0.8,
                "merged_prs_after": 9, "is_too_small_after": True, "median_lead_time_hours_after": None}
    ai = views.ai_comparison(sample_input(ai_cohorts=ai_cohorts(), ai_adoption=adoption))
    assert [(p["title"], p["merged_prs"], p["too_small"]) for p in ai["periods"]] == [
        ("Before adoption", 41, False), ("From adoption on", 9, True)]
    rows = {row["key"]: row for row in ai["period_rows"]}
    assert rows["median_lead_time_hours"]["before"]["display"] == "30.5 h"
    assert rows["review_coverage"]["before"]["display"] == "80 %"
    assert rows["median_lead_time_hours"]["after"]["value"] is None  # too small: no figure
    assert ai["periods"][1]["too_small_text"] == "too few pull requests to compare (n = 9)"
    assert ai["window_weeks"] == 12

    page = report._ai_html(sample_input(ai_cohorts=ai_cohorts(), ai_adoption=adoption))
    assert "in the 12 weeks before that week" in page and "30.5 h" in page
    assert "too few pull requests to compare (n = 9)" in page
    # Without an adoption week there is nothing to put before and after.
    assert views.ai_comparison(sample_input(ai_cohorts=ai_cohorts()))["periods"] == []
