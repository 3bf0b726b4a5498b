"""The rule-based writer: a deterministic summary that quotes only the input's facts.

It needs no provider, so it is the router's last resort and the embedded default. It leads with
the overall Quick Check score against DORA's 2025 benchmark, then DORA's five metrics over the
trailing 12 weeks with their scores (docs/dora.md), and says that they describe a team or a
service, not a person.
"""

from __future__ import annotations

from ghmetrics_dagster.metrics import contracts
from ghmetrics_dagster.summaries.aggregates import (
    AI_FIGURES,
    CYCLE_STAGES,
    FIVE_METRICS,
    FORECAST_TARGETS,
    FORECAST_WITHHELD,
    WINDOW_WEEKS,
    Fact,
    SummaryInput,
    facts,
)
from ghmetrics_dagster.summaries.prompts import sanitize_untrusted

PROVIDER = "rules"
MODEL = "rules-v3"  # v3: the AI comparison (docs/ai.md)


def _by_key(data: SummaryInput) -> dict[str, Fact]:
    return {f.key: f for f in facts(data)}


def _headline(data: SummaryInput, f: dict[str, Fact]) -> list[str]:
    """'Overall 6.4 / 10 (DORA 2025 benchmark, All industries: 4.3); throughput 7.3 (benchmark 6), ...'"""
    segment = sanitize_untrusted(data.benchmark_segment) if data.benchmark_segment else None
    parts = []
    for metric, score, _ in contracts.HEADLINE_SCORES:
        if f"dora.{score}" not in f:
            continue
        value = f[f"dora.{score}"].display
        benchmark = f.get(f"benchmark.{metric}")
        if metric == "overall":
            text = f"Overall {value} / 10"
            if benchmark:
                where = f", {segment}" if segment else ""
                text += f" ({contracts.BENCHMARK_EDITION} benchmark{where}: {benchmark.display})"
        else:
            text = f"{metric} {value}" + (f" (benchmark {benchmark.display})" if benchmark else "")
        parts.append(text)
    if not parts:
        return []
    return ["; ".join(parts) + "."]


def _five_metrics(f: dict[str, Fact]) -> list[str]:
    clauses = []
    for metric, value, score, name in FIVE_METRICS:
        if f"dora.{value}" in f:
            shown = f[f"dora.{value}"].display
            if metric == "deployment_frequency":
                shown += " deployment days per week"
                if "dora.deployments_per_deployment_day_12w" in f:
                    shown += f", {f['dora.deployments_per_deployment_day_12w'].display} deployments per deployment day"
        elif metric == "recovery":
            shown = "no failed deployment recovered"
        else:
            shown = "no deployments"
        rated = f" (score {f[f'dora.{score}'].display})" if f"dora.{score}" in f else ""
        clauses.append(f"{name} {shown}{rated}")
    if not any(f"dora.{score}" in f for _, _, score, _ in FIVE_METRICS):
        return []
    return [f"DORA's software delivery metrics over the last {WINDOW_WEEKS} weeks: " + "; ".join(clauses) + "."]


def write_summary(data: SummaryInput) -> str:
    login = sanitize_untrusted(data.login)
    if not data.has_data:
        return f"No activity has been recorded for {login} yet, so there is nothing to summarise."
    f = _by_key(data)
    window = f"{WINDOW_WEEKS} weeks"
    sentences = [f"Summary for {login}, week starting {data.week_start}."]
    sentences += _headline(data, f)
    sentences += _five_metrics(f)
    sentences.append(f"DORA's metrics describe a team's or a service's delivery, not a person: these figures pool "
                     f"the repositories in {login}'s scope and say nothing about anyone's own performance.")

    parts = []
    if "latest.deployments" in f:
        parts.append(_count(f["latest.deployments"].display, "deployment") + " this week")
    if "trailing.deployments" in f:
        parts.append(f"{f['trailing.deployments'].display} over the last {window}")
    if parts:
        sentences.append("Deployments: " + ", ".join(parts) + ".")

    # The incident's own time to restore (issue opened to closed): not DORA's recovery time.
    if "trailing.median_time_to_restore_hours" in f:
        sentences.append(
            f"Median incident time to restore over the last {window}: "
            f"{f['trailing.median_time_to_restore_hours'].display}."
        )

    review = []
    if "latest.merged_prs" in f:
        review.append(_count(f["latest.merged_prs"].display, "pull request") + " merged this week")
    if "trailing.review_coverage" in f:
        review.append(f"review coverage {f['trailing.review_coverage'].display} over the last {window}")
    if review:
        sentences.append(review[0][0].upper() + "; ".join(review)[1:] + ".")

    stages = [f"{stage} {f['cycle.' + stage].display}" for stage in CYCLE_STAGES if "cycle." + stage in f]
    if stages:
        sentences.append(f"Cycle time medians over the last {window}: " + ", ".join(stages) + ".")

    bottleneck = _bottleneck_sentence(data, f)
    if bottleneck:
        sentences.append(bottleneck)

    sentences += _ai_sentences(data, f)

    if data.anomalies:
        described = []
        for index, anomaly in enumerate(data.anomalies):
            reading = ""
            observed, low, high = (f.get(f"anomaly.{index}.{k}") for k in ("observed", "expected_low", "expected_high"))
            if observed and low and high:
                reading = f": {observed.display} against an expected {low.display} to {high.display}"
            z = f.get(f"anomaly.{index}.z")
            if z:
                reading += f" (z-score {z.display})"
            where = ""
            if anomaly.scope:
                where = (f" in {data.login}'s repositories pooled" if anomaly.scope == data.login
                         else f" in {sanitize_untrusted(anomaly.scope)}")
            described.append(f"{sanitize_untrusted(anomaly.metric)}{where} in the week starting "
                             f"{anomaly.week_start}{reading}")
        sentences.append("Watch: the anomaly model flagged " + ", and ".join(described) + ".")

    forecast, withheld = [], []
    for target in FORECAST_TARGETS:
        key, name = target.column, target.name
        value = f.get(f"prediction.{key}")
        if value is None:
            status = data.forecast_status.get(target.short)
            if status in FORECAST_WITHHELD:
                withheld.append(f"the {name} forecast is {FORECAST_WITHHELD[status]}")
            continue
        text = f"{name} {value.display}" + (" / 10" if target.unit == "score10" else "")
        low, high = f.get(f"prediction.{key}_low"), f.get(f"prediction.{key}_high")
        if low and high:
            level = f.get("prediction.interval_level")
            text += f", likely between {low.display} and {high.display}" + (
                f" ({level.display} interval)" if level else "")
        forecast.append(text)
    if forecast:
        # A forecast with its range has commas of its own: then forecasts are set apart by semicolons.
        separator = "; " if any("likely between" in part for part in forecast) else ", "
        sentences.append("Forecast for next week: " + separator.join(forecast) + ".")
    if withheld:
        sentences.append(withheld[0][0].upper() + ", and ".join(withheld)[1:] + ".")
    return " ".join(sentences)


def _bottleneck_sentence(data: SummaryInput, f: dict[str, Fact]) -> str:
    stage = data.bottleneck.get("dominant_stage")
    share = f.get(f"bottleneck.{stage}.dominant_share_12w")
    if share is None:
        return ""
    sentence = f"Bottleneck: {stage} takes {share.display} of the time to ship over the last {WINDOW_WEEKS} weeks"
    earlier = f.get(f"bottleneck.{stage}.dominant_share_earlier_6w")
    recent = f.get(f"bottleneck.{stage}.dominant_share_recent_6w")
    if earlier and recent:
        if earlier.display == recent.display:
            sentence += f", steady at {recent.display} from the start of that window to its end"
        else:
            direction = "up" if recent.value > earlier.value else "down"
            sentence += f", {direction} from {earlier.display} at the start of that window to {recent.display} at its end"
    return sentence + "."


def _ai_sentences(data: SummaryInput, f: dict[str, Fact]) -> list[str]:
    """AI-assisted pull requests against the others over the last 12 weeks, only when both cohorts
    are large enough (else that they are too few, without a number); then the adoption week."""
    sentences = []
    if data.ai_comparable:
        clauses = [f"{f['ai.ai_assisted.merged_prs'].display} of {f['ai.both.merged_prs'].display} merged pull requests"]
        for field, label, _ in AI_FIGURES:
            ai, other = f.get(f"ai.ai_assisted.{field}"), f.get(f"ai.other.{field}")
            if ai and other:
                if field == "median_pr_size":
                    clauses.append(f"median pull request size {ai.display} lines against {other.display}")
                else:
                    clauses.append(f"{label} {ai.display} against {other.display}")
        sentences.append(f"AI-assisted pull requests against the others over the last {WINDOW_WEEKS} weeks: "
                         + "; ".join(clauses) + ".")
    elif data.ai_cohorts:
        sentences.append(f"Too few AI-assisted or other pull requests over the last {WINDOW_WEEKS} weeks to compare them.")
    share = f.get("ai.adoption_week_share")
    if share:
        sentences.append(f"AI-assisted pull requests first reached {share.display} of the week's merged pull requests "
                         f"in the week starting {data.ai_adoption['adoption_week']}.")
    return sentences


def _count(display: str, noun: str) -> str:
    """"1 pull request", "3 pull requests": the figure as displayed (and grounded), the noun agreeing."""
    return f"{display} {noun}" if display == "1" else f"{display} {noun}s"
