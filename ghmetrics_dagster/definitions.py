"""The one Definitions object: ingestion -> dbt marts -> ML -> summaries, plus sensors."""

from __future__ import annotations

import dagster as dg

from ghmetrics_dagster.defs import alerts, ingest, ml, summaries, transform, users

_modules = (ingest, transform, ml, summaries, users, alerts)


def _collect(name: str) -> list:
    return [item for module in _modules for item in getattr(module, name, [])]


defs = dg.Definitions(
    assets=_collect("ASSETS"),
    asset_checks=_collect("ASSET_CHECKS"),
    jobs=_collect("JOBS"),
    sensors=_collect("SENSORS"),
    schedules=_collect("SCHEDULES"),
    resources={key: value for module in _modules for key, value in getattr(module, "RESOURCES", {}).items()},
)
