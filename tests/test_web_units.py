"""The dashboard's pure helpers: formatting, trends, anomaly sentences, OAuth URLs, settings."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from ghmetrics_dagster.llm.aggregates import Anomaly
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

