"""A user's scope: the repositories they are registered for AND their own token can read.

`record_access` runs at each sync with the user's own token only (the service tokens cannot
vouch for a user: they may read another user's private repository), or, for a user without a
token, with the service tokens, and records the answer in app.user_repository_access. Every
reader of a user's repositories (dbt staging, the summary, ml insights) goes through the view
app.user_scope, which leaves out what was recorded unreadable.
"""

from __future__ import annotations

import dataclasses

from ghmetrics_dagster import secrets, settings, warehouse
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.github.sync import fetch_repositories
from ghmetrics_dagster.warehouse import app_data

USER_TOKEN, SERVICE_TOKEN = "user token", "service token"


@dataclasses.dataclass
class Access:
    login: str
    checked_with: str  # USER_TOKEN or SERVICE_TOKEN
    readable: list[str]  # GitHub's spelling
    unreadable: dict[str, str]  # registered name -> why

    def summary(self) -> str:
        dropped = f"; not readable, left out of the scope: {', '.join(sorted(self.unreadable))}" if self.unreadable else ""
        return f"{self.login}: {len(self.readable)} repositories readable with the {self.checked_with}{dropped}"


def own_token(url: str, login: str) -> str | None:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        ciphertext = app_data.token_ciphertext(cur, login)
    return secrets.decrypt(ciphertext) if ciphertext else None


def record_access(url: str, login: str, repos: list[str], client: GitHubClient | None = None,
                  nodes: dict | None = None) -> Access:
    """Checks which of `repos` the user's own token (else the service tokens) can read and
    records it; `client` overrides the client built from the environment (tests), and `nodes`
    (the service tokens' answer for a user without a token, fetched once per wave) skips the check."""
    token = own_token(url, login)
    checked_with = USER_TOKEN if token else SERVICE_TOKEN
    if nodes is None:
        if client is None:
            tokens = [token] if token else settings.github_tokens()
            client = GitHubClient(settings.github_api_url(), settings.github_graphql_url(), tokens)
        nodes = fetch_repositories(client, repos) if repos else {}
    readable, unreadable = [], {}
    for name in repos:
        node = nodes.get(name.lower())
        if isinstance(node, dict) and isinstance(node.get("nameWithOwner"), str):
            readable.append(node["nameWithOwner"])
        else:
            unreadable[name] = node if isinstance(node, str) else "not readable"
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        rows = [(login, name, True, checked_with, None) for name in readable]
        rows += [(login, name, False, checked_with, why[:300]) for name, why in unreadable.items()]
        app_data.replace_repository_access(cur, login, rows)
    return Access(login, checked_with, readable, unreadable)


def scope_note(cur, login: str) -> str | None:
    """One line for the report: which token's visibility made the scope, and what it left out."""
    rows = app_data.repository_access(cur, login)
    if not rows:
        return None
    dropped = [name for _, name, readable in rows if not readable]
    token = "user's own token" if rows[0][0] == USER_TOKEN else "service token (no user token stored)"
    note = f"Scope: the repositories readable with the {token}"
    if dropped:
        note += f"; left out because that token cannot read them: {', '.join(dropped)}"
    return note + "."
