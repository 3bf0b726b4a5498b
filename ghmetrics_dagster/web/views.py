"""What each page shows, read from the marts, ml.insights and app tables, within the user's scope.

A user's scope is app.user_scope: the repositories they are registered for that their own
token can read. Every function here takes the login and never returns data outside that scope;
`app_data.scope_repository` is the gate the repository page and API pass first (None means 404).
The figures come from `summaries.aggregates.load_summary_input`, so a page and the user's summary
never disagree.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from decimal import Decimal
from typing import Any

from ghmetrics_dagster.metrics import contracts
from ghmetrics_dagster.summaries.aggregates import (
    AI_FIGURES,
    CYCLE_STAGES,
    FORECAST_TARGETS,
    FORECAST_WITHHELD,
    TEAM_NOT_PERSON,
    WINDOW_WEEKS,
    AggregatesError,
    SummaryInput,
    anomaly_unit,
    load_summary_input,
    select_or_null,
    weekly_columns,
)
from ghmetrics_dagster.summaries.report import adoption_figure, adoption_sentence
from ghmetrics_dagster.warehouse import app_data

# Each metric: its one-line definition, how it is scored, how it is charted and read. DORA's five
# metrics (docs/dora.md) come first, each with its value over the trailing 12 weeks (`window`,
# a column of the latest weekly row, or `trailing`, a figure of the summary's aggregates), its
# Quick Check score (0-10) and the benchmark it is compared with; `legacy_grade` is the DORA
# 2023 grade kept for one release. `better` says which direction is good.
_HOURS_ANSWERS = ("Quick Check score of the 12-week median: under an hour 10, under a day 8, under a week 6, "
                  "under a month 4, under six months 2, longer 0.")
METRICS: dict[str, dict[str, Any]] = {
    "median_lead_time_hours": {
        "title": "Lead time for changes", "unit": "hours", "better": "down", "dora": True,
        "definition": "From a pull request's first commit to the deployment that shipped it; the median.",
        "thresholds": _HOURS_ANSWERS,
        "window": "lead_time_hours_12w", "trailing_label": "median over 12 weeks", "window_unit": "hours",
        "score": "lead_time_score", "benchmark": "lead_time", "legacy_grade": "legacy_lead_time_grade",
    },
    "deployments": {
        "title": "Deployment frequency", "unit": "count", "better": "up", "dora": True,
        "definition": "How often changes reach production: deployments per week (successful and failed); scored "
                      "on the days with a successful deployment.",
        "thresholds": "Quick Check score of the deployment days per week over 12 weeks: every working day with "
                      "two or more deployments a day 10, every working day 8, at least weekly 6, at least monthly "
                      "4, less often 2, none 0.",
        "window": "deployment_days_per_week_12w", "trailing_label": "deployment days per week over 12 weeks",
        "window_unit": "count", "score": "deployment_frequency_score", "benchmark": "deployment_frequency",
        "legacy_grade": "legacy_deployment_frequency_grade",
    },
    "median_recovery_hours": {
        "title": "Failed deployment recovery time", "unit": "hours", "better": "down", "dora": True,
        "definition": "From a deployment that failed a change to the deployment that recovered it (its fix "
                      "shipped, else the next successful deployment); the median.",
        "thresholds": _HOURS_ANSWERS,
        "window": "recovery_hours_12w", "trailing_label": "median over 12 weeks", "window_unit": "hours",
        "score": "recovery_score", "benchmark": "recovery", "legacy_grade": None,
    },
    "change_failure_rate": {
        "title": "Change fail rate", "unit": "ratio", "better": "down", "dora": True,
        "definition": "Share of deployments that failed or to which a production incident is attributed.",
        "thresholds": "Quick Check score: 10 − 10 × the rate over 12 weeks (none failing scores 10, half of "
                      "them 5).",
        "window": "change_failure_rate_12w", "trailing_label": "over 12 weeks", "window_unit": "ratio",
        "score": "change_fail_score", "benchmark": "change_fail", "legacy_grade": "legacy_change_failure_rate_grade",
    },
    "rework_rate": {
        "title": "Rework rate", "unit": "ratio", "better": "down", "dora": True,
        "definition": "Share of deployments that shipped unplanned work to fix production: reverts, incident "
                      "fixes, and pull requests labelled or branched as hotfixes.",
        "thresholds": "Quick Check score: 10 − 10 × the rate over 12 weeks (no rework scores 10).",
        "window": "rework_rate_12w", "trailing_label": "over 12 weeks", "window_unit": "ratio",
        "score": "rework_score", "benchmark": "rework", "legacy_grade": None,
    },
    "overall_score": {
        "title": "Overall score", "unit": "score10", "better": "up", "dora": False,
        "definition": "0–10: the mean of the five Quick Check scores over 12 weeks; throughput is lead time, "
                      "deployment frequency and recovery time, stability is change fail rate and rework rate.",
        "thresholds": "Compared with DORA's 2025 benchmark mean (see above); it replaces the former 0–100 "
                      "performance score.",
        "window": None, "trailing_label": "", "score": None, "benchmark": "overall", "legacy_grade": None,
    },
    "median_time_to_restore_hours": {
        "title": "Incident time to restore", "unit": "hours", "better": "down", "dora": False,
        "definition": "From an incident's start (issue opened, or the reverted change merged) to its end; the median.",
        "thresholds": "An incident's own duration, not failed deployment recovery time; no Quick Check score.",
        "trailing": "median_time_to_restore_hours", "trailing_label": "median over 12 weeks",
        "window": None, "score": None, "benchmark": None, "legacy_grade": "legacy_time_to_restore_grade",
    },
    "review_coverage": {
        "title": "Review coverage", "unit": "ratio", "better": "up", "dora": False,
        "definition": "Share of merged pull requests by people that someone other than the author reviewed.",
        "thresholds": "Not a DORA metric; no score.",
        "trailing": "review_coverage", "trailing_label": "over 12 weeks",
        "window": None, "score": None, "benchmark": None, "legacy_grade": None,
    },
    "median_pr_size": {
        "title": "Pull-request size", "unit": "lines", "better": "down", "dora": False,
        "definition": "Lines added plus deleted per merged pull request by people; the median.",
        "thresholds": "No score; smaller changes review and ship faster.",
        "trailing": "median_pr_size", "trailing_label": "median over 12 weeks",
        "window": None, "score": None, "benchmark": None, "legacy_grade": None,
    },
}
# The headline: the overall, throughput and stability scores against the benchmark.
HEADLINE = (("overall", "Overall", "overall_score", "overall_vs_benchmark"),
            ("throughput", "Throughput", "throughput_score", "throughput_vs_benchmark"),
            ("stability", "Stability", "stability_score", "stability_vs_benchmark"))
STAGE_DEFINITIONS = {
    "coding": "first commit → pull request opened",
    "pickup": "ready for review → first review",
    "review": "first review → merged",
    "deploy": "merged → shipped to production",
}


def _float(value) -> float | None:
    if value is None:
        return None
    return float(value) if isinstance(value, (int, float, Decimal)) else None


def fmt(value, unit: str) -> str:
    """A value as people read it; "–" when unknown."""
    value = _float(value)
    if value is None:
        return "–"
    if unit == "ratio":
        return f"{value * 100:.0f} %"
    if unit == "hours":
        return f"{value:.0f} h" if value >= 48 else f"{value:.1f} h"
    if unit == "score":
        return f"{value:.0f}"
    if unit == "score10":  # Quick Check scores, 0..10
        return f"{value:.1f}"
    return f"{value:.0f}" if value == int(value) or value >= 100 else f"{value:.1f}"


# --- the refresh state -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UserState:
    logged_in_at: dt.datetime | None  # the user's latest sign-in
    refreshed_at: dt.datetime | None  # their latest summary: the end of their latest refresh
    data_version: int  # the newest summary of anyone: every wave ends by writing summaries
    failed_at: dt.datetime | None = None  # the login sensor's record of a failed refresh waiting for its retry
    retry_at: dt.datetime | None = None
    attempts: int = 0
    failure: str | None = None

    @property
    def stamp(self) -> tuple:
        """Changes whenever what the user's pages show may have changed: a wave ended (the
        marts were rebuilt) or the user signed in again (their scope was checked again)."""
        return (self.data_version, self.logged_in_at)


def user_state(cur, login: str) -> UserState:
    return UserState(*app_data.user_state(cur, login))


def refresh_status(state: UserState, ttl_minutes: float, now: dt.datetime | None = None) -> dict:
    """Whether the user's data is current: "fresh", "refreshing" (a login the sensor will
    refresh, as it decides: older than the TTL), or "never" (no data yet, none asked for)."""
    now = now or dt.datetime.now(dt.UTC)
    logged_in_at, refreshed_at = state.logged_in_at, state.refreshed_at
    ttl = dt.timedelta(minutes=ttl_minutes)
    if logged_in_at and (refreshed_at is None or (refreshed_at < logged_in_at and logged_in_at - refreshed_at >= ttl)):
        waited = (now - logged_in_at).total_seconds()
        state_name = "refreshing"
        message = ("Refreshing your metrics from GitHub; this page updates when it is done."
                   if waited < 900 else
                   f"The refresh asked for {waited / 60:.0f} minutes ago has not finished yet; the figures below "
                   "are from the last refresh. Your administrator can see why in the Dagster UI.")
        if state.failed_at and state.failed_at >= logged_in_at:
            state_name = "retrying"
            retry = "shortly" if state.retry_at <= now else f"at {state.retry_at:%H:%M} UTC"
            message = (f"The refresh failed ({state.failure}; attempt {state.attempts}); it is tried again "
                       f"automatically {retry}. The figures below are from the last refresh.")
    elif refreshed_at is None:
        state_name, message = "never", "No data yet: sign in again to ask for a refresh."
    else:
        state_name, message = "fresh", f"Refreshed {_ago(now - refreshed_at)} ago."
    return {
        "state": state_name,
        "message": message,
        "logged_in_at": logged_in_at.isoformat() if logged_in_at else None,
        "refreshed_at": refreshed_at.isoformat() if refreshed_at else None,
    }


def _ago(delta: dt.timedelta) -> str:
    seconds = max(delta.total_seconds(), 0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


# --- scope -----------------------------------------------------------------------------------


def scope_repositories(cur, login: str) -> list[str]:
    """The user's scope as the pages list it: case-insensitive order."""
    return sorted(app_data.scope_repositories(cur, login), key=str.lower)


# --- a scope's page -----------------------------------------------------------------------------


def scope_view(conn, login: str, repository: str | None = None) -> dict:
    """Everything the "My metrics" page (or, with `repository`, a repository's page) shows."""
    try:
        data = load_summary_input(conn, login, repository=repository)
    except AggregatesError:  # a new installation before its first refresh built the marts
        data = SummaryInput(login=login)
    weeks = data.weeks
    view: dict[str, Any] = {
        "scope": repository or login,
        "scope_type": "repository" if repository else "user",
        "has_data": data.has_data,
        "latest_week": data.week_start,
        "window_weeks": WINDOW_WEEKS,
        "scope_note": data.scope_note,
        "weeks": [row["week_start"] for row in weeks],
    }
    if not data.has_data:
        return view
    view["headline"] = _headline(data)
    view["team_not_person"] = TEAM_NOT_PERSON
    view["metrics"] = [_metric_card(key, data) for key in METRICS]
    view["cycle"] = [
        {"stage": stage, "hours": _float(data.cycle_medians_12w.get(stage)), "definition": STAGE_DEFINITIONS[stage],
         "display": fmt(data.cycle_medians_12w.get(stage), "hours")}
        for stage in CYCLE_STAGES
    ]
    view["forecasts"] = _forecasts(data)
    view["bottleneck"] = _bottleneck(data)
    view["anomalies"] = [_explain_anomaly(a, weeks) for a in data.anomalies if a.scope == view["scope"]]
    view["other_anomalies"] = len([a for a in data.anomalies if a.scope != view["scope"]])
    view["charts"] = {key: _series(key, data, view["anomalies"], view["forecasts"]) for key in METRICS}
    view["ai"] = ai_comparison(data)
    if data.ai_weeks:
        view["charts"]["ai_adoption"] = adoption_figure(data)
    return view


AI_COHORT_TITLES = {"ai_assisted": "AI-assisted", "other": "Other"}


def _too_few(merged) -> str:
    return f"too few pull requests to compare (n = {merged})"


def _side_by_side(groups: dict[str, tuple[str, dict]]) -> tuple[list[dict], list[dict]]:
    """Columns and rows of a table comparing `groups` (key -> (title, figures with merged_prs
    and is_too_small)): a group too small to say anything shows its count and says so instead
    of its figures."""
    too_small = {key: figures.get("is_too_small") is not False for key, (_, figures) in groups.items()}
    columns = [{"key": key, "title": title, "merged_prs": figures.get("merged_prs") or 0,
                "too_small": too_small[key],
                "too_small_text": _too_few(figures.get("merged_prs") or 0) if too_small[key] else None}
               for key, (title, figures) in groups.items()]
    rows = [{"key": "merged_prs", "title": "Merged pull requests",
             **{key: {"value": _float(figures.get("merged_prs") or 0), "display": fmt(figures.get("merged_prs") or 0, "count")}
                for key, (_, figures) in groups.items()}}]
    for field, label, unit in AI_FIGURES:
        row = {"key": field, "title": label[0].upper() + label[1:]}
        for key, (_, figures) in groups.items():
            value = None if too_small[key] else _float(figures.get(field))
            row[key] = {"value": value, "display": fmt(value, unit)}
        rows.append(row)
    return columns, rows


def ai_comparison(data: SummaryInput) -> dict | None:
    """AI-assisted pull requests against the others over the trailing 12 weeks (docs/ai.md), and
    all pull requests in the weeks before the adoption week against as many from it on; a group
    too small to say anything says so instead of its numbers. None before the marts have the
    cohorts."""
    if not data.ai_cohorts:
        return None
    cohorts, rows = _side_by_side({cohort: (AI_COHORT_TITLES[cohort], figures)
                                   for cohort, figures in data.ai_cohort_groups.items()})
    windows = data.ai_adoption_windows
    periods, period_rows = _side_by_side({
        period: (title, windows[period]) for period, title in (("before", "Before adoption"), ("after", "From adoption on"))
    }) if windows else ([], [])
    return {
        "cohorts": cohorts,
        "comparable": data.ai_comparable,
        "rows": rows,
        "adoption_week": data.ai_adoption.get("adoption_week"),
        "adoption_share": _float(data.ai_adoption.get("adoption_week_share")),
        "adoption_text": (adoption_sentence(data)
                          or "No week's share of AI-assisted pull requests has reached the adoption share yet."),
        "periods": periods,
        "period_rows": period_rows,
        "window_weeks": data.ai_adoption.get("window_weeks"),
    }


def _headline(data: SummaryInput) -> dict:
    """The overall, throughput and stability scores of the latest week (each over its trailing 12
    weeks) against DORA's 2025 benchmark mean of the chosen segment (marts.dora_benchmarks)."""
    latest = data.weeks[-1] if data.weeks else {}
    scores = []
    for key, title, column, delta in HEADLINE:
        score, benchmark = _float(latest.get(column)), _float(data.benchmarks.get(key))
        vs = _float(latest.get(delta))
        if vs is None and score is not None and benchmark is not None:
            vs = score - benchmark
        scores.append({
            "key": key, "title": title, "score": score, "display": fmt(score, "score10"),
            "benchmark": benchmark, "benchmark_display": fmt(benchmark, "score10"), "vs_benchmark": vs,
            "vs_display": "–" if vs is None else f"{vs:+.1f}",
            "above": None if vs is None else vs >= 0,
        })
    return {"edition": contracts.BENCHMARK_EDITION, "segment": data.benchmark_segment, "scores": scores}


def _metric_card(key: str, data: SummaryInput) -> dict:
    spec = METRICS[key]
    weeks = data.weeks
    latest_row = weeks[-1] if weeks else {}
    latest = _float(latest_row.get(key))
    previous = _float(weeks[-2].get(key)) if len(weeks) >= 2 else None
    unit = "count" if spec["unit"] == "lines" else spec["unit"]
    if spec.get("window"):
        trailing, trailing_unit = _float(latest_row.get(spec["window"])), spec["window_unit"]
    elif spec.get("trailing"):
        trailing, trailing_unit = _float(data.trailing.get(spec["trailing"])), unit
    else:
        trailing, trailing_unit = None, unit
    score = _float(latest_row.get(spec["score"])) if spec["score"] else None
    benchmark = _float(data.benchmarks.get(spec["benchmark"])) if spec["benchmark"] else None
    legacy = latest_row.get(spec["legacy_grade"]) if spec["legacy_grade"] else None
    return {
        "key": key,
        **{k: spec[k] for k in ("title", "definition", "thresholds", "better", "trailing_label", "dora")},
        "unit": spec["unit"],
        "latest": latest,
        "latest_display": fmt(latest, unit),
        "trailing": trailing,
        "trailing_display": fmt(trailing, trailing_unit) if (spec.get("window") or spec.get("trailing")) else None,
        "score": score,
        "score_display": fmt(score, "score10") if spec["score"] else None,
        "benchmark": benchmark,
        "benchmark_display": fmt(benchmark, "score10") if spec["benchmark"] else None,
        "legacy_grade": legacy,
        "trend": _trend(latest, previous, spec["better"], unit),
    }


def _trend(latest: float | None, previous: float | None, better: str, unit: str) -> dict | None:
    if latest is None or previous is None:
        return None
    change = latest - previous
    amount = fmt(abs(change), unit) if unit != "ratio" else f"{abs(change) * 100:.0f} points"
    if amount.split()[0] in ("0", "0.0"):  # a change too small to show reads as none
        return {"direction": "flat", "text": "about the same as the week before", "good": None}
    direction = "up" if change > 0 else "down"
    return {"direction": direction, "text": f"{direction} {amount} on the week before", "good": direction == better}


def _forecasts(data: SummaryInput) -> list[dict]:
    """Next week's forecasts with their measured interval, and for a target the model may not
    publish (it does no better than last week's value), that statement instead of a number."""
    out = []
    level = _float(data.predictions.get("interval_level"))
    for target in FORECAST_TARGETS:
        metric, key = target.metric, target.column
        value = _float(data.predictions.get(key))
        unit = METRICS[metric]["unit"]
        status = data.forecast_status.get(target.short)
        if value is None:
            if status in FORECAST_WITHHELD:
                out.append({"metric": metric, "title": METRICS[metric]["title"], "value": None,
                            "withheld": FORECAST_WITHHELD[status], "status": status})
            continue
        low, high = _float(data.predictions.get(f"{key}_low")), _float(data.predictions.get(f"{key}_high"))
        out.append({
            "metric": metric, "title": METRICS[metric]["title"], "value": value, "display": fmt(value, unit),
            "low": low, "high": high, "status": status,
            "range": f"{fmt(low, unit)} – {fmt(high, unit)}" if low is not None and high is not None else None,
            "level": f"{level * 100:.0f} %" if level is not None else None,
        })
    return out


# Weekly metrics the anomaly model watches that have no card of their own.
ANOMALY_TITLES = {
    "median_coding_hours": "Median coding time", "median_pickup_hours": "Median pickup time",
    "median_review_hours": "Median review time", "median_deploy_hours": "Median deploy time",
    "deployments_per_deployment_day": "Deployments per deployment day", "deployment_days": "Deployment days",
    "p90_pr_size": "Pull-request size (90th percentile)", "incidents": "Incidents",
}


def _explain_anomaly(anomaly, weeks: list[dict]) -> dict:
    """What was unusual in the week, on a stated scale: the observed value against the range the
    scope's own earlier weeks make usual, the robust z-score, and how rare such a week is."""
    metric = anomaly.metric
    spec = METRICS.get(metric, {"title": ANOMALY_TITLES.get(metric, metric.replace("_", " ")),
                                "unit": anomaly_unit(metric)})
    unit = "count" if spec["unit"] == "lines" else spec["unit"]
    observed, low, high = _float(anomaly.observed), _float(anomaly.expected_low), _float(anomaly.expected_high)
    z, every = _float(anomaly.z), _float(anomaly.weeks_per_event)
    if observed is not None and low is not None and high is not None:
        sentence = f"{spec['title']} in the week of {anomaly.week_start}: {fmt(observed, unit)} against an expected " \
                   f"{fmt(low, unit)} – {fmt(high, unit)}."
    else:  # a row scored before anomalies carried their range: against the weeks before it
        sentence = _against_typical(anomaly, spec["title"], metric, unit, weeks)
    scale = ""
    if z is not None:
        rarity = ("rarer than once in 10,000 weeks" if every is not None and every > 10_000
                  else f"about once in {every:,.0f} weeks" if every is not None else "")
        scale = (f"z-score {z:+.1f}: {abs(z):.1f} robust standard deviations {'above' if z > 0 else 'below'} "
                 f"this scope's usual weeks (3.25 flags)" + (f"; a week this far out comes {rarity}" if rarity else ""))
    elif _float(anomaly.anomaly_score) is not None:
        scale = f"detector score {_float(anomaly.anomaly_score):.2f}: 1.00 is the flagging threshold, higher is more unusual"
    return {
        "week_start": anomaly.week_start, "metric": metric, "title": spec["title"], "observed": observed,
        "expected_low": low, "expected_high": high, "z": z, "score": _float(anomaly.anomaly_score),
        "sentence": sentence,
        "score_text": scale,
    }


def _against_typical(anomaly, title: str, metric: str, unit: str, weeks: list[dict]) -> str:
    index = next((i for i, row in enumerate(weeks) if row["week_start"] == anomaly.week_start), None)
    observed = _float(weeks[index].get(metric)) if index is not None else None
    before = [_float(row.get(metric)) for row in weeks[max(0, (index or 0) - WINDOW_WEEKS):index or 0]]
    before = [v for v in before if v is not None]
    typical = statistics.median(before) if before else None
    if observed is None or typical is None:
        how = "unusual against the scope's own history"
    elif typical and observed / typical >= 1.5:
        how = f"{fmt(observed, unit)}, {observed / typical:.1f} times the typical {fmt(typical, unit)}"
    elif typical and observed / typical <= 0.67:
        how = f"{fmt(observed, unit)}, {(1 - observed / typical) * 100:.0f} % below the typical {fmt(typical, unit)}"
    else:
        how = f"{fmt(observed, unit)} against a typical {fmt(typical, unit)}"
    return f"{title} in the week of {anomaly.week_start}: {how} (median of the {len(before)} weeks before)."


def _bottleneck(data: SummaryInput) -> dict | None:
    """The stage that takes most of the time to ship over the last 12 weeks (marts.fct_bottlenecks)."""
    stage = data.bottleneck.get("dominant_stage")
    share = _float(data.bottleneck.get("dominant_share_12w"))
    if stage is None or share is None:
        return None
    earlier = _float(data.bottleneck.get("dominant_share_earlier_6w"))
    recent = _float(data.bottleneck.get("dominant_share_recent_6w"))
    change = None
    if earlier is not None and recent is not None:
        change = (f"{'up' if recent > earlier else 'down' if recent < earlier else 'steady'}: "
                  f"{earlier * 100:.0f} % in the first 6 of those weeks, {recent * 100:.0f} % in the last 6")
    return {"stage": stage, "share": share, "share_display": f"{share * 100:.0f} %", "change": change,
            "prs": data.bottleneck.get("prs_12w")}


def _series(key: str, data: SummaryInput, anomalies: list[dict], forecasts: list[dict]) -> dict:
    """A plotly figure (plain JSON) for one metric: its weekly values, its own anomalies, and
    the forecast for next week when there is one."""
    spec = METRICS[key]
    scale = 100.0 if spec["unit"] == "ratio" else 1.0
    x = [row["week_start"] for row in data.weeks]
    y = [None if _float(row.get(key)) is None else _float(row.get(key)) * scale for row in data.weeks]
    traces: list[dict] = [{"type": "scatter", "mode": "lines+markers", "name": "weekly value", "x": x, "y": y,
                           "line": {"color": "#1f5fa8"}, "hovertemplate": "%{x}: %{y:.1f}<extra></extra>"}]
    own = [a for a in anomalies if a["metric"] == key and a["week_start"] in x]
    if own:
        traces.append({"type": "scatter", "mode": "markers", "name": "anomaly",
                       "x": [a["week_start"] for a in own],
                       "y": [y[x.index(a["week_start"])] for a in own],
                       "marker": {"color": "#b00020", "size": 13, "symbol": "circle-open", "line": {"width": 3}}})
    for forecast in forecasts:
        if forecast["metric"] == key and x and forecast["value"] is not None:
            next_week = (dt.date.fromisoformat(x[-1]) + dt.timedelta(days=7)).isoformat()
            error = None
            if forecast["low"] is not None and forecast["high"] is not None:
                error = {"type": "data", "symmetric": False, "visible": True,
                         "array": [(forecast["high"] - forecast["value"]) * scale],
                         "arrayminus": [(forecast["value"] - forecast["low"]) * scale]}
            traces.append({"type": "scatter", "mode": "markers", "name": "forecast, next week", "x": [next_week],
                           "y": [forecast["value"] * scale], "error_y": error,
                           "marker": {"color": "#6a3d9a", "size": 10, "symbol": "diamond"}})
    window = spec.get("window")
    if window and spec.get("window_unit") == spec["unit"]:
        # The figure the score is given on: each week's value over the 12 weeks ending with it.
        traces.append({"type": "scatter", "mode": "lines", "name": "over 12 weeks", "x": x,
                       "y": [None if _float(row.get(window)) is None else _float(row.get(window)) * scale
                             for row in data.weeks],
                       "line": {"color": "#888", "dash": "dot"}, "hovertemplate": "%{x}: %{y:.1f}<extra></extra>"})
    benchmark = _float(data.benchmarks.get("overall")) if key == "overall_score" else None
    if benchmark is not None and x:
        traces.append({"type": "scatter", "mode": "lines", "name": f"{contracts.BENCHMARK_EDITION} benchmark",
                       "x": [x[0], x[-1]], "y": [benchmark, benchmark], "line": {"color": "#888", "dash": "dash"}})
    unit_label = {"ratio": "%", "hours": "hours", "lines": "lines", "score10": "0–10", "count": "per week"}[spec["unit"]]
    yaxis = {"title": {"text": unit_label}, "rangemode": "tozero"}
    if spec["unit"] == "score10":
        yaxis["range"] = [0, 10]
    return {
        "data": traces,
        "layout": {"height": 240, "margin": {"l": 48, "r": 12, "t": 8, "b": 36}, "showlegend": len(traces) > 1,
                   "legend": {"orientation": "h", "y": -0.25}, "yaxis": yaxis,
                   "xaxis": {"type": "date"}},
    }


# --- the rows behind a repository's numbers ------------------------------------------------------


def rows_behind(cur, repository: str, latest_week: str | None) -> dict:
    """The rows behind a repository's numbers (docs/dora.md, "Explain a number"): the pull
    requests shipped in the latest week (its lead time), the deployments of the trailing 12
    weeks that failed a change with why, their recovery and the incidents attributed to them
    with the evidence (change fail rate, recovery time), and the rework they shipped."""
    if latest_week is None:
        return {"shipped": [], "failures": [], "rework": []}
    week = dt.date.fromisoformat(latest_week)
    week_start = dt.datetime.combine(week, dt.time(), dt.UTC)
    cur.execute(
        "select number, title, author_login, lead_time_hours, coding_hours, pickup_hours, review_hours,"
        " deploy_hours, pr_size, shipped_at from marts.fct_pull_requests"
        " where repo_full_name = %s and not is_bot and shipped_at >= %s and shipped_at < %s"
        " order by lead_time_hours desc nulls last, number limit 50",
        (repository, week_start, week_start + dt.timedelta(days=7)),
    )
    names = [d[0] for d in cur.description]
    shipped = [dict(zip(names, row, strict=False)) for row in cur.fetchall()]
    since = week - dt.timedelta(weeks=WINDOW_WEEKS)
    cur.execute(
        "select d.deployment_id, d.source, d.deployed_at, d.is_failed, d.incident_count, d.failure_cause,"
        " d.recovery_hours, d.recovery_evidence,"
        " coalesce(json_agg(json_build_object('kind', i.kind, 'started_at', i.started_at,"
        "   'restore_hours', i.restore_hours, 'evidence', i.attribution_evidence))"
        "   filter (where i.incident_id is not null), '[]')"
        " from marts.fct_deployments d left join marts.fct_incidents i on i.deployment_id = d.deployment_id"
        " where d.repo_full_name = %s and d.fails_change and d.week_start > %s"
        " group by 1, 2, 3, 4, 5, 6, 7, 8 order by d.deployed_at desc limit 50",
        (repository, since),
    )
    names = ["deployment_id", "source", "deployed_at", "is_failed", "incident_count", "failure_cause",
             "recovery_hours", "recovery_evidence", "incidents"]
    failures = [dict(zip(names, row, strict=False)) for row in cur.fetchall()]
    # Its rework rate: the deployments that shipped rework, with the pull requests that made them so.
    cur.execute(
        "select d.deployed_at, p.number, p.title, p.rework_reason"
        " from marts.fct_deployments d"
        " join marts.fct_pull_requests p on p.shipping_deployment_id = d.deployment_id and p.rework_reason is not null"
        " where d.repo_full_name = %s and d.is_rework and d.week_start > %s"
        " order by d.deployed_at desc, p.number limit 50",
        (repository, since),
    )
    rework = [dict(zip(("deployed_at", "number", "title", "rework_reason"), row, strict=False)) for row in cur.fetchall()]
    return {"shipped": shipped, "failures": failures, "rework": rework}


# --- the team page ------------------------------------------------------------------------------


# The team page's columns of each repository's latest week (docs/dora.md): the headline scores,
# DORA's five metrics over 12 weeks with their scores, and the legacy columns (one release).
TEAM_LATEST = (
    "overall_score", "throughput_score", "stability_score", "overall_vs_benchmark",
    "lead_time_hours_12w", "lead_time_score", "deployment_days_per_week_12w", "deployment_frequency_score",
    "recovery_hours_12w", "recovery_score", "change_failure_rate_12w", "change_fail_score",
    "rework_rate_12w", "rework_score", "median_lead_time_hours", "review_coverage_12w", "median_pr_size",
    *contracts.LEGACY_GRADE_COLUMNS, contracts.LEGACY_SCORE,
)


def team_rows(cur, login: str) -> list[dict]:
    """The user's repositories side by side, best overall score first: the latest week's scores
    and 12-week figures."""
    cur.execute("select to_regclass('marts.fct_dora_weekly')")
    if cur.fetchone()[0] is None:
        return []
    latest = select_or_null(weekly_columns(cur), TEAM_LATEST, wrap="(array_agg({} order by week_start desc))[1]")
    cur.execute(
        f"""with scoped as (
               select w.*, row_number() over (partition by w.scope order by w.week_start desc) as age
               from marts.fct_dora_weekly w
               join app.user_scope s on s.repo_full_name = w.scope and s.login = %s
               where w.scope_type = 'repository'
           )
           select scope,
                  max(week_start) as latest_week,
                  sum(deployments) as deployments_12w,
                  {latest}
           from scoped where age <= 12 group by scope""",
        (login,),
    )
    names = [d[0] for d in cur.description]
    rows = []
    for row in cur.fetchall():
        item = {n: (_float(v) if isinstance(v, Decimal) else v) for n, v in zip(names, row, strict=False)}
        item["latest_week"] = item["latest_week"].isoformat() if item["latest_week"] else None
        rows.append(item)
    # Best overall score first; repositories without one last, by name.
    rows.sort(key=lambda r: (r["overall_score"] is None, -(r["overall_score"] or 0), r["scope"].lower()))
    return rows


def latest_summary(cur, login: str) -> dict | None:
    row = app_data.latest_summary(cur, login)
    if row is None:
        return None
    return {"text": row[0], "provider": row[1], "generated_at": row[2].isoformat(), "grounded": row[3]}
