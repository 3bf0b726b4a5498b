"""What each page shows, read from the marts, ml.insights and app tables, within the user's scope.

A user's scope is app.user_scope: the repositories they are registered for that their own
token can read. Every function here takes the login and never returns data outside that scope;
`scope_repository` is the gate the repository page and API pass first (None means 404).
The figures come from `llm.aggregates.load_summary_input`, so a page and the user's summary
never disagree.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from decimal import Decimal
from typing import Any

from ghmetrics_dagster.github import access
from ghmetrics_dagster.llm.aggregates import (
    CYCLE_STAGES,
    WINDOW_WEEKS,
    AggregatesError,
    SummaryInput,
    load_summary_input,
)

# Each metric: its one-line definition, thresholds (the 2023 DORA grades the marts apply over the
# trailing 12 weeks), how it is charted and read. `better` says which direction is good.
METRICS: dict[str, dict[str, Any]] = {
    "deployments": {
        "title": "Deployment frequency", "unit": "count", "better": "up", "grade": "deployment_frequency_grade",
        "definition": "How often changes reach production: deployments per week (successful and failed).",
        "thresholds": "Graded on the median days with a deployment per week over 12 weeks: elite ≥ 5, high ≥ 1, "
                      "medium ≥ one a month on average, low below.",
        "trailing": "deployments", "trailing_label": "deployments in 12 weeks",
    },
    "median_lead_time_hours": {
        "title": "Lead time for changes", "unit": "hours", "better": "down", "grade": "lead_time_grade",
        "definition": "From a pull request's first commit to the deployment that shipped it; the median.",
        "thresholds": "Elite < 1 day, high < 1 week, medium < 30 days, low ≥ 30 days (median over 12 weeks).",
        "trailing": "median_lead_time_hours", "trailing_label": "median over 12 weeks",
    },
    "change_failure_rate": {
        "title": "Change failure rate", "unit": "ratio", "better": "down", "grade": "change_failure_rate_grade",
        "definition": "Share of deployments that failed or to which a production incident is attributed.",
        "thresholds": "Elite ≤ 5 %, high ≤ 10 %, medium ≤ 15 %, low above (failing / all deployments of 12 weeks).",
        "trailing": "change_failure_rate", "trailing_label": "over 12 weeks",
    },
    "median_time_to_restore_hours": {
        "title": "Time to restore service", "unit": "hours", "better": "down", "grade": "time_to_restore_grade",
        "definition": "From an incident's start (issue opened, or the reverted change merged) to its end; the median.",
        "thresholds": "Elite < 1 hour, high < 1 day, medium < 1 week, low ≥ 1 week (median over 12 weeks).",
        "trailing": "median_time_to_restore_hours", "trailing_label": "median over 12 weeks",
    },
    "review_coverage": {
        "title": "Review coverage", "unit": "ratio", "better": "up", "grade": None,
        "definition": "Share of merged pull requests by people that someone other than the author reviewed.",
        "thresholds": "No DORA grade; weighs 15 % in the performance score.",
        "trailing": "review_coverage", "trailing_label": "over 12 weeks",
    },
    "median_pr_size": {
        "title": "Pull-request size", "unit": "lines", "better": "down", "grade": None,
        "definition": "Lines added plus deleted per merged pull request by people; the median.",
        "thresholds": "No grade; smaller changes review and ship faster.",
        "trailing": "median_pr_size", "trailing_label": "median over 12 weeks",
    },
    "performance_score": {
        "title": "Performance score", "unit": "score", "better": "up", "grade": None,
        "definition": "0–100: the four DORA grades and review coverage over 12 weeks, weighted "
                      "25/25/20/15/15 (deployment frequency, lead time, change failure rate, restore, review).",
        "thresholds": "Elite on every key scores 100.",
        "trailing": None, "trailing_label": "",
    },
}
STAGE_DEFINITIONS = {
    "coding": "first commit → pull request opened",
    "pickup": "ready for review → first review",
    "review": "first review → merged",
    "deploy": "merged → shipped to production",
}
GRADE_ORDER = {"elite": 4, "high": 3, "medium": 2, "low": 1}


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
    cur.execute(
        "select (select max(logged_in_at) from app.user_logins where login = %(login)s),"
        " (select max(generated_at) from app.summaries where login = %(login)s),"
        " (select coalesce(max(id), 0) from app.summaries),"
        " f.failed_at, f.retry_at, coalesce(f.attempts, 0), f.reason"
        " from (select 1) as one left join app.refresh_failures f on f.login = %(login)s",
        {"login": login},
    )
    return UserState(*cur.fetchone())


def refresh_status(state: UserState, ttl_minutes: float, now: dt.datetime | None = None) -> dict:
    """Whether the user's data is current: "fresh", "refreshing" (a login the sensor will
    refresh, as it decides: older than the TTL), or "never" (no data yet, none asked for)."""
    now = now or dt.datetime.now(dt.timezone.utc)
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
    return sorted(access.scope_repositories(cur, login), key=str.lower)


def scope_repository(cur, login: str, full_name: str) -> str | None:
    """The repository as stored, when it is in the user's scope; None otherwise (a 404)."""
    cur.execute(
        "select repo_full_name from app.user_scope where login = %s and lower(repo_full_name) = lower(%s)",
        (login, full_name),
    )
    row = cur.fetchone()
    return row[0] if row else None


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
    view["metrics"] = [_metric_card(key, data) for key in METRICS]
    view["cycle"] = [
        {"stage": stage, "hours": _float(data.cycle_medians_12w.get(stage)), "definition": STAGE_DEFINITIONS[stage],
         "display": fmt(data.cycle_medians_12w.get(stage), "hours")}
        for stage in CYCLE_STAGES
    ]
    view["forecasts"] = _forecasts(data)
    view["anomalies"] = [_explain_anomaly(a, weeks) for a in data.anomalies if a.scope == view["scope"]]
    view["other_anomalies"] = len([a for a in data.anomalies if a.scope != view["scope"]])
    view["charts"] = {key: _series(key, data, view["anomalies"], view["forecasts"]) for key in METRICS}
    return view


def _metric_card(key: str, data: SummaryInput) -> dict:
    spec = METRICS[key]
    weeks = data.weeks
    latest = _float(weeks[-1].get(key)) if weeks else None
    previous = _float(weeks[-2].get(key)) if len(weeks) >= 2 else None
    trailing = _float(data.trailing.get(spec["trailing"])) if spec["trailing"] else None
    grade = data.grades.get(spec["grade"]) if spec["grade"] else None
    previous_grade = data.previous_grades.get(spec["grade"]) if spec["grade"] else None
    unit = "count" if spec["unit"] == "lines" else spec["unit"]
    return {
        "key": key,
        **{k: spec[k] for k in ("title", "definition", "thresholds", "better", "trailing_label")},
        "unit": spec["unit"],
        "latest": latest,
        "latest_display": fmt(latest, unit),
        "trailing": trailing,
        "trailing_display": fmt(trailing, unit) if spec["trailing"] else None,
        "grade": grade,
        "previous_grade": previous_grade if previous_grade != grade else None,
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
    """Next week's forecasts, each with the spread a reader should expect: the median change
    from one week to the next over the trailing 12 weeks (how far a naive forecast is off)."""
    out = []
    for metric, key in (("median_lead_time_hours", "predicted_lead_time_hours"),
                        ("performance_score", "predicted_performance_score")):
        value = _float(data.predictions.get(key))
        if value is None:
            continue
        series = [_float(row.get(metric)) for row in data.weeks[-(WINDOW_WEEKS + 1):]]
        steps = [abs(b - a) for a, b in zip(series, series[1:]) if a is not None and b is not None]
        spread = statistics.median(steps) if steps else None
        unit = METRICS[metric]["unit"]
        out.append({
            "metric": metric, "title": METRICS[metric]["title"], "value": value, "spread": spread,
            "display": fmt(value, unit),
            "range": f"{fmt(max(value - spread, 0), unit)} – {fmt(value + spread, unit)}" if spread else None,
        })
    return out


def _explain_anomaly(anomaly, weeks: list[dict]) -> dict:
    """A sentence saying what was unusual in the week and by how much, against the median of the
    (up to) 12 weeks before it."""
    metric = anomaly.metric
    spec = METRICS.get(metric, {"title": metric.replace("_", " "), "unit": "count"})
    unit = "count" if spec["unit"] == "lines" else spec["unit"]
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
    score = _float(anomaly.anomaly_score)
    return {
        "week_start": anomaly.week_start, "metric": metric, "title": spec["title"], "observed": observed,
        "typical": typical, "score": score,
        "sentence": f"{spec['title']} in the week of {anomaly.week_start}: {how} "
                    f"(median of the {len(before)} weeks before).",
        "score_text": (f"detector score {score:.2f}: 1.00 is the flagging threshold, higher is more unusual"
                       if score is not None else ""),
    }


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
        if forecast["metric"] == key and x:
            next_week = (dt.date.fromisoformat(x[-1]) + dt.timedelta(days=7)).isoformat()
            error = {"type": "data", "array": [forecast["spread"] * scale], "visible": True} if forecast["spread"] else None
            traces.append({"type": "scatter", "mode": "markers", "name": "forecast, next week", "x": [next_week],
                           "y": [forecast["value"] * scale], "error_y": error,
                           "marker": {"color": "#6a3d9a", "size": 10, "symbol": "diamond"}})
    unit_label = {"ratio": "%", "hours": "hours", "lines": "lines", "score": "0–100", "count": "per week"}[spec["unit"]]
    return {
        "data": traces,
        "layout": {"height": 240, "margin": {"l": 48, "r": 12, "t": 8, "b": 36}, "showlegend": len(traces) > 1,
                   "legend": {"orientation": "h", "y": -0.25}, "yaxis": {"title": {"text": unit_label}, "rangemode": "tozero"},
                   "xaxis": {"type": "date"}},
    }


# --- the rows behind a repository's numbers ------------------------------------------------------


def rows_behind(cur, repository: str, latest_week: str | None) -> dict:
    """The pull requests shipped in the latest week (its lead time) and the failing deployments
    of the trailing 12 weeks with the incidents attributed to them (its change failure rate)."""
    if latest_week is None:
        return {"shipped": [], "failures": []}
    week = dt.date.fromisoformat(latest_week)
    week_start = dt.datetime.combine(week, dt.time(), dt.timezone.utc)
    cur.execute(
        "select number, title, author_login, lead_time_hours, coding_hours, pickup_hours, review_hours,"
        " deploy_hours, pr_size, shipped_at from marts.fct_pull_requests"
        " where repo_full_name = %s and not is_bot and shipped_at >= %s and shipped_at < %s"
        " order by lead_time_hours desc nulls last, number limit 50",
        (repository, week_start, week_start + dt.timedelta(days=7)),
    )
    names = [d[0] for d in cur.description]
    shipped = [dict(zip(names, row)) for row in cur.fetchall()]
    cur.execute(
        "select d.deployment_id, d.source, d.deployed_at, d.is_failed, d.incident_count,"
        " coalesce(json_agg(json_build_object('kind', i.kind, 'started_at', i.started_at,"
        "   'restore_hours', i.restore_hours)) filter (where i.incident_id is not null), '[]')"
        " from marts.fct_deployments d left join marts.fct_incidents i on i.deployment_id = d.deployment_id"
        " where d.repo_full_name = %s and d.fails_change and d.week_start > %s"
        " group by 1, 2, 3, 4, 5 order by d.deployed_at desc limit 50",
        (repository, week - dt.timedelta(weeks=WINDOW_WEEKS)),
    )
    failures = [
        {"deployment_id": dep, "source": source, "deployed_at": at, "is_failed": failed, "incident_count": count,
         "incidents": incidents}
        for dep, source, at, failed, count, incidents in cur.fetchall()
    ]
    return {"shipped": shipped, "failures": failures}


# --- the team page ------------------------------------------------------------------------------


def team_rows(cur, login: str) -> list[dict]:
    """The user's repositories side by side: the latest week's grades and 12-week figures."""
    cur.execute("select to_regclass('marts.fct_dora_weekly')")
    if cur.fetchone()[0] is None:
        return []
    cur.execute(
        """with scoped as (
               select w.*, row_number() over (partition by w.scope order by w.week_start desc) as age
               from marts.fct_dora_weekly w
               join app.user_scope s on s.repo_full_name = w.scope and s.login = %s
               where w.scope_type = 'repository'
           )
           select scope,
                  max(week_start) filter (where age = 1) as latest_week,
                  sum(deployments) filter (where age <= 12) as deployments_12w,
                  sum(failed_changes) filter (where age <= 12)::numeric
                    / nullif(sum(deployments) filter (where age <= 12), 0) as change_failure_rate_12w,
                  max(median_lead_time_hours) filter (where age = 1) as median_lead_time_hours,
                  max(deployment_frequency_grade) filter (where age = 1) as deployment_frequency_grade,
                  max(lead_time_grade) filter (where age = 1) as lead_time_grade,
                  max(change_failure_rate_grade) filter (where age = 1) as change_failure_rate_grade,
                  max(time_to_restore_grade) filter (where age = 1) as time_to_restore_grade,
                  max(review_coverage_12w) filter (where age = 1) as review_coverage_12w,
                  max(median_pr_size) filter (where age = 1) as median_pr_size,
                  max(performance_score) filter (where age = 1) as performance_score
           from scoped where age <= 12 group by scope order by lower(scope)""",
        (login,),
    )
    names = [d[0] for d in cur.description]
    rows = []
    for row in cur.fetchall():
        item = {n: (_float(v) if isinstance(v, Decimal) else v) for n, v in zip(names, row)}
        item["latest_week"] = item["latest_week"].isoformat() if item["latest_week"] else None
        rows.append(item)
    return rows


def latest_summary(cur, login: str) -> dict | None:
    cur.execute(
        "select text, provider, generated_at, grounded from app.summaries where login = %s"
        " order by generated_at desc limit 1",
        (login,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    return {"text": row[0], "provider": row[1], "generated_at": row[2].isoformat(), "grounded": row[3]}
