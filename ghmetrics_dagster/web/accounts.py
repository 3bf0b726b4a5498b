"""What signing in records: the user, their token (encrypted), their repositories, and the
app.user_logins row that the login sensor turns into a refresh."""

from __future__ import annotations

import dataclasses
import datetime as dt

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.github import access
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.web.config import WebConfig
from ghmetrics_dagster.web.oauth import Identity


@dataclasses.dataclass(frozen=True)
class SignIn:
    login: str
    login_id: int
    logged_in_at: dt.datetime
    repositories: int  # in the user's scope after the access check


def in_organizations(repos: list[str], organizations: tuple[str, ...]) -> list[str]:
    """`repos` owned by one of `organizations` (all of them when none is configured)."""
    if not organizations:
        return list(repos)
    owners = {org.lower() for org in organizations}
    return [name for name in repos if name.split("/", 1)[0].lower() in owners]


def record_sign_in(config: WebConfig, who: Identity, token: str, readable: list[str], client: GitHubClient) -> SignIn:
    """`client` acts as the user (oauth.user_client): the scope check asks GitHub with their token."""
    url = config.database_url
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            """insert into app.users (login, display_name, token_ciphertext) values (%s, %s, %s)
               on conflict (login) do update set
                 display_name = coalesce(excluded.display_name, app.users.display_name),
                 token_ciphertext = excluded.token_ciphertext""",
            (who.login, who.name, config.keyring.encrypt(token, cur)),
        )
        cur.executemany(
            "insert into app.user_repositories (login, repo_full_name) values (%s, %s) on conflict do nothing",
            [(who.login, name) for name in in_organizations(readable, config.organizations)],
        )
        cur.execute("select repo_full_name from app.user_repositories where login = %s order by 1", (who.login,))
        registered = [row[0] for row in cur.fetchall()]
    # Repositories an admin registered are checked too: the scope is what this token can read.
    scope = access.record_access(url, config.keyring, who.login, registered, client=client)
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("insert into app.user_logins (login) values (%s) returning id, logged_in_at", (who.login,))
        login_id, at = cur.fetchone()
    return SignIn(who.login, login_id, at, len(scope.readable))
