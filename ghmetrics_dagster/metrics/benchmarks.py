"""Which of DORA's 2025 Quick Check benchmarks the scores are compared with (docs/dora.md).

The figures live in the dbt seed `dora_benchmarks_2025.csv`; the choice of segment lives in
`app.settings` (`benchmark_industry`, `benchmark_organization_size`; none means all
industries, and the industry wins when both are set). The marts follow on their next refresh.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.warehouse import app_data
from ghmetrics_dagster.warehouse.dbt_env import DBT_PROJECT_DIR

BENCHMARKS_CSV = DBT_PROJECT_DIR / "seeds" / "dora_benchmarks_2025.csv"
SETTINGS = {"industry": "benchmark_industry", "organization_size": "benchmark_organization_size"}


class BenchmarkError(ValueError):
    """An unknown segment; the message lists the known ones."""


@dataclass(frozen=True)
class BenchmarkChoice:
    industry: str | None = None
    organization_size: str | None = None

    def describe(self, labels: dict[tuple[str, str], str]) -> str:
        if self.industry:
            return f"industry: {labels.get(('industry', self.industry), self.industry)}"
        if self.organization_size:
            return f"organisation size: {labels.get(('organization_size', self.organization_size), self.organization_size)}"
        return "all industries"


def segments() -> dict[tuple[str, str], str]:
    """(segment_type, segment) -> readable label, for every segment of the seed."""
    with BENCHMARKS_CSV.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {(row["segment_type"], row["segment"]): row.get("segment_label") or row["segment"] for row in rows}


def _check(segment_type: str, value: str | None, known: dict[tuple[str, str], str]) -> str | None:
    if value is None or value == "default":
        return None
    if (segment_type, value) not in known:
        options = ", ".join(sorted(segment for kind, segment in known if kind == segment_type))
        raise BenchmarkError(f"unknown {segment_type.replace('_', ' ')} {value!r}; use one of: {options}, or default")
    return value


def get_choice(url: str) -> BenchmarkChoice:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        stored = app_data.read_settings(cur, list(SETTINGS.values()))
    return BenchmarkChoice(stored.get(SETTINGS["industry"]), stored.get(SETTINGS["organization_size"]))


def set_choice(url: str, *, industry: str | None = None, organization_size: str | None = None) -> BenchmarkChoice:
    """Stores the segment(s) given (`default` clears one); others stay as they are."""
    known = segments()
    changes = {}
    if industry is not None:
        changes[SETTINGS["industry"]] = _check("industry", industry, known)
    if organization_size is not None:
        changes[SETTINGS["organization_size"]] = _check("organization_size", organization_size, known)
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        app_data.write_settings(cur, changes)
    return get_choice(url)
