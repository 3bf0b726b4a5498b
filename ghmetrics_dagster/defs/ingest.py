"""Ingestion assets: a user's repositories from GitHub into the `raw` tables."""

import dagster as dg

from ghmetrics_dagster import settings, sync, warehouse
from ghmetrics_dagster.defs.partitions import users_partitions
from ghmetrics_dagster.github import access
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.sync import discovery

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
    own = access.own_token(warehouse.database_url(), login)
    tokens = list(dict.fromkeys(([own] if own else []) + settings.github_tokens()))
    if not tokens:
        raise dg.Failure(
            "no GitHub token: set GITHUB_TOKEN or store the user's token with "
            f"`ghmetrics users add {login} --token-stdin`"
        )
    return tokens


def _check_access(context: dg.AssetExecutionContext, url: str, repos_by_user: dict[str, list[str]]) -> None:
    """Records which registered repositories each user may see (their scope, github/access.py):
    a user's own token decides for them; users without one share one check with the service
    tokens for the whole wave, so the check costs a query per token holder, not per user."""
    shared = [login for login in repos_by_user if not access.own_token(url, login)]
    nodes = {}
    if shared and settings.github_tokens():
        wanted = sorted({repo for login in shared for repo in repos_by_user[login]}, key=str.lower)
        client = GitHubClient(settings.github_api_url(), settings.github_graphql_url(), settings.github_tokens())
        nodes = access.fetch_repositories(client, wanted)
    for login, repos in repos_by_user.items():
        checked = access.record_access(url, login, repos, nodes=nodes if login in shared else None)
        context.log.info(checked.summary())


def _sync_users(context: dg.AssetExecutionContext, url: str, logins: list[str]) -> tuple[list, dict]:
    """Syncs each user's repositories with that user's tokens; a repository shared by several
    users of the wave is synced once. Returns the reports and, per user, their failures."""
    failures: dict[str, list[str]] = {}
    clients, repos_by_user = {}, {}
    for login in logins:
        clients[login] = GitHubClient(settings.github_api_url(), settings.github_graphql_url(), _tokens_for(login))
        try:
            repos_by_user[login] = discovery.resolve_user_repositories(url, clients[login], login)
        except Exception as exc:  # one user's lookup failing must not stop the wave
            failures[login] = [f"cannot list the repositories: {exc}"]
            context.log.warning(f"{login}: cannot list the repositories: {exc}")
    _check_access(context, url, repos_by_user)
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
    return reports, failures


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
    # A wave covers a range of users in one run (defs/users.py).
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="github_api",
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
    description="Incremental, resumable sync of the users' repositories (GraphQL first, ETag checks); "
    "a repository shared by several users of a wave is synced once.",
)
def github_raw_tables(context: dg.AssetExecutionContext):
    logins = list(context.partition_keys)
    url = warehouse.database_url()
    warehouse.migrate(url)
    reports, failures = _sync_users(context, url, logins)
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


ASSETS = [github_raw_tables]
