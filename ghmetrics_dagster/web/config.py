"""The dashboard's settings, read once from the environment (or given by a test or the demo)."""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path

from ghmetrics_dagster.core import secrets as token_secrets
from ghmetrics_dagster.core.settings import DEFAULT_GITHUB_API_URL, Settings

DEFAULT_OAUTH_URL = "https://github.com"
# OAuth apps have no read-only scope for private repositories: `repo` is the least that reads
# them, `read:org` lists organisation membership. Narrow it (e.g. to "read:org" for public
# repositories only) with GHMETRICS_OAUTH_SCOPES.
DEFAULT_SCOPES = "repo read:org"


class WebConfigError(ValueError):
    """A setting the dashboard cannot start without; the message names it."""


@dataclasses.dataclass(frozen=True)
class WebConfig:
    database_url: str
    client_id: str
    client_secret: str = dataclasses.field(repr=False)
    session_secret: str = dataclasses.field(repr=False)
    oauth_url: str = DEFAULT_OAUTH_URL  # github.com, a GitHub Enterprise host, or the sandbox
    api_url: str = DEFAULT_GITHUB_API_URL
    graphql_url: str = DEFAULT_GITHUB_API_URL + "/graphql"
    scopes: str = DEFAULT_SCOPES
    public_url: str | None = None  # where browsers reach the app (the OAuth callback's base)
    secure_cookies: bool = False  # set behind https: the session cookie is then Secure
    refresh_ttl_minutes: float = 60.0
    session_hours: float = 8.0
    organizations: tuple[str, ...] = ()  # only their repositories are recorded at sign-in (none: all)
    # Encrypts the tokens stored at sign-in (the code server decrypts them with the same keys).
    keyring: token_secrets.Keyring | None = dataclasses.field(default=None, repr=False)
    allow_insecure_http: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, database_url: str, **overrides) -> WebConfig:
        web = settings.web
        values = {
            "database_url": database_url,
            "client_id": web.oauth_client_id,
            "client_secret": web.oauth_client_secret,
            "session_secret": web.session_secret or _stored_session_secret(settings.home()),
            "oauth_url": web.oauth_url,
            "api_url": settings.github_api_url,
            "graphql_url": settings.github_graphql_url,
            "scopes": web.scopes or DEFAULT_SCOPES,
            "public_url": web.public_url,
            "secure_cookies": web.secure_cookies,
            "refresh_ttl_minutes": settings.refresh_ttl_minutes,
            "organizations": web.organizations,
            "keyring": token_secrets.keyring(settings),
            "allow_insecure_http": settings.allow_insecure_http,
        }
        values.update(overrides)
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        if not self.client_id or not self.client_secret:
            raise WebConfigError(
                "no GitHub OAuth app configured: set GHMETRICS_OAUTH_CLIENT_ID and GHMETRICS_OAUTH_CLIENT_SECRET "
                "(register an OAuth app with the callback URL <public URL>/auth/callback)"
            )
        if len(self.session_secret) < 32:
            raise WebConfigError("GHMETRICS_WEB_SESSION_SECRET is too short: use at least 32 random characters")


def _stored_session_secret(home: Path) -> str:
    """A random secret kept in the ghmetrics home (0600), so sessions survive a restart."""
    path = home / "web_session.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # kept from before, or written by another worker just now
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
