"""A user's repositories: the registered ones, or else everything the user can reach on GitHub."""

from __future__ import annotations

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.github import errors, queries
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.warehouse import app_data


def resolve_user_repositories(url: str, client: GitHubClient, login: str) -> list[str]:
    """The user's repositories: app.user_repositories, or else the user's own, collaborator
    and organisation repositories from the API."""
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        configured = app_data.user_repositories(cur, login)
    if configured:
        return configured
    names: list[str] = []
    organizations: list[str] = []
    after = None
    while True:
        data = client.graphql(queries.USER_REPOSITORIES, {"login": login, "after": after})
        user = data.get("user")
        if user is None:
            raise errors.NotFound(f"GitHub user {login!r} not found; check the login")
        listing = user["repositories"]
        names += [n["nameWithOwner"] for n in listing["nodes"] if n]
        if after is None:
            organizations = [o["login"] for o in (user.get("organizations") or {}).get("nodes", []) if o]
        if not listing["pageInfo"]["hasNextPage"]:
            break
        after = listing["pageInfo"]["endCursor"]
    for org in organizations:
        after = None
        while True:
            data = client.graphql(queries.ORGANIZATION_REPOSITORIES, {"login": org, "after": after})
            listing = (data.get("organization") or {}).get("repositories")
            if not listing:
                break
            names += [n["nameWithOwner"] for n in listing["nodes"] if n]
            if not listing["pageInfo"]["hasNextPage"]:
                break
            after = listing["pageInfo"]["endCursor"]
    return sorted(dict.fromkeys(names), key=str.lower)
