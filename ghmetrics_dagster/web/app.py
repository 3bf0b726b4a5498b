"""The dashboard's web application (FastAPI): GitHub sign-in, pages rendered on the server, the
same data as JSON under /api/ with an OpenAPI document, health checks.

FastAPI gives typed JSON endpoints and their OpenAPI document for free and runs on Starlette,
which already serves Dagster's webserver here; pages are Jinja2 templates with Plotly charts
drawn by one copy of plotly.js the app serves itself (no CDN). Page views read only Postgres:
GitHub is called when someone signs in, never on a page view.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import plotly
import psycopg2.pool
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.github.errors import GitHubError
from ghmetrics_dagster.warehouse import app_data
from ghmetrics_dagster.web import accounts, oauth, views
from ghmetrics_dagster.web.cache import StampedCache
from ghmetrics_dagster.web.config import WebConfig

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
SESSION_COOKIE = "ghmetrics_session"
DB_CONNECTIONS = 8  # per process; pages spend most of their time outside the database
SECURITY_HEADERS = {
    # Chart data travels as inert JSON (<script type="application/json">), so no inline script runs.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self' {oauth}",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class SecurityHeaders:
    """Adds the security headers to every response. A plain ASGI middleware: Starlette's
    `@app.middleware("http")` wraps each response in a stream and cost a third of the
    throughput of a cached page in bench/web.py."""

    def __init__(self, app, headers: dict[str, str]):
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in self.headers if name not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SignInRequired(Exception):
    """A page asked for without a session: the handler redirects to the sign-in page."""


def create_app(config: WebConfig) -> FastAPI:
    # psycopg2's pool closes every connection beyond `minconn` when it is returned, so min = max
    # keeps them open (a new connection costs a Postgres process); the semaphore makes requests
    # wait for a free one instead of failing when all are out.
    pool = psycopg2.pool.ThreadedConnectionPool(DB_CONNECTIONS, DB_CONNECTIONS, warehouse.to_libpq_url(config.database_url),
                                                connect_timeout=10)
    free_connections = threading.BoundedSemaphore(DB_CONNECTIONS)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        pool.closeall()

    app = FastAPI(
        lifespan=lifespan,
        title="ghmetrics dashboard API",
        version="1",
        description="Engineering metrics of the signed-in user's repositories (session cookie from GitHub sign-in).",
        docs_url=None,  # the interactive docs load their code from a CDN; the OpenAPI document stays
        redoc_url=None,
    )
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["plotly_version"] = plotly.__version__
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_middleware(SessionMiddleware, secret_key=config.session_secret, session_cookie=SESSION_COOKIE,
                       max_age=int(config.session_hours * 3600), same_site="lax", https_only=config.secure_cookies)
    csp_headers = {k: v.format(oauth=config.oauth_url) for k, v in SECURITY_HEADERS.items()}
    cache = StampedCache()
    app.state.cache = cache

    app.add_middleware(SecurityHeaders, headers=csp_headers)

    @contextlib.contextmanager
    def database() -> Iterator:
        with free_connections:
            conn = pool.getconn()
            try:
                with conn:  # commit on success, roll back on error
                    yield conn
            finally:
                pool.putconn(conn)

    # --- sessions, CSRF ---------------------------------------------------------------------

    def current_login(request: Request) -> str | None:
        return request.session.get("login")

    def page_login(request: Request) -> str:
        login = current_login(request)
        if not login:
            raise SignInRequired()
        return login

    def api_login(request: Request) -> str:
        login = current_login(request)
        if not login:
            raise HTTPException(401, "sign in first: open / in a browser and sign in with GitHub")
        return login

    def csrf_token(request: Request) -> str:
        if "csrf" not in request.session:
            request.session["csrf"] = secrets.token_urlsafe(24)
        return request.session["csrf"]

    def check_csrf(request: Request, token: str) -> None:
        expected = request.session.get("csrf")
        origin = request.headers.get("origin")
        same_origin = origin is None or urlsplit(origin).netloc == request.url.netloc
        if not expected or not secrets.compare_digest(expected, token or "") or not same_origin:
            raise HTTPException(403, "the form has expired or came from another site; reload the page and try again")

    def redirect_uri(request: Request) -> str:
        base = config.public_url or str(request.base_url).rstrip("/")
        return base + "/auth/callback"

    def render(request: Request, template: str, http_status: int = 200, **context) -> HTMLResponse:
        login = current_login(request)
        context.update(request=request, login=login, csrf=csrf_token(request) if login else None)
        return templates.TemplateResponse(request, template, context, status_code=http_status)

    @app.exception_handler(SignInRequired)
    async def to_sign_in(request: Request, exc: SignInRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        request.session["next"] = target if target.startswith("/") and not target.startswith("//") else "/"
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if request.url.path.startswith("/api/") or request.url.path in ("/healthz", "/readyz"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return render(request, "error.html", http_status=exc.status_code, status_code=exc.status_code, detail=exc.detail)

    # --- signing in and out -----------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request):
        if current_login(request):
            return RedirectResponse("/", status_code=303)
        return render(request, "login.html", error=request.session.pop("error", None), oauth_url=config.oauth_url)

    @app.get("/auth/github", include_in_schema=False)
    def start_sign_in(request: Request):
        state = oauth.new_state()
        request.session["oauth_state"] = state
        return RedirectResponse(oauth.authorize_url(config, state, redirect_uri(request)), status_code=303)

    @app.get("/auth/callback", include_in_schema=False)
    def finish_sign_in(request: Request, code: str | None = None, state: str | None = None,
                       error: str | None = None, error_description: str | None = None):
        expected = request.session.pop("oauth_state", None)
        if not oauth.states_match(expected, state):
            # A forged, replayed or missing state: never exchange the code.
            raise HTTPException(400, "this sign-in link is not one this site started (state mismatch); sign in again")
        if error:
            request.session["error"] = ("You cancelled signing in." if error == "access_denied"
                                        else f"GitHub did not sign you in: {error_description or error}.")
            return RedirectResponse("/login", status_code=303)
        if not code:
            raise HTTPException(400, "GitHub's answer had no code; sign in again")
        try:
            token = oauth.exchange_code(config, code, redirect_uri(request))
            client = oauth.user_client(config, token)
            who = oauth.identity(client)
            signed = accounts.record_sign_in(config, who, token, oauth.readable_repositories(client), client)
        except (oauth.OAuthError, GitHubError) as exc:
            request.session["error"] = str(exc)
            return RedirectResponse("/login", status_code=303)
        target = request.session.pop("next", "/")
        request.session.clear()  # a new session for the signed-in user (no fixation)
        request.session.update(login=signed.login, csrf=secrets.token_urlsafe(24))
        log.info("signed in %s (login %s, %s repositories in scope)", signed.login, signed.login_id, signed.repositories)
        return RedirectResponse(target, status_code=303)

    @app.post("/logout", include_in_schema=False)
    def sign_out(request: Request, csrf: str = Form("")):
        check_csrf(request, csrf)
        request.session.clear()
        request.session["error"] = "You are signed out."
        return RedirectResponse("/login", status_code=303)

    # --- pages ------------------------------------------------------------------------------

    # Each page and endpoint reads the user's state (one query), then what it shows from the
    # cache, computed again only when a wave has ended or the user signed in since.

    def repositories_of(cur, login: str, state: views.UserState) -> list[str]:
        return cache.get(("repositories", login), state.stamp, lambda: views.scope_repositories(cur, login))

    def scope_data(cur, conn, login: str, state: views.UserState, repository: str | None = None) -> dict:
        def compute() -> dict:
            view = views.scope_view(conn, login, repository)
            data = {"view": view, "chart_json": _chart_json(view), "repositories": repositories_of(cur, login, state)}
            if repository:
                data["behind"] = views.rows_behind(cur, repository, view.get("latest_week"))
            else:
                data["summary"] = views.latest_summary(cur, login)
            return data

        return cache.get(("scope", login, repository), state.stamp, compute)

    def gate(cur, login: str, state: views.UserState, owner: str, name: str) -> str:
        """The repository as stored when it is in the user's scope; 404 otherwise."""
        repository = cache.get(("gate", login, f"{owner}/{name}".lower()), state.stamp,
                               lambda: app_data.scope_repository(cur, login, f"{owner}/{name}"))
        if repository is None:
            raise HTTPException(404, "no such repository among yours")
        return repository

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def my_metrics(request: Request):
        login = page_login(request)
        with database() as conn, conn.cursor() as cur:
            state = views.user_state(cur, login)
            data = scope_data(cur, conn, login, state)
        return render(request, "metrics.html", status=views.refresh_status(state, config.refresh_ttl_minutes),
                      page="me", **data)

    @app.get("/repos/go", include_in_schema=False)
    def repository_picker(request: Request, repo: str = ""):
        # The repository picker without JavaScript: a GET form with ?repo=owner/name.
        page_login(request)
        owner, _, name = repo.partition("/")
        if not owner or not name or "/" in name:
            raise HTTPException(404, "no such repository among yours")
        return RedirectResponse(f"/repos/{quote(owner)}/{quote(name)}", status_code=303)

    @app.get("/repos/{owner}/{name}", response_class=HTMLResponse, include_in_schema=False)
    def repository_page(request: Request, owner: str, name: str):
        login = page_login(request)
        with database() as conn, conn.cursor() as cur:
            state = views.user_state(cur, login)
            repository = gate(cur, login, state, owner, name)
            data = scope_data(cur, conn, login, state, repository)
        return render(request, "metrics.html", status=views.refresh_status(state, config.refresh_ttl_minutes),
                      summary=None, page="repo", **data)

    @app.get("/team", response_class=HTMLResponse, include_in_schema=False)
    def team_page(request: Request):
        login = page_login(request)
        with database() as conn, conn.cursor() as cur:
            state = views.user_state(cur, login)
            rows = cache.get(("team", login), state.stamp, lambda: views.team_rows(cur, login))
            repositories = repositories_of(cur, login, state)
        return render(request, "team.html", rows=rows, status=views.refresh_status(state, config.refresh_ttl_minutes),
                      repositories=repositories, page="team", metrics=views.METRICS, fmt=views.fmt)

    @app.get(f"/assets/plotly-{plotly.__version__}.min.js", include_in_schema=False)
    def plotly_js():
        # Versioned name: browsers keep it for a year and fetch a new one after an upgrade.
        return FileResponse(PLOTLY_JS, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=31536000, immutable"})

    # --- API --------------------------------------------------------------------------------

    @app.get("/api/me", tags=["user"], summary="Who is signed in and the repositories they can see")
    def api_me(request: Request) -> dict:
        login = api_login(request)
        with database() as conn, conn.cursor() as cur:
            state = views.user_state(cur, login)
            repositories = repositories_of(cur, login, state)
        return {"login": login, "repositories": repositories}

    @app.get("/api/status", response_class=JSONResponse, tags=["user"], summary="Whether the user's data is fresh or being refreshed")
    def api_status(request: Request) -> Response:
        login = api_login(request)
        with database() as conn, conn.cursor() as cur:
            state = views.user_state(cur, login)
        return Response(_json_bytes(views.refresh_status(state, config.refresh_ttl_minutes)), media_type="application/json")

    @app.get("/api/metrics", response_class=JSONResponse, tags=["metrics"], summary="The user's metrics over all their repositories")
    def api_metrics(request: Request) -> Response:
        login = api_login(request)
        with database() as conn, conn.cursor() as cur:
            state = views.user_state(cur, login)
            def compute() -> bytes:
                data = scope_data(cur, conn, login, state)
                return _json_bytes({**data["view"], "summary": data["summary"]})

            body = cache.get(("api-metrics", login), state.stamp, compute)
        return Response(body, media_type="application/json")

    @app.get("/api/repos", response_class=JSONResponse, tags=["metrics"], summary="The user's repositories side by side")
    def api_repositories(request: Request) -> Response:
        login = api_login(request)
        with database() as conn, conn.cursor() as cur:
            state = views.user_state(cur, login)
            body = cache.get(("api-team", login), state.stamp,
                             lambda: _json_bytes({"repositories": views.team_rows(cur, login)}))
        return Response(body, media_type="application/json")

    @app.get("/api/repos/{owner}/{name}", response_class=JSONResponse, tags=["metrics"],
             summary="One repository's metrics and the rows behind its latest lead time and failures",
             responses={404: {"description": "Not one of the user's repositories"}})
    def api_repository(request: Request, owner: str, name: str) -> Response:
        login = api_login(request)
        with database() as conn, conn.cursor() as cur:
            state = views.user_state(cur, login)
            repository = gate(cur, login, state, owner, name)

            def compute() -> bytes:
                data = scope_data(cur, conn, login, state, repository)
                return _json_bytes({**data["view"], "behind": data["behind"]})

            body = cache.get(("api-repo", login, repository), state.stamp, compute)
        return Response(body, media_type="application/json")

    @app.get("/healthz", tags=["operations"], summary="The process answers")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The warehouse answers and the marts exist")
    def readyz() -> Response:
        try:
            with database() as conn, conn.cursor() as cur:
                cur.execute("select to_regclass('marts.fct_dora_weekly') is not null")
                marts = cur.fetchone()[0]
        except psycopg2.Error as exc:
            return JSONResponse({"status": "unavailable", "reason": f"warehouse: {type(exc).__name__}"}, status_code=503)
        if not marts:
            return JSONResponse({"status": "unavailable", "reason": "the marts are not built yet"}, status_code=503)
        return JSONResponse({"status": "ready"})

    return app


def _json_bytes(value) -> bytes:
    """Dates, datetimes and decimals as JSON can carry them, encoded once for the cache."""
    return json.dumps(value, default=_default, separators=(",", ":")).encode()


def _default(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return float(value)


def _chart_json(view: dict) -> str:
    # `</` cannot end the <script type="application/json"> block early.
    return json.dumps(view.get("charts", {}), default=_default).replace("</", "<\\/")
