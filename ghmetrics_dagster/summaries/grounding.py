"""The grounding check: every number in an answer must be one of the input's numbers, for
the metric the sentence says it is about.

A number matches a fact when it equals the fact's value, in a unit the answer names (hours
may be quoted as days or minutes, a ratio as a percentage), rounded to the precision the
answer shows, or within 2% of it. Quick Check scores (0..10, docs/dora.md) and their
DORA 2025 benchmark means are facts too; "6.4 / 10" names the scale and "DORA 2025" the
benchmark's edition, neither is a figure to check. When the sentence names a metric (the word right after the
number, else the nearest one before it in the sentence), only that metric's facts count, so
a review coverage of 45% cannot be passed off as a change failure rate. Numbers written as
words are rejected, since they cannot be checked. Dates must be dates of the input. Untrusted
names quoted back (repository `acme/api-v2`) are ignored as whole tokens, never cut out of a
longer number. Links, images and HTML are stripped from the answer before anything else.
"""

from __future__ import annotations

import dataclasses
import re

from ghmetrics_dagster.summaries.aggregates import CYCLE_STAGES, Fact, SummaryInput, facts, input_dates
from ghmetrics_dagster.summaries.prompts import MAX_SUMMARY_CHARS, untrusted_names

_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
# A number not glued to a letter or a digit on its left (`p90`, `v2` are names, not numbers).
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])[-+]?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?")
_UNIT = re.compile(
    r"\s*(?:(%|percent\b|per cent\b|pct\b)|(hours?\b|hrs?\b|h\b)|(days?\b|d\b)|(minutes?\b|mins?\b)|(weeks?\b|wks?\b))",
    re.IGNORECASE,
)
RELATIVE_TOLERANCE = 0.02

# Number words cannot be checked against the input. "one" is also a pronoun ("one of the
# repositories"), so it counts only next to a unit or in a compound ("one-third").
_NUMBER_WORDS = re.compile(
    r"\b(?:zero|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen"
    r"|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
    r"|hundreds?|thousands?|millions?|billions?|dozens?|half|twice|thrice"
    r"|one(?=-(?:third|quarter|fifth|tenth|half)|\s*(?:%|percent|per cent|hours?|days?|minutes?|weeks?)\b))\b",
    re.IGNORECASE,
)

# Markup a provider may return: none of it is stored or shown.
_SCRIPT_BLOCK = re.compile(r"<(script|style|iframe|object|svg)\b.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"</?[A-Za-z!?][^>]*>?")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\s*(?:\([^)]*\)|\[[^\]]*\])")
_MD_LINK = re.compile(r"\[([^\]]*)\]\s*(?:\([^)]*\)|\[[^\]]*\])")
_MD_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.MULTILINE)
_URL = re.compile(r"\b(?:https?|ftp|data|javascript|file)\s*:[^\s)]*", re.IGNORECASE)

# The Quick Check score families (docs/dora.md): each score, with its benchmark mean and its
# distance to it.
_SCORE_FAMILIES = ("overall_score", "throughput_score", "stability_score", "lead_time_score",
                   "deployment_frequency_score", "recovery_score", "change_fail_score", "rework_score")

# Words naming a metric -> the metric families (see _family) they may refer to.
_METRIC_WORDS: dict[str, tuple[str, ...]] = {
    "change failure rate": ("change_failure_rate",),
    "change fail rate": ("change_failure_rate",),
    "failure rate": ("change_failure_rate",),
    "fail rate": ("change_failure_rate",),
    "cfr": ("change_failure_rate",),
    "rework rate": ("rework_rate",),
    "rework": ("rework_rate",),
    "time to restore": ("time_to_restore",),
    "time to recovery": ("time_to_restore", "recovery"),
    "restore time": ("time_to_restore",),
    "failed deployment recovery time": ("recovery",),
    "deployment recovery time": ("recovery",),
    "recovery time": ("recovery", "time_to_restore"),
    "recovery": ("recovery", "time_to_restore"),
    "restore": ("time_to_restore",),
    "mttr": ("time_to_restore",),
    "lead time": ("lead_time",),
    "lead times": ("lead_time",),
    "deployment frequency": ("deployment_days", "deployments"),
    "deployments per deployment day": ("deployments",),
    "deployment days": ("deployment_days",),
    "deployment day": ("deployment_days",),
    "days with deployments": ("deployment_days",),
    "days with a deployment": ("deployment_days",),
    "deployments": ("deployments",),
    "deployment": ("deployments",),
    "deploys": ("deployments",),
    "releases": ("deployments",),
    "incidents": ("incidents",),
    "incident": ("incidents",),
    "outages": ("incidents",),
    "pull request size": ("pr_size",),
    "pr size": ("pr_size",),
    "lines": ("pr_size",),
    "size": ("pr_size",),
    "pull requests": ("merged_prs",),
    "pull request": ("merged_prs",),
    "prs": ("merged_prs",),
    "merged": ("merged_prs",),
    "merges": ("merged_prs",),
    "review coverage": ("review_coverage",),
    "coverage": ("review_coverage",),
    "reviewed": ("review_coverage",),
    # The headline replaced the former performance score: a "performance" figure is the overall score.
    "overall score": ("overall_score",),
    "overall": ("overall_score",),
    "performance score": ("overall_score",),
    "performance": ("overall_score",),
    "throughput score": ("throughput_score",),
    "throughput": ("throughput_score",),
    "stability score": ("stability_score",),
    "stability": ("stability_score",),
    "quick check": _SCORE_FAMILIES,
    "benchmark": _SCORE_FAMILIES,
    "benchmarks": _SCORE_FAMILIES,
    "anomaly score": ("anomaly_score",),
    "z-score": ("anomaly_score",),
    "interval": ("interval_level",),
    "anomaly": ("anomaly_score",),
    "score": _SCORE_FAMILIES + ("anomaly_score",),
    "scores": _SCORE_FAMILIES + ("anomaly_score",),
    "cycle time": ("cycle_coding", "cycle_pickup", "cycle_review", "cycle_deploy"),
    "coding": ("cycle_coding",),
    "pickup": ("cycle_pickup",),
    "pick-up": ("cycle_pickup",),
    "review time": ("cycle_review",),
    "review": ("cycle_review",),
    "deploy time": ("cycle_deploy",),
    "deploy": ("cycle_deploy", "deployments"),
}
# Longest first: "review coverage" is one metric, not "review" then "coverage".
_METRIC_ALTERNATIVES = "|".join(re.escape(w) for w in sorted(_METRIC_WORDS, key=len, reverse=True))
_METRIC = re.compile(rf"\b(?:{_METRIC_ALTERNATIVES})\b", re.IGNORECASE)
# The metric a number is about when it comes right after it: "12 incidents", "7 pull requests".
_FOLLOWING_METRIC = re.compile(rf"[ \t]*(?:[A-Za-z]+[ \t]+){{0,2}}?({_METRIC_ALTERNATIVES})\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.;!?](?=\s|$)|\n")

_FIELD_FAMILY = {
    "window_weeks": "window",
    "deployments": "deployments",
    "deployments_12w": "deployments",
    "deployments_per_deployment_day_12w": "deployments",
    "deployment_days": "deployment_days",
    "median_weekly_deployment_days": "deployment_days",
    "deployment_days_per_week_12w": "deployment_days",
    "median_lead_time_hours": "lead_time",
    "lead_time_hours_12w": "lead_time",
    "predicted_lead_time_hours": "lead_time",
    "change_failure_rate": "change_failure_rate",
    "change_failure_rate_12w": "change_failure_rate",
    "rework_rate": "rework_rate",
    "rework_rate_12w": "rework_rate",
    "median_recovery_hours": "recovery",
    "recovery_hours_12w": "recovery",
    "incidents": "incidents",
    "median_time_to_restore_hours": "time_to_restore",
    "merged_prs": "merged_prs",
    "review_coverage": "review_coverage",
    "median_pr_size": "pr_size",
    "predicted_overall_score": "overall_score",
    "predicted_lead_time_hours_low": "lead_time",
    "predicted_lead_time_hours_high": "lead_time",
    "predicted_overall_score_low": "overall_score",
    "predicted_overall_score_high": "overall_score",
    "overall_vs_benchmark": "overall_score",
    "throughput_vs_benchmark": "throughput_score",
    "stability_vs_benchmark": "stability_score",
    **{score: score for score in _SCORE_FAMILIES},
    "score": "anomaly_score",
}

# "DORA 2025" names the benchmark's edition (and "DORA 2023" the legacy grades): a name, not a
# figure. "6.4 / 10" or "6.4 out of 10" names the scale of the score before it.
_EDITION = re.compile(r"\bDORA(?:['’]s)?(?:\s+Quick\s+Check)?\s+(?:2023|2025)\b", re.IGNORECASE)
_SCALE = re.compile(r"(?<=\d)(\s*(?:/|out\s+of)\s*10)\b(?![.,]\d)", re.IGNORECASE)


@dataclasses.dataclass
class GroundingResult:
    grounded: bool
    text: str  # the answer, trimmed to the length bound
    reasons: list[str]


def _family(fact: Fact) -> str:
    parts = fact.key.split(".")
    if parts[0] == "cycle":
        return f"cycle_{parts[1]}"
    if parts[0] == "benchmark":  # a benchmark mean is on its score's scale: benchmark.overall
        return f"{parts[1]}_score"
    if parts[0] == "anomaly":  # a flagged week's reading: its z-score, observed value and expected range
        return "anomaly_score"
    if parts[0] == "bottleneck":  # the dominant stage's share: bottleneck.review.dominant_share_12w
        return f"cycle_{parts[1]}"
    if parts[0] == "ai":  # a cohort's figure (ai.other.median_coding_hours) is its metric's
        stage = parts[-1].removeprefix("median_").removesuffix("_hours")
        if stage in CYCLE_STAGES:
            return f"cycle_{stage}"
        if parts[-1] == "adoption_week_share":  # a share of the merged pull requests
            return "merged_prs"
    return _FIELD_FAMILY.get(parts[-1], parts[-1])


_UNITS = ("percent", "hours", "days", "minutes", "weeks", "plain")


def _candidates(fact_list: list[Fact]) -> dict[str, list[float]]:
    """The values of `fact_list` in each unit an answer may quote them in."""
    by_unit: dict[str, list[float]] = {unit: [] for unit in _UNITS}
    for fact in fact_list:
        v = fact.value
        if fact.unit == "hours":
            by_unit["hours"].append(v)
            by_unit["days"].append(v / 24)
            by_unit["minutes"].append(v * 60)
            by_unit["weeks"].append(v / 168)
            by_unit["plain"] += [v, v / 24]
        elif fact.unit == "ratio":
            by_unit["percent"].append(v * 100)
            by_unit["plain"] += [v, v * 100]
        elif fact.unit == "percent":
            by_unit["percent"].append(v)
            by_unit["plain"].append(v)
        elif fact.unit == "weeks":
            by_unit["weeks"].append(v)
            by_unit["plain"].append(v)
        else:
            by_unit["plain"].append(v)
    return by_unit


def sanitize(text: str) -> str:
    """Provider text without HTML, scripts, images, links or URLs (a link keeps its words)."""
    text = _SCRIPT_BLOCK.sub(" ", text)
    text = _HTML_TAG.sub(" ", text)
    text = _MD_IMAGE.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_REFERENCE.sub(" ", text)
    text = _URL.sub(" ", text)
    # Leftover brackets could still open a tag or a link in a later renderer.
    text = text.replace("<", " ").replace(">", " ")
    return "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()


def _scrub_names(text: str, names: list[str]) -> str:
    """Blanks quoted untrusted names, only where they stand as whole tokens: the login `9` is
    not cut out of `999`, and a name that reads as a number followed by a unit stays a claim."""
    for name in sorted(set(names), key=len, reverse=True):  # a name containing another goes whole
        pattern = re.compile(rf"(?<![A-Za-z0-9_.]){re.escape(name)}(?![A-Za-z0-9_]|\.\d)")
        numeric = _NUMBER.fullmatch(name) is not None

        def blank(match: re.Match, numeric: bool = numeric) -> str:
            if numeric and _UNIT.match(match.string, match.end()):
                return match.group(0)
            return " " * len(match.group(0))  # same length: positions stay comparable

        text = pattern.sub(blank, text)
    return text


def _metric_families(text: str, start: int, end: int) -> set[str]:
    """The metric the number at text[start:end] (unit included) is about, or empty if unnamed."""
    following = _FOLLOWING_METRIC.match(text, end)
    if following:
        return set(_METRIC_WORDS[following.group(1).lower()])
    sentence_start = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    before = list(_METRIC.finditer(text, sentence_start, start))
    if before:
        return set(_METRIC_WORDS[before[-1].group(0).lower()])
    sentence_end = _SENTENCE_END.search(text, end)
    after = _METRIC.search(text, end, sentence_end.start() if sentence_end else len(text))
    return set(_METRIC_WORDS[after.group(0).lower()]) if after else set()


def _matches(number: float, decimals: int, values: list[float]) -> bool:
    half_step = 0.5 * 10 ** (-decimals) + 1e-9
    for value in values:
        value = abs(value)
        if abs(number - value) <= half_step or abs(number - value) <= RELATIVE_TOLERANCE * value:
            return True
    return False


def _bound(text: str, limit: int) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind(".\n"), cut.rfind("\n"))
    return (cut[: end + 1] if end > 0 else cut).strip()


def check(answer: str, data: SummaryInput, limit: int = MAX_SUMMARY_CHARS) -> GroundingResult:
    text = _bound(sanitize(answer or ""), limit)
    reasons: list[str] = []
    if not text:
        return GroundingResult(False, text, ["the answer is empty"])
    if "<aggregates>" in (answer or "") or "untrusted-data>" in (answer or ""):
        reasons.append("the answer echoes the prompt's fences")

    scrubbed = _scrub_names(text, untrusted_names(data))
    scrubbed = _EDITION.sub(lambda m: m.group(0)[:-4] + "    ", scrubbed)
    scrubbed = _SCALE.sub(lambda m: " " * len(m.group(0)), scrubbed)

    known_dates = input_dates(data)
    for date in _DATE.findall(scrubbed):
        if date not in known_dates:
            reasons.append(f"date {date} is not in the input")
    scrubbed = _DATE.sub(lambda m: " " * len(m.group(0)), scrubbed)

    for word in _NUMBER_WORDS.finditer(scrubbed):
        reasons.append(f"number written as a word {word.group(0)!r} cannot be checked; use digits")

    all_facts = facts(data)
    families = {fact: _family(fact) for fact in all_facts}
    window = _candidates([f for f in all_facts if families[f] == "window"])
    for match in _NUMBER.finditer(scrubbed):
        whole, fraction = match.group(1), match.group(2) or ""
        number = float(whole.replace(",", "") + fraction)
        decimals = max(len(fraction) - 1, 0)
        unit_match = _UNIT.match(scrubbed, match.end())
        if unit_match is None:
            unit = "plain"
        else:
            unit = _UNITS[next(i for i, g in enumerate(unit_match.groups()) if g)]
        end = unit_match.end() if unit_match else match.end()
        named = _metric_families(scrubbed, match.start(), end)
        relevant = [f for f in all_facts if families[f] in named] if named else all_facts
        values = _candidates(relevant)[unit]
        if unit == "weeks":  # "over the last 12 weeks" is the window, whatever the metric
            values = values + window["weeks"]
        if not _matches(number, decimals, values):
            shown = match.group(0) + (unit_match.group(0) if unit_match else "")
            about = f" for {' or '.join(sorted(named)).replace('_', ' ')}" if named else ""
            reasons.append(f"number {shown.strip()!r} matches no input value{about}")
    return GroundingResult(not reasons, text, reasons)
