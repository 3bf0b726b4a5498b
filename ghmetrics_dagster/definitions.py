"""The one Definitions object: ingestion -> dbt marts -> ML -> summaries, plus sensors.

Each domain's module declares its own definitions; they are merged here with the resources
built from the one `Settings` this code location loads.
"""

from __future__ import annotations

import dagster as dg

from ghmetrics_dagster.core.settings import Settings
from ghmetrics_dagster.defs import alerts, ingest, ml, resources, summaries, transform, users


def build_defs(settings: Settings) -> dg.Definitions:
    settings.require_database()  # a production instance without a database fails here, at start
    return dg.Definitions.merge(
        ingest.defs,
        transform.build_defs(settings.dbt_project_dir, settings.dbt_statement_timeout),
        ml.defs,
        summaries.defs,
        users.defs,
        alerts.defs,
        dg.Definitions(resources=resources.build(settings)),
    )


defs = build_defs(Settings.from_env())
