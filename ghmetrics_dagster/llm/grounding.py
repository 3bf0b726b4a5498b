"""The grounding check: every number in an answer must be one of the input's numbers.

A number matches a fact when it equals the fact's value, in a unit the answer names (hours
may be quoted as days or minutes, a ratio as a percentage), rounded to the precision the
answer shows, or within 2% of it. Dates must be dates of the input. Digits inside untrusted
names quoted back (repository `acme/api-v2`) are ignored, never counted as evidence.
"""

from __future__ import annotations

import dataclasses
import re

from ghmetrics_dagster.llm.aggregates import Fact, SummaryInput, facts, input_dates
from ghmetrics_dagster.llm.prompts import MAX_SUMMARY_CHARS, untrusted_names

_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
# A number not glued to a letter or a digit on its left (`p90`, `v2` are names, not numbers).
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])[-+]?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?")
_UNIT = re.compile(
    r"\s*(?:(%|percent\b|per cent\b|pct\b)|(hours?\b|hrs?\b|h\b)|(days?\b|d\b)|(minutes?\b|mins?\b)|(weeks?\b|wks?\b))",
    re.IGNORECASE,
)
RELATIVE_TOLERANCE = 0.02


@dataclasses.dataclass
class GroundingResult:
    grounded: bool
    text: str  # the answer, trimmed to the length bound
    reasons: list[str]


def _candidates(fact_list: list[Fact]) -> dict[str, list[float]]:
    by_unit: dict[str, list[float]] = {"percent": [], "hours": [], "days": [], "minutes": [], "weeks": [], "plain": []}
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
    text = _bound(answer or "", limit)
    reasons: list[str] = []
    if not text:
        return GroundingResult(False, text, ["the answer is empty"])
    if "<aggregates>" in text or "untrusted-data>" in text:
        reasons.append("the answer echoes the prompt's fences")

    scrubbed = text
    # Longest first, so a name containing another name is removed whole.
    for name in sorted(set(untrusted_names(data)), key=len, reverse=True):
        scrubbed = scrubbed.replace(name, " ")

    known_dates = input_dates(data)
    for date in _DATE.findall(scrubbed):
        if date not in known_dates:
            reasons.append(f"date {date} is not in the input")
    scrubbed = _DATE.sub(" ", scrubbed)

    by_unit = _candidates(facts(data))
    for match in _NUMBER.finditer(scrubbed):
        whole, fraction = match.group(1), match.group(2) or ""
        number = float(whole.replace(",", "") + fraction)
        decimals = max(len(fraction) - 1, 0)
        unit_match = _UNIT.match(scrubbed, match.end())
        if unit_match is None:
            unit = "plain"
        else:
            unit = ("percent", "hours", "days", "minutes", "weeks")[
                next(i for i, g in enumerate(unit_match.groups()) if g)
            ]
        if not _matches(number, decimals, by_unit[unit]):
            shown = match.group(0) + (unit_match.group(0) if unit_match else "")
            reasons.append(f"number {shown.strip()!r} matches no input value")
    return GroundingResult(not reasons, text, reasons)
