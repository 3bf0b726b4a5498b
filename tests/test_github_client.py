"""The GitHub client against a tiny scripted HTTP server on 127.0.0.1.

Each test scripts what the server answers (rate limits, secondary limits, 5xx, 502 on big
pages, timeouts, broken JSON, revoked tokens, ETags) and checks what the client does about it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ghmetrics_dagster.core.settings import Settings
from ghmetrics_dagster.github import errors
from ghmetrics_dagster.github.client import GitHubClient, PageSize, token_fingerprint

TOKEN_A = "ghp_" + "A" * 36
TOKEN_B = "ghp_" + "B" * 36
OK_QUERY = "query { viewer { login } rateLimit { cost remaining resetAt } }"


class Scripted:
    """A local server whose answers come from `handler(request) -> (status, headers, body)`."""

    def __init__(self, handler):
        self.handler = handler
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = {
                    "method": self.command,
                    "path": self.path,
                    "token": (self.headers.get("Authorization") or "").split(" ")[-1],
                    "if_none_match": self.headers.get("If-None-Match"),
                    "json": json.loads(body) if body else None,
                }
                with outer.lock:
                    outer.requests.append(request)
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    status, headers, payload = outer.handler(request)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for key, value in (headers or {}).items():
                        self.send_header(key, str(value))
                    self.send_header("Content-Length", str(len(data) if status != 304 else 0))
                    self.end_headers()
                    if status != 304:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = _serve
            do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(handler):
        server = Scripted(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def make_client(server, tokens=(TOKEN_A,), sleeps=None, **kwargs):
    sleeps = sleeps if sleeps is not None else []
    kwargs.setdefault("backoff_base", 0.01)
    kwargs.setdefault("timeout", 2)
    return GitHubClient(server.url, server.url + "/graphql", list(tokens), sleep=sleeps.append, **kwargs)


def graphql_ok(cost=1, remaining=4999, data=None):
    body = {"data": {**(data or {"viewer": {"login": "me"}}), "rateLimit": {"cost": cost, "remaining": remaining, "resetAt": "2030-01-01T00:00:00Z"}}}
    return 200, {"Content-Type": "application/json", "X-RateLimit-Remaining": remaining, "X-RateLimit-Resource": "graphql"}, body


def test_5xx_are_retried_with_backoff_then_succeed(serve):
    answers = iter([500, 503, 500])

    def handler(request):
        status = next(answers, 200)
        return graphql_ok() if status == 200 else (status, {}, {"message": "boom"})

    server = serve(handler)
    sleeps = []
    client = make_client(server, sleeps=sleeps)
    assert client.graphql(OK_QUERY) == {"viewer": {"login": "me"}, "rateLimit": {"cost": 1, "remaining": 4999, "resetAt": "2030-01-01T00:00:00Z"}}
    assert len(server.requests) == 4
    assert client.stats.retries == 3
    assert client.stats.graphql_points == 1
    assert len(sleeps) == 3 and all(0 <= s <= 0.01 * 2**3 for s in sleeps)


def test_persistent_5xx_gives_up_with_a_clear_error(serve):
    server = serve(lambda request: (500, {}, {"message": "down"}))
    client = make_client(server, max_retries=3)
    with pytest.raises(errors.ServerError) as raised:
        client.rest("/repos/acme/x/pulls")
    message = str(raised.value)
    assert "failed 4 times" in message and "HTTP 500" in message and "\n" not in message
    assert len(server.requests) == 4
    assert TOKEN_A not in message


def test_secondary_limit_waits_retry_after(serve):
    answers = iter([(403, {"Retry-After": "7"}, {"message": "You have exceeded a secondary rate limit"}),
                    (429, {"Retry-After": "3"}, {"message": "too many"})])

    def handler(request):
        return next(answers, (200, {"ETag": '"e1"'}, [{"number": 1}]))

    server = serve(handler)
    sleeps = []
    client = make_client(server, sleeps=sleeps)
    response = client.rest("/repos/acme/x/pulls")
    assert response.data == [{"number": 1}]
    assert sleeps == [7.0, 3.0]
    assert client.stats.secondary_limit_waits == 2


def test_secondary_limit_without_retry_after_waits_the_default(serve):
    answers = iter([(403, {}, {"message": "You have exceeded a secondary rate limit."})])
    server = serve(lambda request: next(answers, (200, {}, {"ok": True})))
    sleeps = []
    client = make_client(server, sleeps=sleeps, secondary_limit_wait=60)
    assert client.rest("/x").data == {"ok": True}
    assert len(sleeps) == 1 and 60 <= sleeps[0] <= 61


def test_primary_limit_rotates_to_the_token_with_most_remaining(serve):
    reset = int(time.time()) + 3600

    def handler(request):
        if request["token"] == TOKEN_A:
            return 403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset, "X-RateLimit-Resource": "core"}, {"message": "API rate limit exceeded"}
        return 200, {"X-RateLimit-Remaining": "4000", "X-RateLimit-Reset": reset, "X-RateLimit-Resource": "core"}, {"ok": True}

    server = serve(handler)
    client = make_client(server, tokens=(TOKEN_A, TOKEN_B))
    for _ in range(3):
        assert client.rest("/x").data == {"ok": True}
    tokens = [r["token"] for r in server.requests]
    # A is tried at most once: after its 403 every request goes to B.
    assert tokens.count(TOKEN_A) <= 1 and tokens.count(TOKEN_B) == 3
    assert client.rate_limit_remaining()["core"] == 4000


def test_all_tokens_exhausted_far_from_reset_raises(serve):
    reset = int(time.time()) + 3 * 3600
    server = serve(lambda request: (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, {"message": "API rate limit exceeded"}))
    client = make_client(server, tokens=(TOKEN_A, TOKEN_B), max_rate_limit_wait=60)
    with pytest.raises(errors.RateLimitExhausted) as raised:
        client.rest("/x")
    message = str(raised.value)
    assert "2 GitHub token(s)" in message and "core" in message and "GITHUB_TOKEN" in message
    assert TOKEN_A not in message and TOKEN_B not in message
    assert len(server.requests) == 2


def test_all_tokens_exhausted_near_reset_waits_for_it(serve):
    reset = int(time.time()) + 5
    state = {"n": 0}

    def handler(request):
        state["n"] += 1
        if state["n"] == 1:
            return 403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, {"message": "API rate limit exceeded"}
        return 200, {"X-RateLimit-Remaining": "5000"}, {"ok": True}

    server = serve(handler)
    sleeps = []

    def fake_sleep(seconds):
        sleeps.append(seconds)
        # the reset passes while we "sleep"
        client._tokens[0].reset_at["core"] = time.time() - 1

    client = GitHubClient(server.url, None, [TOKEN_A], sleep=fake_sleep, backoff_base=0.01)
    assert client.rest("/x").data == {"ok": True}
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 7
    assert client.stats.rate_limit_waits_s > 0


def test_graphql_rate_limited_rotates_token(serve):
    def handler(request):
        if request["token"] == TOKEN_A:
            return 200, {}, {"data": None, "errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]}
        return graphql_ok(remaining=100)

    server = serve(handler)
    client = make_client(server, tokens=(TOKEN_A, TOKEN_B))
    assert client.graphql(OK_QUERY)["viewer"] == {"login": "me"}
    assert client.graphql(OK_QUERY)["viewer"] == {"login": "me"}
    assert [r["token"] for r in server.requests].count(TOKEN_A) == 1


def test_revoked_token_is_dropped_and_never_named(serve, caplog):
    def handler(request):
        if request["token"] == TOKEN_A:
            return 401, {}, {"message": "Bad credentials"}
        return 200, {}, {"ok": True}

    server = serve(handler)
    client = make_client(server, tokens=(TOKEN_A, TOKEN_B))
    with caplog.at_level(logging.DEBUG, logger="ghmetrics.github"):
        assert client.rest("/x").data == {"ok": True}
        assert client.rest("/x").data == {"ok": True}
    assert client.fingerprints == [token_fingerprint(TOKEN_B)]
    assert token_fingerprint(TOKEN_A) in caplog.text and "401" in caplog.text
    assert TOKEN_A not in caplog.text and TOKEN_B not in caplog.text
    assert TOKEN_A not in repr(client) and TOKEN_A not in str(client.stats.as_dict())

    only = make_client(serve(lambda request: (401, {}, {"message": "Bad credentials"})))
    with pytest.raises(errors.BadCredentials) as raised:
        only.rest("/x")
    assert "GITHUB_TOKEN" in str(raised.value) and TOKEN_A not in str(raised.value)


def test_502_halves_the_page_and_restores_it(serve):
    sizes = []

    def handler(request):
        first = request["json"]["variables"]["first"]
        sizes.append(first)
        if first > 12 and len(sizes) <= 2:  # big pages fail for a while, as on GitHub
            return 502, {}, b"<html>502 Bad Gateway</html>"
        return graphql_ok()

    server = serve(handler)
    client = make_client(server)
    page = PageSize(50, minimum=5, restore_after=2)
    client.graphql("query($first: Int!) { viewer { login } }", {"first": 50}, page=page)
    assert sizes == [50, 25, 12]
    assert page.value == 12 and client.stats.page_size_reductions == 2
    client.graphql("query($first: Int!) { viewer { login } }", {}, page=page)
    assert page.value == 24  # doubled after two successes
    for _ in range(2):
        client.graphql("query($first: Int!) { viewer { login } }", {}, page=page)
    assert page.value == 48
    for _ in range(2):
        client.graphql("query($first: Int!) { viewer { login } }", {}, page=page)
    assert page.value == 50  # back to the default, never above
    client.graphql("query($first: Int!) { viewer { login } }", {}, page=page)
    assert sizes[-1] == 50 and page.value == 50
    assert PageSize(5, minimum=5).shrink() is False


def test_timeouts_are_retried_then_reported(serve):
    def handler(request):
        time.sleep(1.5)
        return 200, {}, {"ok": True}

    server = serve(handler)
    client = make_client(server, timeout=0.3, max_retries=1)
    with pytest.raises(errors.ServerError) as raised:
        client.rest("/slow")
    assert "timed out" in str(raised.value)
    assert client.stats.retries == 1


def test_truncated_json_is_retried_then_a_clear_error(serve):
    answers = iter([b'{"data": {"viewer": {"lo'])
    server = serve(lambda request: (200, {"Content-Type": "application/json"}, next(answers, graphql_ok()[2])))
    client = make_client(server)
    assert client.graphql(OK_QUERY)["viewer"] == {"login": "me"}
    assert client.stats.retries == 1

    broken = make_client(serve(lambda request: (200, {}, b"{not json")), max_retries=2)
    with pytest.raises(errors.MalformedResponse) as raised:
        broken.rest("/x")
    assert "not valid JSON" in str(raised.value)


def test_conditional_request_304_costs_nothing(serve):
    def handler(request):
        if request["if_none_match"] == '"v1"':
            return 304, {"ETag": '"v1"', "X-RateLimit-Remaining": "4999"}, b""
        return 200, {"ETag": '"v1"', "X-RateLimit-Remaining": "4998"}, [{"number": 7}]

    server = serve(handler)
    client = make_client(server, tokens=(TOKEN_A, TOKEN_B))
    first = client.rest("/repos/acme/x/pulls", {"per_page": 1})
    assert first.status == 200 and first.etag == '"v1"'
    second = client.rest("/repos/acme/x/pulls", {"per_page": 1}, etag=first.etag, etag_fingerprint=first.token_fingerprint)
    assert second.not_modified and second.data is None
    assert server.requests[1]["token"] == server.requests[0]["token"]  # the ETag's own token
    assert client.stats.not_modified == 1 and client.stats.rest_units == 1 and client.stats.rest_requests == 2
    # An ETag from a token the client no longer has is not sent.
    client.rest("/repos/acme/x/pulls", etag='"v1"', etag_fingerprint="sha256:unknown")
    assert server.requests[2]["if_none_match"] is None


def test_graphql_errors_map_to_clear_exceptions(serve):
    def handler(request):
        return 200, {}, {"data": {"repository": None}, "errors": [{"type": "NOT_FOUND", "path": ["repository"], "message": "Could not resolve to a Repository with the name 'acme/nope'."}]}

    client = make_client(serve(handler))
    with pytest.raises(errors.RepositoryNotFound) as raised:
        client.graphql(OK_QUERY)
    assert "acme/nope" in str(raised.value)
    data, gql_errors = client.graphql(OK_QUERY, allow_partial=True)
    assert data == {"repository": None} and gql_errors[0]["type"] == "NOT_FOUND"


def test_concurrency_is_bounded_per_token(serve):
    def handler(request):
        time.sleep(0.05)
        return 200, {}, {"ok": True}

    server = serve(handler)
    client = make_client(server, max_concurrency=2)
    threads = [threading.Thread(target=client.rest, args=("/x",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(server.requests) == 8
    assert server.max_in_flight <= 2


def client_from_environment() -> GitHubClient:
    settings = Settings.from_env()
    return GitHubClient(settings.github_api_url, settings.github_graphql_url, list(settings.github_tokens))


def test_server_urls_from_environment(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", f"{TOKEN_A}, {TOKEN_B}")
    monkeypatch.setenv("GHMETRICS_GITHUB_API_URL", "https://ghe.example.com/api/v3")
    monkeypatch.delenv("GHMETRICS_GITHUB_GRAPHQL_URL", raising=False)
    client = client_from_environment()
    assert client.graphql_url == "https://ghe.example.com/api/graphql"
    assert len(client.fingerprints) == 2
    monkeypatch.delenv("GHMETRICS_GITHUB_API_URL")
    assert client_from_environment().graphql_url == "https://api.github.com/graphql"
    monkeypatch.setenv("GITHUB_TOKEN", "")
    with pytest.raises(errors.BadCredentials):
        client_from_environment()
