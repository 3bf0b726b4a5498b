"""The rule-based writer: a deterministic summary that quotes only the input's facts.

It needs no provider, so it is the router's last resort and the embedded default.
"""

from __future__ import annotations

from ghmetrics_dagster.llm.aggregates import CYCLE_STAGES, WINDOW_WEEKS, Fact, SummaryInput, facts
from ghmetrics_dagster.llm.prompts import sanitize_untrusted

PROVIDER = "rules"
MODEL = "rules-v1"


def _by_key(data: SummaryInput) -> dict[str, Fact]:
    return {f.key: f for f in facts(data)}


def _grade(data: SummaryInput, field: str) -> str:
    grade = data.grades.get(f"{field}_grade")
    if not grade:
        return ""
    before = data.previous_grades.get(f"{field}_grade")
    if before and before != grade:
        return f" (grade {grade}, was {before})"
    return f" (grade {grade})"


def write_summary(data: SummaryInput) -> str:
    login = sanitize_untrusted(data.login)
    if not data.has_data:
        return f"No activity has been recorded for {login} yet, so there is nothing to summarise."
    f = _by_key(data)
    window = f"{WINDOW_WEEKS} weeks"
    sentences = [f"Summary for {login}, week starting {data.week_start}."]

    parts = []
    if "latest.deployments" in f:
        parts.append(f"{f['latest.deployments'].display} deployments this week")
    if "trailing.deployments" in f:
        parts.append(f"{f['trailing.deployments'].display} over the last {window}")
    if parts:
        sentences.append("Deployments: " + ", ".join(parts) + _grade(data, "deployment_frequency") + ".")

    if "trailing.median_lead_time_hours" in f:
        sentences.append(
            f"Median lead time for changes over the last {window}: "
            f"{f['trailing.median_lead_time_hours'].display}{_grade(data, 'lead_time')}."
        )
    elif "latest.median_lead_time_hours" in f:
        sentences.append(
            f"Median lead time this week: {f['latest.median_lead_time_hours'].display}{_grade(data, 'lead_time')}."
        )

    if "trailing.change_failure_rate" in f:
        sentences.append(
            f"Change failure rate over the last {window}: "
            f"{f['trailing.change_failure_rate'].display}{_grade(data, 'change_failure_rate')}."
        )
    if "trailing.median_time_to_restore_hours" in f:  # the figure the grade is given on
        sentences.append(
            f"Median time to restore over the last {window}: "
            f"{f['trailing.median_time_to_restore_hours'].display}{_grade(data, 'time_to_restore')}."
        )
    elif "latest.median_time_to_restore_hours" in f:
        sentences.append(
            f"Median time to restore this week: "
            f"{f['latest.median_time_to_restore_hours'].display}{_grade(data, 'time_to_restore')}."
        )
    elif data.grades.get("time_to_restore_grade"):
        sentences.append(f"Time to restore{_grade(data, 'time_to_restore')}.")

    review = []
    if "latest.merged_prs" in f:
        review.append(f"{f['latest.merged_prs'].display} pull requests merged this week")
    if "trailing.review_coverage" in f:
        review.append(f"review coverage {f['trailing.review_coverage'].display} over the last {window}")
    if review:
        sentences.append(review[0][0].upper() + "; ".join(review)[1:] + ".")

    stages = [f"{stage} {f['cycle.' + stage].display}" for stage in CYCLE_STAGES if "cycle." + stage in f]
    if stages:
        sentences.append(f"Cycle time medians over the last {window}: " + ", ".join(stages) + ".")

    if "latest.performance_score" in f:
        sentences.append(f"Performance score: {f['latest.performance_score'].display}.")

    if data.anomalies:
        described = []
        for index, anomaly in enumerate(data.anomalies):
            score = f.get(f"anomaly.{index}.score")
            extra = f" (score {score.display})" if score else ""
            described.append(f"{sanitize_untrusted(anomaly.metric)} in the week starting {anomaly.week_start}{extra}")
        sentences.append("Watch: the anomaly model flagged " + "; ".join(described) + ".")

    forecast = []
    if "prediction.predicted_lead_time_hours" in f:
        forecast.append(f"lead time {f['prediction.predicted_lead_time_hours'].display}")
    if "prediction.predicted_performance_score" in f:
        forecast.append(f"performance score {f['prediction.predicted_performance_score'].display}")
    if forecast:
        sentences.append("Forecast for next week: " + ", ".join(forecast) + ".")
    return " ".join(sentences)
