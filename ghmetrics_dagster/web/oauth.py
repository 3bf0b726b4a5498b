"""GitHub's OAuth web application flow, client side ("Authorizing OAuth apps" in GitHub's docs).

1. `authorize_url` sends the browser to GitHub with a random `state` kept in the session;
2. GitHub redirects back with `code` and the same `state` (checked by the caller);
3. `exchange_code` trades the code for the user's token;
4. `identity` and `readable_repositories` ask GitHub's API, with that token, who signed in and
   which repositories they can read.
"""

from __future__ import annotations

import dataclasses
import secrets
from urllib.parse import urlencode

import requests

from ghmetrics_dagster.core.redact import redact
from ghmetrics_dagster.github.client import GitHubClient, require_safe_transport
from ghmetrics_dagster.web.config import WebConfig

TIMEOUT_SECONDS = 15
MAX_REPOSITORY_PAGES = 10  # 1,000 repositories; beyond that an admin registers them


class OAuthError(RuntimeError):
    """Signing in failed; the message says why in words a person can act on."""


@dataclasses.dataclass(frozen=True)
class Identity:
    login: str
    name: str | None


def new_state() -> str:
    return secrets.token_urlsafe(24)


def states_match(expected: str | None, received: str | None) -> bool:
    return bool(expected) and bool(received) and secrets.compare_digest(expected, received)


def authorize_url(config: WebConfig, state: str, redirect_uri: str) -> str:
    params = {"client_id": config.client_id, "redirect_uri": redirect_uri, "scope": config.scopes,
              "state": state, "allow_signup": "false"}
    return f"{config.oauth_url}/login/oauth/authorize?{urlencode(params)}"


def exchange_code(config: WebConfig, code: str, redirect_uri: str) -> str:
    """The user's access token for `code`; OAuthError with GitHub's reason otherwise."""
    url = f"{config.oauth_url}/login/oauth/access_token"
    require_safe_transport(url, config.allow_insecure_http)
    try:
        response = requests.post(
            url,
            data={"client_id": config.client_id, "client_secret": config.client_secret, "code": code,
                  "redirect_uri": redirect_uri},
            headers={"Accept": "application/json"},
            timeout=TIMEOUT_SECONDS,
        )
        payload = response.json() if response.ok else {}
    except (requests.RequestException, ValueError) as exc:
        raise OAuthError(f"GitHub did not answer the token exchange ({type(exc).__name__}); try signing in again") from None
    if not response.ok:
        raise OAuthError(f"GitHub refused the token exchange (HTTP {response.status_code}); try signing in again")
    if "error" in payload:  # GitHub answers 200 with an error object
        reason = redact(str(payload.get("error_description") or payload["error"]), [config.client_secret, code])
        raise OAuthError(f"GitHub refused the sign-in: {reason}; try signing in again")
    token = payload.get("access_token")
    if not isinstance(token, str) or not token:
        raise OAuthError("GitHub's token answer had no access_token; try signing in again")
    return token


def user_client(config: WebConfig, token: str) -> GitHubClient:
    """A GitHub client acting as the signed-in user (their token only): sign-in's three questions share it."""
    return GitHubClient(config.api_url, config.graphql_url, [token], allow_insecure_http=config.allow_insecure_http)


def identity(client: GitHubClient) -> Identity:
    user = client.rest("/user").data
    if not isinstance(user, dict) or not isinstance(user.get("login"), str):
        raise OAuthError("GitHub's /user answer had no login; try signing in again")
    return Identity(user["login"], user.get("name") if isinstance(user.get("name"), str) else None)


def readable_repositories(client: GitHubClient) -> list[str]:
    """Every repository the token can read (GitHub's /user/repos), as owner/name."""
    names: list[str] = []
    page = client.rest("/user/repos", {"per_page": 100, "sort": "full_name"})
    for _ in range(MAX_REPOSITORY_PAGES):
        names += [repo["full_name"] for repo in page.data or [] if isinstance(repo, dict) and repo.get("full_name")]
        if not page.next_url:
            break
        page = client.rest(page.next_url)
    return names
