"""Ingestion assets: a user's repositories from GitHub into the `raw` tables."""

import dagster as dg

from ghmetrics_dagster import secrets, settings, warehouse
from ghmetrics_dagster.defs.partitions import users_partitions
from ghmetrics_dagster.github import access, sync
from ghmetrics_dagster.github.client import GitHubClient

RAW_TABLES = {
    "repositories": "Repository metadata (default branch, archived, empty).",
    "pull_requests": "Pull requests, one row per PR, with size and state.",
    "pull_request_reviews": "Reviews of the pull requests.",
    "pull_request_commits": "Commits of the pull requests (authored time, size).",
    "deployments": "GitHub Deployments with all their statuses.",
    "releases": "Releases, including drafts and pre-releases.",
    "workflow_runs": "GitHub Actions workflow runs (REST).",
    "issues": "Issues with their labels (incidents are labelled issues).",
}

SYNCED_CHECK = "all_repositories_synced"


def raw_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", table])


def _tokens_for(login: str) -> list[str]:
    """The user's own stored token first (it sees their private repositories), then the service's."""
    with warehouse.connect() as conn, conn.cursor() as cur:
        cur.execute("select token_ciphertext from app.users where login = %s", (login,))
        row = cur.fetchone()
    own = [secrets.decrypt(row[0])] if row and row[0] else []
    tokens = list(dict.fromkeys(own + settings.github_tokens()))
    if not tokens:
        raise dg.Failure(
            "no GitHub token: set GITHUB_TOKEN or store the user's token with "
            f"`ghmetrics users add {login} --token-stdin`"
        )
    return tokens


@dg.multi_asset(
    specs=[
        dg.AssetSpec(raw_key(table), description=text, kinds={"github", "postgres"}, group_name="ingestion")
        for table, text in RAW_TABLES.items()
    ],
    check_specs=[
        dg.AssetCheckSpec(
            SYNCED_CHECK,
            asset=raw_key("repositories"),
            description="Every repository of the user synced; failures name the repository and the reason.",
        )
    ],
    partitions_def=users_partitions,
    pool="github_api",
    description="Incremental, resumable sync of the user's repositories (GraphQL first, ETag checks).",
)
def github_raw_tables(context: dg.AssetExecutionContext):
    login = context.partition_key
    url = warehouse.database_url()
    warehouse.migrate(url)
    tokens = _tokens_for(login)
    client = GitHubClient(settings.github_api_url(), settings.github_graphql_url(), tokens)
    repos = sync.resolve_user_repositories(url, client, login)
    # The user's own token decides the scope; syncing the rest still reports their errors.
    context.log.info(access.record_access(url, login, repos).summary())
    context.log.info(f"{login}: syncing {len(repos)} repositories")
    report = sync.sync_repositories(url, client, repos, progress=context.log.info)
    context.log.info(report.summary())
    if report.repositories and len(report.failed) == len(report.repositories):
        first = report.failed[0]
        raise dg.Failure(f"no repository of {login} could be synced; {first.repo}: {'; '.join(first.errors)}")

    shared = report.metadata()
    rows = shared.pop("rows_upserted")
    errors = shared.pop("errors")
    for table in RAW_TABLES:
        yield dg.MaterializeResult(
            asset_key=raw_key(table),
            metadata={"rows_upserted": rows.get(table, 0), **{k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in shared.items()}},
        )
    yield dg.AssetCheckResult(
        asset_key=raw_key("repositories"),
        check_name=SYNCED_CHECK,
        passed=not report.failed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"failed": dg.MetadataValue.json(errors), "repositories": len(report.repositories)},
        description="; ".join(f"{repo}: {error}" for repo, error in errors.items()) or None,
    )


ASSETS = [github_raw_tables]
