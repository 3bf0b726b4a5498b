"""Ingestion of GitHub Copilot usage metrics, in the same step as the repositories
(defs/ingest.py): the organisations owning the wave's users' repositories, their reports into
raw.copilot_org_days and raw.copilot_user_days (ghmetrics_dagster/sync/copilot.py).

One step with the repositories, not an asset of its own: it reads the organisations the sync
has just written, and an asset downstream of raw/repositories would also wait for the dbt step
that runs raw/repositories' source tests, which splits the dbt step in two.
"""

import dagster as dg

from ghmetrics_dagster.defs.resources import GitHubResource
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.sync import copilot
from ghmetrics_dagster.warehouse import app_data, connect

COPILOT_TABLES = {
    "copilot_org_days": "GitHub Copilot usage per organisation and day (the organisation reports).",
    "copilot_user_days": "GitHub Copilot usage per organisation, day and user (the users reports).",
}
AVAILABLE_CHECK = "copilot_reports_available"


def raw_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", table])


SPECS = [
    dg.AssetSpec(raw_key(table), description=text, kinds={"github", "postgres"}, group_name="ingestion")
    for table, text in COPILOT_TABLES.items()
]
CHECK_SPEC = dg.AssetCheckSpec(
    AVAILABLE_CHECK,
    asset=raw_key("copilot_org_days"),
    description="Every organisation's Copilot usage reports were read; otherwise one line per "
    "organisation says why (403: the token's permission, 404: Copilot or its reports not enabled).",
)


def ingest_copilot_usage(context: dg.AssetExecutionContext, url: str, github: GitHubResource,
                         clients: dict[str, GitHubClient]):
    """The reports of the organisations owning the repositories of the wave's users (`clients`:
    each user's client from the sync), incremental by day; an organisation without Copilot or
    without the permission is reported, not failed."""
    with connect(url) as conn, conn.cursor() as cur:
        users_by_org = app_data.scope_organizations(cur, list(clients))
    service = github.service_tokens()

    def client_for(org: str):
        # Reports need an organisation owner's or billing manager's token: the service's first,
        # else a user's own (their client from the sync; no second read of the stored token).
        return github.client(service) if service else clients[users_by_org[org][0]]

    results = copilot.ingest_organizations(url, client_for, sorted(users_by_org), progress=context.log.info)
    problems = {r.org: r.summary() for r in results if r.status != "ok"}
    for message in problems.values():
        context.log.warning(message)
    organizations = dg.MetadataValue.json({r.org: r.summary() for r in results})
    yield dg.MaterializeResult(
        asset_key=raw_key("copilot_org_days"),
        metadata={"rows_upserted": sum(r.org_days for r in results), "organizations": organizations},
    )
    yield dg.MaterializeResult(
        asset_key=raw_key("copilot_user_days"),
        metadata={"rows_upserted": sum(r.user_days for r in results), "organizations": organizations},
    )
    yield dg.AssetCheckResult(
        asset_key=raw_key("copilot_org_days"),
        check_name=AVAILABLE_CHECK,
        passed=not problems,
        # An organisation without Copilot is common: worth a look, not an error of the wave.
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"unavailable": dg.MetadataValue.json(problems), "organizations": len(results)},
        description="; ".join(problems.values()) or None,
    )
