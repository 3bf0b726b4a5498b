"""GitHub's OAuth web application flow, served by the sandbox for its synthetic people.

    GET  /login/oauth/authorize?client_id=..&redirect_uri=..&state=..&scope=..
         a consent page: pick one of the organisation's people, Authorize or Cancel
    POST /login/oauth/authorize          the consent form; redirects to redirect_uri with
                                         ?code=..&state=.. (or ?error=access_denied&state=..)
    POST /login/oauth/access_token       client_id, client_secret, code[, redirect_uri] as a form
                                         or JSON; answers JSON with Accept: application/json,
                                         else a form-encoded body, as GitHub does

Shapes follow GitHub's documentation ("Authorizing OAuth apps"): codes are single use and
expire after 10 minutes; token errors answer 200 with `error`, `error_description` and
`error_uri` (bad_verification_code, incorrect_client_credentials, redirect_uri_mismatch). A
token issued here acts as the chosen person on the sandbox's REST and GraphQL APIs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import secrets
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

CODE_TTL_SECONDS = 600
DOCS = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
DEFAULT_CLIENT_ID = "Iv1.sandbox0client"


def default_client_secret(client_id: str = DEFAULT_CLIENT_ID) -> str:
    """The sandbox's deterministic secret for its default OAuth app (40 hex, like GitHub's)."""
    return hashlib.sha256(f"sandbox-oauth-{client_id}".encode()).hexdigest()[:40]


@dataclasses.dataclass
class Page:
    status: int
    body: bytes
    headers: dict


@dataclasses.dataclass
class _Grant:
    login: str
    client_id: str
    redirect_uri: str
    scope: str
    expires_at: float


class OAuthProvider:
    """Consent, codes and tokens. `issue_token(token, login)` registers a token with the API side."""

    def __init__(self, people: dict[str, str], issue_token, clients: dict[str, str] | None = None):
        self.people = dict(sorted(people.items()))  # login -> display name
        self.issue_token = issue_token
        self.clients = clients or {DEFAULT_CLIENT_ID: default_client_secret()}
        self._grants: dict[str, _Grant] = {}

    def handle(self, method: str, path: str, query: dict, body: bytes, content_type: str, accept: str) -> Page:
        if path == "/login/oauth/authorize" and method == "GET":
            return self._consent_page(query)
        if path == "/login/oauth/authorize" and method == "POST":
            return self._consent(dict(parse_qsl(body.decode("utf-8", "replace"))))
        if path == "/login/oauth/access_token" and method == "POST":
            form = _form(body, content_type) | query
            return self._access_token(form, "application/json" in (accept or ""))
        return _html(404, "<h1>Not Found</h1>")

    # --- the consent page --------------------------------------------------------------

    def _client_error(self, query: dict) -> str | None:
        if query.get("client_id") not in self.clients:
            return "The client_id is not that of an OAuth app registered with this sandbox."
        redirect = urlsplit(query.get("redirect_uri") or "")
        if redirect.scheme not in ("http", "https") or not redirect.netloc:
            return "redirect_uri must be an absolute http(s) URL."
        return None

    def _consent_page(self, query: dict) -> Page:
        problem = self._client_error(query)
        if problem:
            return _html(400, f"<h1>Application error</h1><p>{html.escape(problem)}</p>")
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(query.get(name, ""), quote=True)}">'
            for name in ("client_id", "redirect_uri", "state", "scope")
        )
        suggested = query.get("login")
        choices = "".join(
            f'<li><label><input type="radio" name="login" value="{html.escape(login, quote=True)}"'
            f'{" checked" if login == suggested or (not suggested and i == 0) else ""}> '
            f"{html.escape(login)} <span>({html.escape(name)})</span></label></li>"
            for i, (login, name) in enumerate(self.people.items())
        )
        scope = html.escape(query.get("scope") or "(no scope: public data only)")
        return _html(200, f"""<h1>Authorize application</h1>
<p>The sandbox's stand-in for github.com. Sign in as one of the organisation's synthetic people;
the application asks for the scopes: <code>{scope}</code>.</p>
<form method="post" action="/login/oauth/authorize">{hidden}
<fieldset><legend>Sign in as</legend><ul>{choices}</ul></fieldset>
<button type="submit" name="decision" value="authorize">Authorize</button>
<button type="submit" name="decision" value="cancel">Cancel</button>
</form>""")

    def _consent(self, form: dict) -> Page:
        problem = self._client_error(form)
        if problem:
            return _html(400, f"<h1>Application error</h1><p>{html.escape(problem)}</p>")
        redirect, state = form["redirect_uri"], form.get("state", "")
        if form.get("decision") != "authorize":
            return _redirect(redirect, {"error": "access_denied", "state": state,
                                        "error_description": "The user has denied your application access."})
        login = form.get("login")
        if login not in self.people:
            return _html(400, "<h1>Choose who signs in</h1><p>Pick one of the listed people.</p>")
        code = secrets.token_hex(10)
        self._grants[code] = _Grant(login, form["client_id"], redirect, form.get("scope", ""),
                                    time.monotonic() + CODE_TTL_SECONDS)
        return _redirect(redirect, {"code": code, "state": state})

    # --- the token exchange ------------------------------------------------------------

    def _access_token(self, form: dict, wants_json: bool) -> Page:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if client_id not in self.clients or not secrets.compare_digest(self.clients[client_id], secret or ""):
            return _token_reply({"error": "incorrect_client_credentials",
                                 "error_description": "The client_id and/or client_secret passed are incorrect.",
                                 "error_uri": DOCS + "#incorrect-client-credentials"}, wants_json)
        grant = self._grants.pop(form.get("code") or "", None)  # single use, even when refused below
        if grant is None or grant.client_id != client_id or grant.expires_at < time.monotonic():
            return _token_reply({"error": "bad_verification_code",
                                 "error_description": "The code passed is incorrect or expired.",
                                 "error_uri": DOCS + "#bad-verification-code"}, wants_json)
        if form.get("redirect_uri") and form["redirect_uri"] != grant.redirect_uri:
            return _token_reply({"error": "redirect_uri_mismatch",
                                 "error_description": "The redirect_uri MUST match the registered callback URL for this application.",
                                 "error_uri": DOCS + "#redirect-uri-mismatch"}, wants_json)
        token = "gho_" + secrets.token_hex(18)  # 40 characters, like GitHub's OAuth tokens
        self.issue_token(token, grant.login)
        return _token_reply({"access_token": token, "token_type": "bearer", "scope": grant.scope}, wants_json)


def _form(body: bytes, content_type: str) -> dict:
    if "json" in (content_type or ""):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return {}
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(body.decode("utf-8", "replace")))


def _token_reply(payload: dict, wants_json: bool) -> Page:
    if wants_json:
        return Page(200, json.dumps(payload).encode(), {"Content-Type": "application/json; charset=utf-8"})
    return Page(200, urlencode(payload).encode(), {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


def _redirect(url: str, params: dict) -> Page:
    separator = "&" if urlsplit(url).query else "?"
    return Page(302, b"", {"Location": url + separator + urlencode(params)})


def _html(status: int, content: str) -> Page:
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>GitHub sandbox</title></head>'
            f"<body>{content}</body></html>")
    return Page(status, page.encode(), {"Content-Type": "text/html; charset=utf-8"})
