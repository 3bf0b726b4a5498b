"""Ingestion assets: a user's repositories from GitHub into the `raw` tables."""

import dagster as dg

from ghmetrics_dagster import sync
from ghmetrics_dagster.defs import copilot
from ghmetrics_dagster.defs.copilot import raw_key
from ghmetrics_dagster.defs.partitions import users_partitions
from ghmetrics_dagster.defs.resources import GitHubResource, WarehouseResource
from ghmetrics_dagster.github import access
from ghmetrics_dagster.sync import discovery
from ghmetrics_dagster.warehouse import migrate as _migrate

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


def _check_access(context: dg.AssetExecutionContext, url: str, github: GitHubResource,
                  repos_by_user: dict[str, list[str]], own_tokens: dict[str, str | None]) -> None:
    """Records which registered repositories each user may see (their scope, github/access.py):
    a user's own token decides for them; users without one share one check with the service
    tokens for the whole wave, so the check costs a query per token holder, not per user."""
    shared = [login for login in repos_by_user if not own_tokens[login]]
    nodes = {}
    if shared and github.service_tokens():
        wanted = sorted({repo for login in shared for repo in repos_by_user[login]}, key=str.lower)
        nodes = access.fetch_repositories(github.client(github.service_tokens()), wanted)
    for login, repos in repos_by_user.items():
        client = None if login in shared else github.client([own_tokens[login]])
        checked = access.record_access(url, login, repos, with_own_token=login not in shared, client=client,
                                       nodes=nodes if login in shared else None)
        context.log.info(checked.summary())


def _sync_users(context: dg.AssetExecutionContext, url: str, github: GitHubResource,
                logins: list[str]) -> tuple[list, dict, dict]:
    """Syncs each user's repositories with that user's tokens; a repository shared by several
    users of the wave is synced once. Returns the reports, per user their failures, and per user
    the client with their tokens (the Copilot reports reuse it)."""
    failures: dict[str, list[str]] = {}
    clients, repos_by_user = {}, {}
    own_tokens = {login: github.own_token(login) for login in logins}  # each decrypted once
    for login in logins:
        clients[login] = github.client_for(login, own_tokens[login])
        try:
            repos_by_user[login] = discovery.resolve_user_repositories(url, clients[login], login)
        except Exception as exc:  # one user's lookup failing must not stop the wave
            failures[login] = [f"cannot list the repositories: {exc}"]
            context.log.warning(f"{login}: cannot list the repositories: {exc}")
    _check_access(context, url, github, repos_by_user, own_tokens)
    done: set[str] = set()
    reports = []
    for login, repos in repos_by_user.items():
        todo = [repo for repo in repos if repo.lower() not in done]
        context.log.info(f"{login}: {len(repos)} repositories, {len(repos) - len(todo)} already synced in this wave")
        if not todo:
            continue
        report = sync.sync_repositories(url, clients[login], todo, progress=context.log.info)
        context.log.info(report.summary())
        reports.append(report)
        done.update(repo.lower() for repo in todo)
        if report.repositories and len(report.failed) == len(report.repositories):
            failures[login] = [f"{r.repo}: {'; '.join(r.errors)}" for r in report.failed]
    return reports, failures, clients


@dg.multi_asset(
    specs=[
        dg.AssetSpec(raw_key(table), description=text, kinds={"github", "postgres"}, group_name="ingestion")
        for table, text in RAW_TABLES.items()
    ] + copilot.SPECS,
    check_specs=[
        dg.AssetCheckSpec(
            SYNCED_CHECK,
            asset=raw_key("repositories"),
            description="Every repository of the user synced; failures name the repository and the reason.",
        ),
        copilot.CHECK_SPEC,
    ],
    partitions_def=users_partitions,
    # A wave covers a range of users in one run (defs/users.py).
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="github_api",
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
    description="Incremental, resumable sync of the users' repositories (GraphQL first, ETag checks); "
    "a repository shared by several users of a wave is synced once; then the Copilot usage reports of "
    "the organisations owning them.",
)
def github_raw_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource, github: GitHubResource):
    logins = list(context.partition_keys)
    url = warehouse.url()
    _migrate(url)
    reports, failures, clients = _sync_users(context, url, github, logins)
    if len(failures) == len(logins):
        login, errors = next(iter(failures.items()))
        raise dg.Failure(f"no repository of {login} could be synced; {errors[0]}")

    rows: dict[str, int] = {}
    errors: dict[str, str] = {}
    totals: dict = {}
    repositories = 0
    for report in reports:
        shared = report.metadata()
        for table, count in shared.pop("rows_upserted").items():
            rows[table] = rows.get(table, 0) + count
        errors.update(shared.pop("errors"))
        repositories += len(report.repositories)
        for key, value in shared.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
            else:
                totals[key] = value
    for login, reasons in failures.items():
        errors.setdefault(f"user {login}", "; ".join(reasons))
    for table in RAW_TABLES:
        yield dg.MaterializeResult(
            asset_key=raw_key(table),
            metadata={"rows_upserted": rows.get(table, 0), "users": len(logins),
                      **{k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in totals.items()}},
        )
    yield dg.AssetCheckResult(
        asset_key=raw_key("repositories"),
        check_name=SYNCED_CHECK,
        passed=not errors,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"failed": dg.MetadataValue.json(errors), "repositories": repositories},
        description="; ".join(f"{repo}: {error}" for repo, error in errors.items()) or None,
    )
    yield from copilot.ingest_copilot_usage(context, url, github, clients)


defs = dg.Definitions(assets=[github_raw_tables])
