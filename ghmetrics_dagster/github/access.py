"""A user's scope: the repositories they are registered for AND their own token can read.

`record_access` runs at each sync with the user's own token only (the service tokens cannot
vouch for a user: they may read another user's private repository), or, for a user without a
token, with the service tokens, and records the answer in app.user_repository_access. Every
reader of a user's repositories (dbt staging, the summary, ml insights) goes through the view
app.user_scope, which leaves out what was recorded unreadable.
"""

from __future__ import annotations

import dataclasses

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.core import secrets
from ghmetrics_dagster.github import queries
from ghmetrics_dagster.github.client import GitHubClient, graphql_error
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


def own_token(url: str, keyring: secrets.Keyring, login: str) -> str | None:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        ciphertext = app_data.token_ciphertext(cur, login)
    return keyring.decrypt(ciphertext) if ciphertext else None


def fetch_repositories(client: GitHubClient, names: list[str]) -> dict[str, dict | str]:
    """name (lower case) -> repository node, or an error message."""
    found: dict[str, dict | str] = {}
    for start in range(0, len(names), queries.REPOSITORY_BATCH):
        batch = names[start : start + queries.REPOSITORY_BATCH]
        variables = {}
        for i, full_name in enumerate(batch):
            owner, name = full_name.split("/", 1)
            variables[f"o{i}"] = owner
            variables[f"n{i}"] = name
        data, gql_errors = client.graphql(queries.repositories_query(len(batch)), variables, allow_partial=True)
        by_alias = {}
        for error in gql_errors:
            path = error.get("path") or []
            if path:
                by_alias[str(path[0])] = error
            elif not data:
                raise graphql_error(gql_errors, client.redact)
        for i, full_name in enumerate(batch):
            node = data.get(f"r{i}") if isinstance(data, dict) else None
            if node is not None and node != {}:  # any other shape is checked, then quarantined
                found[full_name.lower()] = node
                continue
            error = by_alias.get(f"r{i}", {})
            if error.get("type") == "FORBIDDEN":
                found[full_name.lower()] = f"repository {full_name}: the token may not read it (FORBIDDEN); grant it access"
            else:
                found[full_name.lower()] = (
                    f"repository {full_name} not found or not visible to the token; "
                    "check the name in app.user_repositories and the token's access"
                )
    return found


def record_access(url: str, login: str, repos: list[str], *, with_own_token: bool,
                  client: GitHubClient | None = None, nodes: dict | None = None) -> Access:
    """Checks which of `repos` the user's own token (else the service tokens) can read and
    records it. `with_own_token` says which: the caller has read the user's token already.
    `client` carries the user's own token when they stored one, else the service tokens;
    `nodes` (the service tokens' answer for a user without a token, fetched once per wave)
    skips the check."""
    checked_with = USER_TOKEN if with_own_token else SERVICE_TOKEN
    if nodes is None:
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
