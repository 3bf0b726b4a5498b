"""The GitHub sandbox server: GitHub's REST and GraphQL APIs on 127.0.0.1 over a synthetic
organisation, with GitHub's rate limits, conditional requests and injectable faults.

    with run_sandbox(seed=1) as sandbox:
        requests.get(sandbox.rest_url + "/repos/acme/...", headers={"Authorization": f"token {sandbox.tokens[0]}"})
        requests.post(sandbox.graphql_url, json={"query": ...}, headers=...)

REST lives at the root (like api.github.com), GraphQL at /graphql, github.com's OAuth web flow
at /login/oauth/ (oauth.py: a consent page for the synthetic people, codes, tokens). Tokens: `Authorization:
token <t>` or `bearer <t>`; token i acts as the organisation's i-th human user (sorted by
login). Unknown and revoked tokens get 401 "Bad credentials". REST without a token is
anonymous (60 requests an hour), GraphQL without a token is 401.

Every request is appended to a JSON-lines log (method, path, status, resource, cost, token
fingerprint — never the token). Response bodies depend only on the organisation, the request
and the server's root URL: the same seed and the same requests give byte-identical bodies
(GraphQL `rateLimit.resetAt` and rate-limit headers use the real clock).

GitHub behaviour implemented (see rest.py and graphql_api.py for shapes and caps):
- X-RateLimit-Limit/Remaining/Used/Reset/Resource on every response; REST costs 1 per
  request, GraphQL the query's cost; /rate_limit and 304s cost nothing.
- ETag (weak, over the body and the token) and 304 Not Modified on If-None-Match.
- Primary limit exhausted: REST 403 "API rate limit exceeded", GraphQL 200 with a
  RATE_LIMITED error (as GitHub answers GraphQL), both with remaining 0 and the reset time.
- Secondary limits (FaultConfig): 403 for too many concurrent requests, 429 for too many
  requests per minute, both with Retry-After.
- Faults (FaultConfig, seeded, in request order): 5xx, hangs past the client's timeout
  (then 504), truncated JSON bodies, and 502 for GraphQL queries above a node count.
- Copilot usage metrics reports (copilot.py): the four report endpoints answer signed
  `download_links` to NDJSON files served under /_reports/copilot/ without an API token (a
  request carrying an Authorization header there is refused with 400, as a storage service
  does); `SandboxHandle.set_copilot_reports` makes an organisation answer 403 or 404.
- Scripted replies (`SandboxHandle.script`): a test's own answer to the next matching
  requests, e.g. an error that echoes the credential, a body that drips one byte at a time,
  a huge body, or a malformed object, to prove the client survives them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from ghmetrics_dagster.sandbox import copilot, graphql_api, graphql_objects, model, oauth, rest
from ghmetrics_dagster.sandbox.limits import FaultConfig, FaultInjector, RateLimits, fingerprint

log = logging.getLogger(__name__)

GRAPHQL_DOCS = "https://docs.github.com/graphql"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
SECONDARY_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
_REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 422: "Unprocessable Entity", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def default_tokens(count: int = 3) -> list[str]:
    """Deterministic sandbox tokens shaped like GitHub's classic ones ("ghp_sandbox" + 36)."""
    return [f"ghp_sandbox{hashlib.sha256(f'sandbox-token-{i}'.encode()).hexdigest()[:36]}" for i in range(count)]


def _dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclasses.dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict = dataclasses.field(default_factory=dict)
    cost: int = 0
    resource: str = "core"
    fault: str | None = None
    node_count: int | None = None
    operation: str | None = None


@dataclasses.dataclass
class Scripted:
    """One scripted answer. `body` may contain `{authorization}` (the request's credential, as a
    careless server would echo it). `drip_s` sends the body one byte per interval;
    `filler_bytes` appends that many bytes of JSON whitespace, streamed; `times` is how many
    matching requests get it (None: all). `match` is a substring of the path (or of a GraphQL
    request's body)."""

    match: str
    status: int = 200
    body: str | bytes = b""
    headers: dict = dataclasses.field(default_factory=dict)
    drip_s: float = 0.0
    filler_bytes: int = 0
    times: int | None = 1
    method: str | None = None
    omit_length: bool = False  # no Content-Length: the body ends when the connection closes
    token: str | None = None  # only requests made with this token (e.g. a user's, who cannot see a repository)


def _read_issued(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


class SandboxServer:
    """The HTTP server and its state; use `run_sandbox` rather than this class directly."""

    def _issue_token(self, token: str, login: str) -> None:
        self.token_logins[token] = login
        if self.issued_tokens_path:
            issued = {**_read_issued(self.issued_tokens_path), token: login}
            temporary = f"{self.issued_tokens_path}.tmp"
            with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
                json.dump(issued, out)
            os.replace(temporary, self.issued_tokens_path)

    def __init__(self, org: model.Organization, *, tokens: list[str], rest_limit: int, graphql_limit: int,
                 latency_ms: float, faults: FaultConfig, port: int, request_log: str | None,
                 query_cache_size: int = 256, issued_tokens_path: str | None = None):
        self.org = org
        self.lock = threading.RLock()  # guards the organisation: hold it to mutate `org`
        humans = sorted(login for login, user in org.users.items() if not user.is_bot) or [None]
        self.token_logins = {token: humans[i % len(humans)] for i, token in enumerate(tokens)}
        self.revoked: set[str] = set()
        self.hidden: frozenset = frozenset()  # (login, repository lower-cased) pairs: see SandboxHandle.hide
        self.copilot_statuses: dict[str, int] = {}  # see SandboxHandle.set_copilot_reports
        people = {login: user.name for login, user in org.users.items() if not user.is_bot}
        self.issued_tokens_path = issued_tokens_path
        if issued_tokens_path:
            # Tokens signed in through the OAuth pages, kept across restarts of the same
            # organisation: the users' stored tokens keep working.
            self.token_logins.update(
                (token, login) for token, login in _read_issued(issued_tokens_path).items() if login in people
            )
        self.oauth = oauth.OAuthProvider(people, issue_token=self._issue_token)
        self.limits = RateLimits(rest_limit, graphql_limit)
        self.injector = FaultInjector(faults)
        self.latency_ms = latency_ms
        self.cache = graphql_api.QueryCache(size=query_cache_size)
        self.stopping = threading.Event()
        self._log_lock = threading.Lock()
        self._entries: list[dict] = []
        self._log_file = open(request_log, "a", encoding="utf-8") if request_log else None  # noqa: SIM115
        self._seq = 0
        self.scripted: list[Scripted] = []
        self._connections: set = set()
        self.httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        self.httpd.sandbox = self
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="github-sandbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        with self._log_lock:
            connections = list(self._connections)
        for conn in connections:  # wake keep-alive threads blocked on reads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.httpd.server_close()
        self._thread.join(timeout=5)
        if self._log_file:
            self._log_file.close()

    # --- the request pipeline ---------------------------------------------------------

    def dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        started = time.perf_counter()
        cpu_started = time.thread_time()
        with self._log_lock:
            self._seq += 1
            seq = self._seq
        url = urlsplit(handler.path)
        path = url.path.rstrip("/") or "/"
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""

        if path.startswith("/login/oauth/"):  # github.com's OAuth pages: no API token, no rate limit
            page = self.oauth.handle(method, path, query, body, handler.headers.get("Content-Type") or "",
                                     handler.headers.get("Accept") or "")
            reply = _Reply(page.status, page.body, page.headers, resource="oauth")
            self._record(seq, method, url, reply, "anonymous", started, cpu_started)
            self._send(handler, reply)
            return
        if path.startswith(copilot.DOWNLOAD_PREFIX):  # a signed report link: another service, no API token
            reply = self._report_file(method, path, query, handler.headers.get("Authorization"))
            self._record(seq, method, url, reply, "anonymous", started, cpu_started)
            self._send(handler, reply)
            return
        token, key, viewer, reply = self._authenticate(handler.headers.get("Authorization"), path)
        is_graphql = path == "/graphql"
        if reply is not None:  # refused before admission (401): GitHub still sends the limit headers
            reply.resource = "graphql" if is_graphql else "core"
            self._limit_headers(reply, "anonymous")
        scripted = self._take_scripted(method, path, body, token) if reply is None else None
        if scripted is not None:
            self._send_scripted(handler, scripted, handler.headers.get("Authorization") or "")
            return
        try:
            if reply is None:
                if path == "/rate_limit" and method == "GET":
                    reply = self._rate_limit(key)
                else:
                    reply = self._admitted(handler, method, path, query, body, key, viewer, seq, is_graphql)
        except Exception:  # a sandbox bug must still answer, and loudly
            log.exception("sandbox failed on %s %s", method, url.path)
            reply = self._message(500, "Sandbox error: see the server log")
        reply.headers.setdefault("X-GitHub-Request-Id", f"SBX:{seq:08X}")
        # Logged before sending, so a client that has its answer also finds it in the log.
        self._record(seq, method, url, reply, key, started, cpu_started)
        self._send(handler, reply)

    def _report_file(self, method: str, path: str, query: dict, authorization: str | None) -> _Reply:
        """A Copilot report file behind a signed link. Like a storage service, it refuses a
        request that also carries an Authorization header: the link's signature is the only
        credential (and an API token must never travel to that host)."""
        text = {"Content-Type": "application/xml"}
        if method != "GET":
            return _Reply(405, b"", text, resource="download")
        if authorization:
            body = b"<Error><Code>InvalidAuthenticationInfo</Code><Message>Only one auth mechanism allowed</Message></Error>"
            return _Reply(400, body, text, resource="download", fault="authorization_sent")
        with self.lock:
            status, body = copilot.download(self.org, self.base, path, query)
        headers = {"Content-Type": "application/x-ndjson"} if status == 200 else text
        return _Reply(status, body, headers, resource="download")

    def _authenticate(self, header: str | None, path: str):
        """(token, limit key, viewer login, early reply or None)."""
        if not header:
            if path == "/graphql":
                return None, "anonymous", None, self._message(401, "This endpoint requires you to be authenticated.", GRAPHQL_DOCS)
            return None, "anonymous", None, None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() not in ("token", "bearer") or token not in self.token_logins or token in self.revoked:
            return None, "invalid", None, self._message(401, "Bad credentials", "https://docs.github.com/rest")
        return token, fingerprint(token), self.token_logins[token], None

    def _admitted(self, handler, method, path, query, body, key, viewer, seq, is_graphql) -> _Reply:
        config = self.injector.config
        refused, retry_after = self.limits.enter(key, config)
        if refused:
            status = 403 if refused == "concurrency" else 429
            reply = self._message(status, "You have exceeded a secondary rate limit. Please wait a few minutes before "
                                  "you try again. If you reach out to GitHub Support for help, please include the "
                                  f"request ID SBX:{seq:08X}.", SECONDARY_DOCS)
            reply.headers["Retry-After"] = str(retry_after)
            reply.resource = "graphql" if is_graphql else "core"
            reply.fault = "secondary_" + refused
            self._limit_headers(reply, key)
            return reply
        try:
            if self.latency_ms:  # inside the in-flight window, so latency makes requests overlap
                time.sleep(self.latency_ms / 1000)
            fault, status = self.injector.draw()
            if fault == "hang":
                self.stopping.wait(config.hang_seconds)
                reply = self._message(504, "We couldn't respond to your request in time. Sorry about that.")
            elif fault == "5xx":
                reply = self._message(status, "Server Error" if status != 503 else "Service Unavailable")
            elif is_graphql and method == "POST":
                reply = self._graphql(body, key, viewer, seq)
            elif method in ("GET", "HEAD") and not is_graphql:
                reply = self._rest(handler, path, query, key, viewer)
            else:
                reply = self._message(404, "Not Found", "https://docs.github.com/rest")
            if fault == "truncated_json" and reply.status == 200 and reply.body:
                reply.body = reply.body[: len(reply.body) // 2]
            if fault:
                reply.fault = fault
            reply.resource = "graphql" if is_graphql else "core"
            self._limit_headers(reply, key)
            return reply
        finally:
            self.limits.leave(key)

    def _message(self, status: int, message: str, docs: str = "https://docs.github.com/rest") -> _Reply:
        return _Reply(status, _dumps({"message": message, "documentation_url": docs}),
                      {"Content-Type": "application/json; charset=utf-8"})

    def _limit_headers(self, reply: _Reply, key: str) -> None:
        budget = self.limits.budget(key, reply.resource)
        now = self.limits.clock()
        reply.headers.update({
            "X-RateLimit-Limit": str(budget.limit),
            "X-RateLimit-Remaining": str(budget.remaining),
            "X-RateLimit-Reset": str(budget.reset_at(now)),
            "X-RateLimit-Used": str(budget.used),
            "X-RateLimit-Resource": reply.resource,
        })

    def _rate_limit(self, key: str) -> _Reply:
        now = self.limits.clock()

        def entry(resource):
            b = self.limits.budget(key, resource)
            return {"limit": b.limit, "used": b.used, "remaining": b.remaining, "reset": b.reset_at(now)}

        core, graphql = entry("core"), entry("graphql")
        search = {"limit": 30, "used": 0, "remaining": 30, "reset": int(now) + 60}
        body = {"resources": {"core": core, "graphql": graphql, "search": search}, "rate": core}
        reply = _Reply(200, _dumps(body), {"Content-Type": "application/json; charset=utf-8"})
        self._limit_headers(reply, key)
        return reply

    # --- REST ------------------------------------------------------------------------------

    def _rest(self, handler, path, query, key, viewer) -> _Reply:
        with self.lock:
            api = rest.RestApi(self.org, self.base, viewer, self.hidden, self.copilot_statuses)
            response = api.handle(unquote(path), query)
            payload = _dumps(response.body)
        headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
        if response.status == 200:
            etag = 'W/"' + hashlib.sha256(key.encode() + b"\0" + payload).hexdigest() + '"'
            headers["ETag"] = etag
            headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
            headers["Vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
            if _etag_matches(handler.headers.get("If-None-Match"), etag):
                # A conditional hit is free, as on GitHub.
                self.limits.count(key, resource="core", not_modified=True)
                return _Reply(304, b"", {"ETag": etag, "Cache-Control": headers["Cache-Control"], "Vary": headers["Vary"]})
        charged, _ = self.limits.try_charge(key, "core", 1)
        self.limits.count(key, resource="core")
        if not charged:
            user_id = self._user_id(key, viewer)
            return self._message(403, f"API rate limit exceeded for user ID {user_id}.", RATE_DOCS)
        return _Reply(response.status, payload, headers, cost=1)

    def _user_id(self, key: str, viewer: str | None):
        if viewer and viewer in self.org.users:
            return self.org.users[viewer].database_id
        return key

    # --- GraphQL -------------------------------------------------------------------------

    def _graphql(self, body: bytes, key: str, viewer: str | None, seq: int) -> _Reply:
        self.limits.count(key, resource="graphql")
        json_headers = {"Content-Type": "application/json; charset=utf-8"}
        try:
            request = json.loads(body or b"null")
        except ValueError:
            return self._message(400, "Problems parsing JSON", GRAPHQL_DOCS)
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            return _Reply(200, _dumps({"errors": [{"message": "A query attribute must be specified and must be a string."}]}), json_headers)
        variables = request.get("variables") or {}
        operation_name = request.get("operationName") or None
        prepared = self.cache.get(request["query"], operation_name)
        if prepared.errors:
            return _Reply(200, _dumps({"errors": prepared.errors}), json_headers)
        try:
            if not isinstance(variables, dict):
                raise graphql_api.QueryRejected([{"message": "Variables are invalid JSON."}])
            coerced = graphql_api.coerce_variables(self.cache.schema, prepared, variables)
            cost = graphql_api.github_cost(prepared, coerced)
        except graphql_api.QueryRejected as rejected:
            return _Reply(200, _dumps({"errors": rejected.errors}), json_headers)
        operation = prepared.operation.name.value if prepared.operation.name else None
        threshold = self.injector.config.graphql_502_node_threshold
        if threshold is not None and cost.node_count > threshold:
            message = ("Something went wrong while executing your query. This may be the result of a timeout, or it "
                       f"could be a GitHub bug. Please include `SBX:{seq:08X}` when reporting this issue.")
            return _Reply(502, _dumps({"data": None, "errors": [{"message": message}]}), json_headers,
                          fault="graphql_502", node_count=cost.node_count, operation=operation)
        dry_run = graphql_api.is_dry_run(prepared, coerced)
        charged, budget = self.limits.try_charge(key, "graphql", 0 if dry_run else cost.cost)
        if not charged:
            user_id = self._user_id(key, viewer)
            errors = [{"type": "RATE_LIMITED", "message": f"API rate limit exceeded for user ID {user_id}."}]
            return _Reply(200, _dumps({"errors": errors}), json_headers, node_count=cost.node_count, operation=operation)
        rate_limit = {
            "cost": cost.cost, "limit": budget.limit, "nodeCount": cost.node_count, "remaining": budget.remaining,
            "used": budget.used, "resetAt": graphql_objects.iso(
                dt.datetime.fromtimestamp(budget.reset_at(self.limits.clock()), dt.UTC)),
        }
        with self.lock:
            renderer = graphql_objects.Renderer(self.org)
            root = graphql_objects.query_root(renderer, viewer, rate_limit, self.hidden)
            result = graphql_api.execute(prepared, root, graphql_api.ExecutionContext(coerced))
            payload = _dumps(result)
        return _Reply(200, payload, json_headers, cost=0 if dry_run else cost.cost,
                      node_count=cost.node_count, operation=operation)

    # --- output ------------------------------------------------------------------------------

    def _send(self, handler: BaseHTTPRequestHandler, reply: _Reply) -> None:
        lines = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}", "Server: GitHub.com"]
        headers = dict(reply.headers)
        headers["Content-Length"] = str(len(reply.body))
        if handler.close_connection:
            headers["Connection"] = "close"
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if handler.command != "HEAD":
            data += reply.body
        try:
            handler.wfile.write(data)
        except OSError:
            handler.close_connection = True

    def _take_scripted(self, method: str, path: str, body: bytes, token: str | None) -> Scripted | None:
        with self._log_lock:
            for scripted in self.scripted:
                if scripted.method not in (None, method) or scripted.token not in (None, token):
                    continue
                if scripted.match not in path and scripted.match.encode() not in body:
                    continue
                if scripted.times is not None:
                    scripted.times -= 1
                    if scripted.times <= 0:
                        self.scripted.remove(scripted)
                return scripted
        return None

    def _send_scripted(self, handler: BaseHTTPRequestHandler, scripted: Scripted, authorization: str) -> None:
        body = scripted.body if isinstance(scripted.body, bytes) else scripted.body.encode()
        body = body.replace(b"{authorization}", authorization.encode("latin-1", "replace"))
        total = len(body) + scripted.filler_bytes
        headers = {"Content-Type": "application/json; charset=utf-8", **scripted.headers, "Connection": "close"}
        if not scripted.omit_length:
            headers["Content-Length"] = str(total)
        head = [f"HTTP/1.1 {scripted.status} {_REASONS.get(scripted.status, 'Status')}", "Server: GitHub.com"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        handler.close_connection = True
        try:
            handler.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            if scripted.drip_s:
                for i in range(len(body)):
                    handler.wfile.write(body[i : i + 1])
                    handler.wfile.flush()
                    if self.stopping.wait(scripted.drip_s):
                        return
            else:
                handler.wfile.write(body)
            chunk = b" " * 65536
            left = scripted.filler_bytes
            while left > 0 and not self.stopping.is_set():
                handler.wfile.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
        except OSError:  # the client gave up, as it should
            pass

    def _record(self, seq, method, url, reply: _Reply, key: str, started: float, cpu_started: float) -> None:
        if reply.fault:
            self.limits.count(key, fault=reply.fault)
        entry = {
            "seq": seq, "time": round(time.time(), 3), "method": method, "path": url.path, "query": url.query,
            "status": reply.status, "resource": reply.resource, "cost": reply.cost,
            "token_fingerprint": key, "not_modified": reply.status == 304, "fault": reply.fault,
            "node_count": reply.node_count, "operation": reply.operation,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            # CPU time of the serving thread: what one request costs the server on one core.
            "cpu_ms": round((time.thread_time() - cpu_started) * 1000, 3),
        }
        with self._log_lock:
            self._entries.append(entry)
            if self._log_file:
                self._log_file.write(json.dumps(entry) + "\n")
                self._log_file.flush()

    def entries(self) -> list[dict]:
        with self._log_lock:
            return [dict(e) for e in self._entries]

    def track(self, conn, add: bool) -> None:
        with self._log_lock:
            (self._connections.add if add else self._connections.discard)(conn)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag[2:] if etag.startswith("W/") else etag
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == bare:
            return True
    return False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of concurrent clients must not see refused connections


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients expect from GitHub
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections close after this

    def setup(self):
        super().setup()
        self.server.sandbox.track(self.connection, True)

    def finish(self):
        with contextlib.suppress(OSError):
            super().finish()
        self.server.sandbox.track(self.connection, False)

    def do_GET(self):
        self.server.sandbox.dispatch(self, "GET")

    def do_HEAD(self):
        self.server.sandbox.dispatch(self, "HEAD")

    def do_POST(self):
        self.server.sandbox.dispatch(self, "POST")

    def do_PATCH(self):
        self.server.sandbox.dispatch(self, "PATCH")

    def do_PUT(self):
        self.server.sandbox.dispatch(self, "PUT")

    def do_DELETE(self):
        self.server.sandbox.dispatch(self, "DELETE")

    def log_message(self, format, *args):  # the JSON-lines request log replaces this
        pass


class SandboxHandle:
    """A running sandbox, as yielded by `run_sandbox`."""

    def __init__(self, server: SandboxServer, tokens: list[str]):
        self._server = server
        self.rest_url = server.base
        self.graphql_url = server.base + "/graphql"
        self.tokens = list(tokens)
        self.port = server.port
        # The OAuth app the sandbox knows (`/login/oauth/...`): point a web front end at it.
        self.oauth_client_id = oauth.DEFAULT_CLIENT_ID
        self.oauth_client_secret = oauth.default_client_secret()

    @property
    def org(self) -> model.Organization:
        return self._server.org

    @property
    def lock(self) -> threading.RLock:
        """Hold it while mutating `org` (e.g. `generator.advance`) so no response sees half a change."""
        return self._server.lock

    def token_login(self, token: str) -> str | None:
        """The user a token acts as (GraphQL `viewer`, REST `/user`)."""
        return self._server.token_logins.get(token)

    @staticmethod
    def fingerprint(token: str) -> str:
        return fingerprint(token)

    def stats(self, token: str | None = None) -> dict:
        """One token's counters, or {fingerprint: counters} for every token seen or configured.

        Counters: rest_limit/used/remaining, graphql_limit/used/remaining, requests,
        rest_requests, graphql_requests, not_modified (304s), rate_limited, secondary_limited,
        faults, faults_by_kind."""
        limits = self._server.limits
        if token is not None:
            return limits.stats(fingerprint(token))
        keys = dict.fromkeys([fingerprint(t) for t in self.tokens] + limits.keys())
        return {k: limits.stats(k) for k in keys}

    def requests(self) -> list[dict]:
        """The request log: seq, time, method, path, query, status, resource, cost,
        token_fingerprint ("anonymous"/"invalid" without a valid token), not_modified, fault,
        node_count, operation, duration_ms, cpu_ms (the serving thread's CPU time)."""
        return self._server.entries()

    def set_faults(self, faults: FaultConfig | None = None, **changes) -> FaultConfig:
        """Replaces the fault configuration (fields of FaultConfig as keywords change the current one)."""
        base = faults or self._server.injector.config
        config = dataclasses.replace(base, **changes) if changes else base
        self._server.injector = FaultInjector(config)
        return config

    def script(self, *replies: Scripted) -> None:
        """The next requests matching each reply get it instead of the sandbox's answer."""
        with self._server._log_lock:
            self._server.scripted.extend(replies)

    def hide(self, repository: str, login: str) -> None:
        """`login` can no longer see `repository`, as with a private repository they are not a
        collaborator of: GraphQL NOT_FOUND, REST 404, left out of their /user/repos."""
        with self._server.lock:
            self._server.hidden = self._server.hidden | {(login, repository.lower())}

    def set_copilot_reports(self, organization: str, status: int) -> None:
        """The Copilot usage metrics reports of `organization` answer `status`: 200 (served; only
        the sandbox's own organisation has reports), 403 (the token lacks the permission) or 404
        (Copilot not enabled, or no report yet). Any other organisation answers 404 by default."""
        if status not in (200, 403, 404):
            raise ValueError("set_copilot_reports: status must be 200, 403 or 404")
        with self._server.lock:
            self._server.copilot_statuses = {**self._server.copilot_statuses, organization.lower(): status}

    def revoke(self, token: str) -> None:
        """The token now gets 401 Bad credentials."""
        self._server.revoked.add(token)

    def reset_limits(self) -> None:
        """Every token's primary and secondary budgets start afresh."""
        self._server.limits.reset()

    @property
    def query_cache(self) -> graphql_api.QueryCache:
        return self._server.cache


def _generated_org(seed: int, repos: int, prs_per_repo: int) -> model.Organization:
    try:
        from ghmetrics_dagster.sandbox import generator
    except ImportError:
        from ghmetrics_dagster.sandbox.sample_org import sample_organization

        log.warning("sandbox generator not available: serving the small sample organisation")
        return sample_organization(seed=seed, repos=repos, prs_per_repo=prs_per_repo)
    return generator.generate(seed, repos=repos, prs_per_repo=prs_per_repo)


@contextlib.contextmanager
def run_sandbox(
    org: model.Organization | None = None,
    *,
    seed: int = 1,
    repos: int = 6,
    prs_per_repo: int = 150,
    latency_ms: float = 0,
    fault_rate: float = 0.0,
    faults: FaultConfig | None = None,
    tokens: list[str] | None = None,
    rest_limit: int = 5000,
    graphql_limit: int = 5000,
    port: int = 0,
    request_log: str | None = None,
    query_cache_size: int = 256,
    issued_tokens_path: str | None = None,
) -> Iterator[SandboxHandle]:
    """Serves the sandbox on 127.0.0.1 for the duration of the block.

    `org` defaults to `generator.generate(seed, repos=..., prs_per_repo=...)`. `fault_rate`
    is a shorthand for `FaultConfig(seed=seed, rate_5xx=fault_rate)`; pass `faults` for
    anything else (not both). `port=0` picks a free port. `query_cache_size=0` re-parses and
    re-validates every GraphQL request (the benchmark's baseline). `issued_tokens_path` keeps
    the OAuth tokens it issues in a file and accepts them again when restarted with it."""
    if faults is not None and fault_rate:
        raise ValueError("run_sandbox: pass either fault_rate or faults, not both")
    if faults is None:
        faults = FaultConfig(seed=seed, rate_5xx=fault_rate)
    if org is None:
        org = _generated_org(seed, repos, prs_per_repo)
    tokens = list(tokens) if tokens is not None else default_tokens()
    server = SandboxServer(org, tokens=tokens, rest_limit=rest_limit, graphql_limit=graphql_limit,
                           latency_ms=latency_ms, faults=faults, port=port, request_log=request_log,
                           query_cache_size=query_cache_size, issued_tokens_path=issued_tokens_path)
    server.start()
    try:
        yield SandboxHandle(server, tokens)
    finally:
        server.stop()
