"""The aggregates a user's summary is written from, and the facts they turn into.

`SummaryInput` is a plain dataclass so the router, the rule-based writer and the report can be
tested without a database; `load_summary_input` builds it from the marts and `ml.insights`.
Every number a summary may mention is a `Fact`: the prompt shows the facts, the rule-based
writer quotes them and the grounding check accepts only numbers that match them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from decimal import Decimal
from typing import Any

from ghmetrics_dagster.github import access
from ghmetrics_dagster.metrics import contracts
from ghmetrics_dagster.warehouse import app_data

WINDOW_WEEKS = 12  # the marts' trailing window (fct_trailing_12w, the *_12w columns), as labels name it
MAX_REPOSITORIES = 10  # the busiest ones; keeps the prompt short for users with many repositories

# DORA's 2023 grades: read for the report's legacy line only (one release), never summarised.
LEGACY_GRADE_FIELDS = contracts.LEGACY_GRADE_COLUMNS
BAND_FIELDS = contracts.BAND_COLUMNS

# Weekly columns of marts.fct_dora_weekly that the report charts and the prompt may cite (the
# latest week's row also carries DORA's 12-week values, their scores and the benchmark deltas).
WEEKLY_FIELDS = contracts.FEATURE_COLUMNS

CYCLE_STAGES = ("coding", "pickup", "review", "deploy")

# SummaryInput.trailing's keys: marts.fct_trailing_12w holds each as <key>_12w (dbt computes
# every figure), and the cycle stages' medians as median_<stage>_hours_12w.
TRAILING_FIELDS = (
    "deployments", "median_weekly_deployment_days", "change_failure_rate", "incidents", "merged_prs",
    "review_coverage", "median_lead_time_hours", "median_pr_size", "median_time_to_restore_hours",
)
TRAILING_COLUMNS = tuple(f"{key}_12w" for key in TRAILING_FIELDS) + tuple(
    f"median_{stage}_hours_12w" for stage in CYCLE_STAGES)

# DORA's five metrics as people read them: (benchmark metric, 12-week column, score column, name).
FIVE_METRICS = tuple(
    (metric, value, score, name)
    for (metric, value, score, _), name in zip(contracts.FIVE_METRICS, (
        "lead time for changes", "deployment frequency", "failed deployment recovery time", "change fail rate",
        "rework rate",
    ), strict=False)
)
# docs/ai.md: the figures of fct_ai_cohorts_weekly compared between AI-assisted pull requests and the
# others, each over the trailing 12 weeks (<field>_12w): (field, label, unit).
AI_COHORTS = ("ai_assisted", "other")
AI_COHORT_NAMES = {"ai_assisted": "AI-assisted pull requests", "other": "other pull requests"}
AI_FIGURES = (
    ("median_lead_time_hours", "median lead time", "hours"),
    ("median_coding_hours", "median coding time", "hours"),
    ("median_pickup_hours", "median pickup time", "hours"),
    ("median_review_hours", "median review time", "hours"),
    ("median_deploy_hours", "median deploy time", "hours"),
    ("median_pr_size", "median pull request size (lines)", "count"),
    ("review_coverage", "review coverage", "ratio"),
    ("change_failure_rate", "change fail rate", "ratio"),
    ("rework_rate", "rework rate", "ratio"),
)
AI_COHORT_COLUMNS = ("merged_prs_12w", "is_too_small_12w") + tuple(f"{field}_12w" for field, _, _ in AI_FIGURES)
TEAM_NOT_PERSON = ("DORA's metrics describe a team's or a service's delivery, not a person: they pool the "
                   "repositories in a scope and say nothing about anyone's own performance.")


@dataclasses.dataclass
class RepositoryAggregate:
    name: str  # untrusted: comes from GitHub
    deployments_12w: float | None = None
    median_lead_time_hours: float | None = None
    overall_score: float | None = None  # the latest week's, 0..10


@dataclasses.dataclass
class Anomaly:
    """A flagged week, read on a stated scale: the driving metric's robust z-score against the
    scope's own earlier weeks, how rare such a week is, and the observed value beside the
    expected range (ml/anomaly.py)."""

    week_start: str
    metric: str  # untrusted enough to be treated as data
    anomaly_score: float | None = None  # >= 1 flags; for ordering
    scope: str | None = None  # the login (user scope) or the repository it was found in
    z: float | None = None
    weeks_per_event: float | None = None
    observed: float | None = None
    expected_low: float | None = None
    expected_high: float | None = None


# The unit an anomaly's observed value and expected range are in, by metric.
def anomaly_unit(metric: str) -> str:
    if metric.endswith("_hours"):
        return "hours"
    if metric in ("change_failure_rate", "review_coverage", "rework_rate"):
        return "ratio"
    return "count"


@dataclasses.dataclass(frozen=True)
class ForecastTarget:
    """A target of the performance model, as each surface names and reads it."""

    short: str  # key of SummaryInput.forecast_status; ml.insights' <short>_forecast_status
    metric: str  # the weekly column it forecasts
    column: str  # ml.insights' forecast column (with _low / _high for its interval)
    name: str  # as a sentence says it
    unit: str  # Fact unit of the forecast


FORECAST_TARGETS = (
    ForecastTarget("lead_time", "median_lead_time_hours", "predicted_lead_time_hours", "lead time", "hours"),
    ForecastTarget("overall_score", "overall_score", "predicted_overall_score", "overall score", "score10"),
)
# What a forecast that is not shown says instead.
FORECAST_WITHHELD = {
    "no_better_than_naive": "no better than last week's value",
    "behind_naive_live": "withdrawn: lately worse than last week's value, the model is being retrained",
}


@dataclasses.dataclass
class SummaryInput:
    """Aggregates for one user; values are plain floats/ints/str (None when unknown).

    `latest` is the latest week's row of fct_dora_weekly: the week's values, and DORA's five
    metrics over the 12 weeks ending with it with their Quick Check scores (docs/dora.md).
    `benchmarks` holds DORA's 2025 benchmark means of the chosen segment on the score scale,
    by metric (overall, throughput, stability, lead_time, ...)."""

    login: str
    week_start: str | None = None  # the latest week, ISO date
    latest: dict[str, float | None] = dataclasses.field(default_factory=dict)
    trailing: dict[str, float | None] = dataclasses.field(default_factory=dict)  # 12-week values
    bands: dict[str, int | None] = dataclasses.field(default_factory=dict)  # Quick Check bands, latest week
    previous_bands: dict[str, int | None] = dataclasses.field(default_factory=dict)  # the week before
    benchmarks: dict[str, float | None] = dataclasses.field(default_factory=dict)
    benchmark_segment: str | None = None  # e.g. "All industries" (seed data, treated as a name)
    legacy_grades: dict[str, str | None] = dataclasses.field(default_factory=dict)  # DORA 2023, report only
    cycle_medians_12w: dict[str, float | None] = dataclasses.field(default_factory=dict)  # hours
    repositories: list[RepositoryAggregate] = dataclasses.field(default_factory=list)
    anomalies: list[Anomaly] = dataclasses.field(default_factory=list)
    predictions: dict[str, float | None] = dataclasses.field(default_factory=dict)  # with *_low/_high
    forecast_status: dict[str, str | None] = dataclasses.field(default_factory=dict)  # lead_time, overall_score
    # marts.fct_bottlenecks' latest row: the stage that takes most of the time to ship.
    bottleneck: dict[str, Any] = dataclasses.field(default_factory=dict)
    weeks: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # for the report only
    # marts.fct_ai_cohorts_weekly's latest week, by cohort (AI_COHORTS): merged_prs, is_too_small and
    # the AI_FIGURES, each over the trailing 12 weeks; empty before the marts have it.
    ai_cohorts: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # marts.fct_ai_adoption's row: adoption_week, adoption_week_share, window_weeks and the figures
    # of the windows before and after (<figure>_before, <figure>_after).
    ai_adoption: dict[str, Any] = dataclasses.field(default_factory=dict)
    # The adoption curve (report and dashboard only): per week of `weeks`, merged_prs and
    # ai_assisted_prs; and Copilot's weekly active users per organisation of the scope.
    ai_weeks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    copilot_weeks: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # org, week_start, weekly_active_users
    scope_note: str | None = None  # which token's visibility made the scope (report only)

    @property
    def has_data(self) -> bool:
        return self.week_start is not None

    @property
    def band_changes(self) -> dict[str, tuple[int, int]]:
        """Quick Check bands that moved since the week before: {band column: (before, now)}."""
        changes = {}
        for field in BAND_FIELDS:
            before, now = self.previous_bands.get(field), self.bands.get(field)
            if before is not None and now is not None and int(before) != int(now):
                changes[field] = (int(before), int(now))
        return changes

    @property
    def ai_comparable(self) -> bool:
        """Both cohorts are large enough over the trailing 12 weeks to compare (docs/ai.md)."""
        return all(cohort in self.ai_cohorts and self.ai_cohorts[cohort].get("is_too_small") is False
                   for cohort in AI_COHORTS)

    @property
    def ai_cohort_groups(self) -> dict[str, dict[str, Any]]:
        """Each cohort's figures (AI_COHORTS order); a cohort without a row counts 0 and is too small."""
        return {cohort: self.ai_cohorts.get(cohort, {"merged_prs": 0, "is_too_small": True}) for cohort in AI_COHORTS}

    @property
    def ai_adoption_windows(self) -> dict[str, dict[str, Any]]:
        """fct_ai_adoption's figures of the window before the adoption week and of the one from it
        on, keyed "before" and "after", without their suffix; empty without an adoption week."""
        if not self.ai_adoption.get("adoption_week"):
            return {}
        return {period: {name.removesuffix(f"_{period}"): value for name, value in self.ai_adoption.items()
                         if name.endswith(f"_{period}")}
                for period in ("before", "after")}

    @property
    def needs_strong_model(self) -> bool:
        """Anomalies or a Quick Check band change deserve the stronger (dearer) model tier."""
        return bool(self.anomalies) or bool(self.band_changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SummaryInput:
        data = dict(data)
        data["repositories"] = [RepositoryAggregate(**r) for r in data.get("repositories", [])]
        data["anomalies"] = [Anomaly(**a) for a in data.get("anomalies", [])]
        return cls(**data)


# ---------------------------------------------------------------------------------------------
# Facts: the numbers a summary may use, with units and one canonical display form.


@dataclasses.dataclass(frozen=True)
class Fact:
    key: str
    label: str
    value: float
    unit: str  # "count", "hours", "ratio", "score", "percent", "weeks"
    subject: str | None = None  # an untrusted name (repository, metric) the fact is about

    @property
    def display(self) -> str:
        return format_value(self.value, self.unit)


def format_value(value: float, unit: str) -> str:
    if unit == "hours":
        return f"{_round(value, 1)} h"
    if unit == "ratio":
        return f"{_round(value * 100, 1)}%"
    if unit == "percent":
        return f"{_round(value, 1)}%"
    if unit == "weeks":
        return f"{_round(value, 0)} weeks"
    if unit == "score10":  # Quick Check scores and their benchmark: 0..10, one decimal
        return _round(value, 1)
    if unit == "score":  # anomaly scores: the flagging threshold is 1.00
        return f"{_round(value, 2 if abs(value) < 10 else 1)}"
    if unit == "z":  # robust z-scores: one decimal, signed
        return _round(value, 1)
    return f"{_round(value, 1)}"


def _round(value: float, digits: int) -> str:
    rounded = round(float(value), digits)
    if digits == 0 or rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.{digits}f}"


_LABELS = {
    "deployments": ("deployments", "count"),
    "deployment_days": ("deployment days", "count"),
    "median_lead_time_hours": ("median lead time", "hours"),
    "change_failure_rate": ("change fail rate", "ratio"),
    "incidents": ("incidents", "count"),
    "median_time_to_restore_hours": ("median incident time to restore", "hours"),
    "merged_prs": ("merged pull requests", "count"),
    "review_coverage": ("review coverage", "ratio"),
    "median_pr_size": ("median pull request size (lines)", "count"),
}

_TRAILING_LABELS = {
    "deployments": ("deployments", "count"),
    "median_weekly_deployment_days": ("median deployment days per week", "count"),
    "median_lead_time_hours": ("median lead time", "hours"),
    "change_failure_rate": ("change fail rate", "ratio"),
    "incidents": ("incidents", "count"),
    "median_time_to_restore_hours": ("median incident time to restore", "hours"),
    "merged_prs": ("merged pull requests", "count"),
    "review_coverage": ("review coverage", "ratio"),
    "median_pr_size": ("median pull request size (lines)", "count"),
}

# The latest row's DORA figures over the trailing 12 weeks (docs/dora.md), headline first.
_HEADLINE_LABELS = {
    "overall": "overall score",
    "throughput": "throughput score",
    "stability": "stability score",
}
_FIVE_VALUE_LABELS = {
    "lead_time_hours_12w": ("lead time for changes, median", "hours"),
    "deployment_days_per_week_12w": ("deployment frequency, deployment days per week", "count"),
    "deployments_per_deployment_day_12w": ("deployment frequency, deployments per deployment day", "count"),
    "recovery_hours_12w": ("failed deployment recovery time, median", "hours"),
    "change_failure_rate_12w": ("change fail rate", "ratio"),
    "rework_rate_12w": ("rework rate", "ratio"),
}
_FIVE_SCORE_LABELS = {
    "lead_time": "lead time score",
    "deployment_frequency": "deployment frequency score",
    "recovery": "failed deployment recovery time score",
    "change_fail": "change fail rate score",
    "rework": "rework rate score",
}


def _usable(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def dora_facts(data: SummaryInput) -> list[Fact]:
    """The headline scores with the benchmark, then DORA's five metrics with their scores."""
    out: list[Fact] = []
    window = f"last {WINDOW_WEEKS} weeks"
    segment = data.benchmark_segment

    def add(key: str, label: str, value, unit: str, subject: str | None = None) -> None:
        if _usable(value):
            out.append(Fact(key, label, float(value), unit, subject=subject))

    for metric, score, delta in contracts.HEADLINE_SCORES:
        label = _HEADLINE_LABELS[metric]
        add(f"dora.{score}", f"{label}, {window}", data.latest.get(score), "score10")
        add(f"benchmark.{metric}", f"benchmark mean, {label}", data.benchmarks.get(metric), "score10", segment)
        add(f"dora.{delta}", f"{label} minus the benchmark mean", data.latest.get(delta), "score10")
    for metric, value, score, _ in FIVE_METRICS:
        columns = [value] + (["deployments_per_deployment_day_12w"] if metric == "deployment_frequency" else [])
        for column in columns:
            label, unit = _FIVE_VALUE_LABELS[column]
            add(f"dora.{column}", f"{label}, {window}", data.latest.get(column), unit)
        add(f"dora.{score}", f"{_FIVE_SCORE_LABELS[metric]}, {window}", data.latest.get(score), "score10")
        add(f"benchmark.{metric}", f"benchmark mean, {_FIVE_SCORE_LABELS[metric]}", data.benchmarks.get(metric),
            "score10", segment)
    return out


def facts(data: SummaryInput) -> list[Fact]:
    """The numbers of `data` in a fixed order (the prompt and the rule-based writer share it)."""
    out: list[Fact] = [Fact("window_weeks", "trailing window", WINDOW_WEEKS, "weeks")]
    out += dora_facts(data)
    for key, (label, unit) in _LABELS.items():
        value = data.latest.get(key)
        if _usable(value):
            out.append(Fact(f"latest.{key}", f"{label}, latest week", float(value), unit))
    for key, (label, unit) in _TRAILING_LABELS.items():
        value = data.trailing.get(key)
        if _usable(value):
            out.append(Fact(f"trailing.{key}", f"{label}, last {WINDOW_WEEKS} weeks", float(value), unit))
    for stage in CYCLE_STAGES:
        value = data.cycle_medians_12w.get(stage)
        if _usable(value):
            out.append(Fact(f"cycle.{stage}", f"median {stage} time, last {WINDOW_WEEKS} weeks", float(value), "hours"))
    for target in FORECAST_TARGETS:
        key, label, unit = target.column, f"forecast {target.name}, next week", target.unit
        value = data.predictions.get(key)
        if _usable(value):
            out.append(Fact(f"prediction.{key}", label, float(value), unit))
            for bound, word in (("low", "low end"), ("high", "high end")):
                edge = data.predictions.get(f"{key}_{bound}")
                if _usable(edge):
                    out.append(Fact(f"prediction.{key}_{bound}", f"{label}, {word} of its interval", float(edge), unit))
    if _usable(data.predictions.get("interval_level")) and any(k.endswith("_low") for k in data.predictions):
        out.append(Fact("prediction.interval_level", "forecast interval coverage (nominal)",
                        float(data.predictions["interval_level"]), "ratio"))
    for index, anomaly in enumerate(data.anomalies):
        when = f"week starting {anomaly.week_start}"
        if _usable(anomaly.z):
            out.append(Fact(f"anomaly.{index}.z", f"anomaly z-score, {when}", float(anomaly.z), "z",
                            subject=anomaly.metric))
        unit = anomaly_unit(anomaly.metric)
        for field, label in (("observed", "observed value"), ("expected_low", "expected range, low end"),
                             ("expected_high", "expected range, high end")):
            value = getattr(anomaly, field)
            if _usable(value):
                out.append(Fact(f"anomaly.{index}.{field}", f"anomalous metric's {label}, {when}", float(value),
                                unit, subject=anomaly.metric))
    stage = data.bottleneck.get("dominant_stage")
    if stage in CYCLE_STAGES:
        for field, label in (("dominant_share_12w", f"share of the time to ship, last {WINDOW_WEEKS} weeks"),
                             ("dominant_share_earlier_6w", "share, first 6 of those weeks"),
                             ("dominant_share_recent_6w", "share, last 6 of those weeks")):
            value = data.bottleneck.get(field)
            if _usable(value):
                out.append(Fact(f"bottleneck.{stage}.{field}", f"{stage} stage {label}", float(value), "ratio"))
    out += ai_facts(data)
    for index, repo in enumerate(data.repositories):
        for key, label, unit in (
            ("deployments_12w", f"deployments, last {WINDOW_WEEKS} weeks", "count"),
            ("median_lead_time_hours", "median lead time, latest week", "hours"),
            ("overall_score", f"overall score, last {WINDOW_WEEKS} weeks", "score10"),
        ):
            value = getattr(repo, key)
            if _usable(value):
                out.append(Fact(f"repo.{index}.{key}", label, float(value), unit, subject=repo.name))
    return out


def ai_facts(data: SummaryInput) -> list[Fact]:
    """The AI comparison, only when both cohorts are large enough over the trailing 12 weeks, and
    the adoption week's share when the scope has one."""
    out: list[Fact] = []
    window = f"last {WINDOW_WEEKS} weeks"
    if data.ai_comparable:
        cohorts = {cohort: data.ai_cohorts[cohort] for cohort in AI_COHORTS}
        total = sum(float(c["merged_prs"]) for c in cohorts.values())
        out.append(Fact("ai.both.merged_prs", f"merged pull requests by people and AI agents, both cohorts, {window}", total, "count"))
        for cohort, figures in cohorts.items():
            name = AI_COHORT_NAMES[cohort]
            out.append(Fact(f"ai.{cohort}.merged_prs", f"{name}, merged, {window}", float(figures["merged_prs"]),
                            "count"))
            for field, label, unit in AI_FIGURES:
                if _usable(figures.get(field)):
                    out.append(Fact(f"ai.{cohort}.{field}", f"{name}, {label}, {window}", float(figures[field]), unit))
    week, share = data.ai_adoption.get("adoption_week"), data.ai_adoption.get("adoption_week_share")
    if week and _usable(share):
        out.append(Fact("ai.adoption_week_share",
                        f"AI-assisted share of the merged pull requests in the adoption week (starting {week})",
                        float(share), "ratio"))
    return out


def input_dates(data: SummaryInput) -> set[str]:
    dates = {a.week_start for a in data.anomalies}
    if data.week_start:
        dates.add(data.week_start)
    if data.ai_adoption.get("adoption_week"):
        dates.add(data.ai_adoption["adoption_week"])
    return dates


# ---------------------------------------------------------------------------------------------
# Loading from Postgres.


class AggregatesError(RuntimeError):
    """The marts the summary needs are missing; the message says what to run."""


def _plain(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def weekly_columns(cur) -> set[str]:
    """The columns marts.fct_dora_weekly has. Between an upgrade and the marts' next build it
    lacks the newer ones, which readers select as null (`select_or_null`) rather than failing
    every page and summary."""
    cur.execute(
        "select column_name from information_schema.columns"
        " where table_schema = 'marts' and table_name = 'fct_dora_weekly'"
    )
    return {row[0] for row in cur.fetchall()}


def select_or_null(present: set[str], columns, wrap: str = "{}") -> str:
    """A select list of `columns`, each through `wrap` when `present`, else null."""
    return ", ".join(f"{wrap.format(c)} as {c}" if c in present else f"null as {c}" for c in columns)


def load_summary_input(conn, login: str, history_weeks: int = 26, repository: str | None = None) -> SummaryInput:
    """Reads a user's aggregates from marts.fct_dora_weekly, marts.fct_trailing_12w and ml.insights.

    With `repository` (one of the user's scope: the caller checks), the same figures for that
    repository alone: the dashboard's repository page shows what the summary would say of it."""
    scope_type, scope = ("repository", repository) if repository else ("user", login)
    with conn.cursor() as cur:
        cur.execute(
            "select to_regclass('marts.fct_dora_weekly'), to_regclass('marts.fct_trailing_12w'),"
            " to_regclass('ml.insights'), to_regclass('marts.dora_benchmarks'), to_regclass('marts.fct_bottlenecks'),"
            " to_regclass('marts.fct_ai_cohorts_weekly'), to_regclass('marts.fct_ai_adoption'),"
            " to_regclass('marts.fct_copilot_org_weekly')"
        )
        dora, trailing, insights, benchmarks, bottlenecks, cohorts, adoption, copilot = cur.fetchone()
        if dora is None:
            raise AggregatesError(
                "marts.fct_dora_weekly does not exist: materialise the dbt assets (marts) before the summaries"
            )
        present = weekly_columns(cur)
        columns = select_or_null(present, ("week_start",) + WEEKLY_FIELDS + LEGACY_GRADE_FIELDS)
        cur.execute(
            f"select {columns} from marts.fct_dora_weekly where scope_type = %s and scope = %s"
            " order by week_start desc limit %s",
            (scope_type, scope, history_weeks),
        )
        names = [d[0] for d in cur.description]
        rows = [{n: _plain(v) for n, v in zip(names, row, strict=False)} for row in cur.fetchall()]
        rows.reverse()
        data = SummaryInput(login=login, weeks=rows, scope_note=access.scope_note(cur, login))
        if benchmarks is not None:
            cur.execute("select metric, mean_score, segment_label from marts.dora_benchmarks")
            for metric, mean, label in cur.fetchall():
                data.benchmarks[metric] = _plain(mean)
                if metric == "overall" or data.benchmark_segment is None:
                    data.benchmark_segment = label
        if not rows:
            return data

        latest = rows[-1]
        window_start = rows[-WINDOW_WEEKS:][0]["week_start"]  # anomalies are shown from here on
        data.week_start = latest["week_start"]
        data.latest = {k: latest[k] for k in WEEKLY_FIELDS}
        data.legacy_grades = {k: latest[k] for k in LEGACY_GRADE_FIELDS}
        data.bands = {k: latest[k] for k in BAND_FIELDS}
        if len(rows) >= 2:
            data.previous_bands = {k: rows[-2][k] for k in BAND_FIELDS}

        # Missing between an upgrade and the marts' next build: no trailing figures until then.
        if trailing is not None:
            cur.execute(
                f"select {', '.join(TRAILING_COLUMNS)} from marts.fct_trailing_12w"
                " where scope_type = %s and scope = %s",
                (scope_type, scope),
            )
            row = cur.fetchone()
            if row:
                figures = {c: _plain(v) for c, v in zip(TRAILING_COLUMNS, row, strict=False)}
                data.trailing = {key: figures[f"{key}_12w"] for key in TRAILING_FIELDS}
                data.cycle_medians_12w = {stage: figures[f"median_{stage}_hours_12w"] for stage in CYCLE_STAGES}
            # Registered and readable by the user's own token only (app.user_scope).
            repos = [] if repository else app_data.scope_repositories(cur, login)
            if repos:
                latest_overall = select_or_null(present, ["overall_score"], wrap="latest.{}")
                cur.execute(
                    "select window_figures.scope, window_figures.deployments_12w, latest.median_lead_time_hours,"
                    f" {latest_overall}"
                    " from marts.fct_trailing_12w as window_figures"
                    " join marts.fct_dora_weekly as latest using (scope_type, scope, week_start)"
                    " where window_figures.scope_type = 'repository' and window_figures.scope = any(%s)"
                    " order by window_figures.deployments_12w desc nulls last, window_figures.scope limit %s",
                    (repos, MAX_REPOSITORIES),
                )
                data.repositories = [
                    RepositoryAggregate(name, _plain(dep), _plain(lead), _plain(score))
                    for name, dep, lead, score in cur.fetchall()
                ]

        if insights is not None:
            only_scope = " and scope_type = 'repository' and scope = %(scope)s" if repository else ""
            cur.execute(
                "select week_start, anomaly_metric, anomaly_score, scope, anomaly_z, anomaly_weeks_per_event,"
                " anomaly_observed, anomaly_expected_low, anomaly_expected_high from ml.insights"
                " where login = %(login)s and is_anomaly and week_start >= %(start)s::date" + only_scope +
                " order by week_start desc, anomaly_score desc nulls last limit 5",
                {"login": login, "start": window_start, "scope": scope},
            )
            data.anomalies = [
                Anomaly(_plain(row[0]), row[1] or "unspecified", *(_plain(v) for v in row[2:]))
                for row in cur.fetchall()
            ]
            forecast_columns = [f"{t.column}{suffix}" for t in FORECAST_TARGETS for suffix in ("", "_low", "_high")]
            forecast_columns.append("interval_level")
            status_columns = [f"{t.short}_forecast_status" for t in FORECAST_TARGETS]
            cur.execute(
                f"select {', '.join(forecast_columns + status_columns)} from ml.insights"
                " where login = %s and scope_type = %s and scope = %s"
                " order by week_start desc limit 1",
                (login, scope_type, scope),
            )
            row = cur.fetchone()
            if row:
                data.predictions = {c: _plain(v) for c, v in zip(forecast_columns, row, strict=False)}
                data.forecast_status = {t.short: v for t, v in zip(FORECAST_TARGETS, row[len(forecast_columns):], strict=False)}
        if bottlenecks is not None:
            cur.execute(
                "select dominant_stage, dominant_share_12w, dominant_share_earlier_6w, dominant_share_recent_6w,"
                " dominant_share_change, prs_12w from marts.fct_bottlenecks"
                " where scope_type = %s and scope = %s order by week_start desc limit 1",
                (scope_type, scope),
            )
            row = cur.fetchone()
            if row:
                names = ("dominant_stage", "dominant_share_12w", "dominant_share_earlier_6w",
                         "dominant_share_recent_6w", "dominant_share_change", "prs_12w")
                data.bottleneck = {n: _plain(v) for n, v in zip(names, row, strict=False)}
        # Missing between an upgrade and the marts' next build, like the marts above.
        if cohorts is not None:
            _load_ai_cohorts(cur, data, scope_type, scope)
        if adoption is not None:
            # The adoption week and the figures of the windows before and after it.
            cur.execute("select * from marts.fct_ai_adoption where scope_type = %s and scope = %s", (scope_type, scope))
            row = cur.fetchone()
            if row:
                data.ai_adoption = {column.name: _plain(value) for column, value in zip(cur.description, row, strict=True)
                                    if column.name not in ("scope_type", "scope")}
        if copilot is not None:
            # Copilot reports are per organisation: those owning a repository of the scope.
            repos = [repository] if repository else app_data.scope_repositories(cur, login)
            orgs = sorted({name.split("/", 1)[0] for name in repos})
            cur.execute(
                "select org, week_start, weekly_active_users from marts.fct_copilot_org_weekly"
                " where org = any(%s) and week_start >= %s::date and week_start <= %s::date order by org, week_start",
                (orgs, rows[0]["week_start"], data.week_start),
            )
            data.copilot_weeks = [
                {"org": org, "week_start": _plain(week), "weekly_active_users": _plain(users)}
                for org, week, users in cur.fetchall()
            ]
    return data


def _load_ai_cohorts(cur, data: SummaryInput, scope_type: str, scope: str) -> None:
    """The adoption curve over the weeks of `data.weeks`, and the latest week's two cohorts over
    their trailing 12 weeks, from marts.fct_ai_cohorts_weekly."""
    cur.execute(
        f"select week_start, cohort, merged_prs, {', '.join(AI_COHORT_COLUMNS)} from marts.fct_ai_cohorts_weekly"
        " where scope_type = %s and scope = %s and week_start >= %s::date and week_start <= %s::date"
        " order by week_start, cohort",
        (scope_type, scope, data.weeks[0]["week_start"], data.week_start),
    )
    by_week: dict[str, dict[str, Any]] = {}
    for week, cohort, merged, *window in cur.fetchall():
        week = _plain(week)
        counts = by_week.setdefault(week, {"week_start": week, "merged_prs": 0, "ai_assisted_prs": 0})
        counts["merged_prs"] += int(merged)
        if cohort == "ai_assisted":
            counts["ai_assisted_prs"] += int(merged)
        if week == data.week_start and cohort in AI_COHORTS:
            figures = dict(zip(AI_COHORT_COLUMNS, (_plain(v) for v in window), strict=True))
            data.ai_cohorts[cohort] = {column.removesuffix("_12w"): value for column, value in figures.items()}
    data.ai_weeks = list(by_week.values())
