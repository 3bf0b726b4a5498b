"""What signing in records: the user, their token (encrypted), their repositories, and the
app.user_logins row that the login sensor turns into a refresh."""

from __future__ import annotations

import dataclasses
import datetime as dt

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.github import access
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.warehouse import app_data
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
        # encrypt always returns a ciphertext, so the stored token is replaced.
        app_data.save_user(cur, who.login, who.name, config.keyring.encrypt(token, cur))
        app_data.add_user_repositories(cur, who.login, in_organizations(readable, config.organizations))
        registered = app_data.user_repositories(cur, who.login)
    # Repositories an admin registered are checked too: the scope is what this token can read.
    scope = access.record_access(url, who.login, registered, with_own_token=True, client=client)
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        login_id, at = app_data.record_login(cur, who.login)
    return SignIn(who.login, login_id, at, len(scope.readable))
