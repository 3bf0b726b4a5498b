"""A GitHub API client: GraphQL and REST, several tokens, bounded retries and concurrency.

- `GitHubClient.graphql(query, variables)` returns `data`; `GitHubClient.rest(path, ...)`
  returns a `RestResponse` (with `not_modified` for a conditional request answered 304).
- Rate limits: `X-RateLimit-*` is tracked per token and resource (`core`, `graphql`); each
  request goes to the token with the most remaining; when every token is exhausted the client
  sleeps until the earliest reset if that is within the waiting caps (below), else raises
  `RateLimitExhausted`. Secondary limits (403/429 with Retry-After, or "secondary rate limit")
  wait as told. GraphQL `RATE_LIMITED` marks the token exhausted and rotates.
- Failures: 5xx, timeouts, connection errors and malformed JSON are retried `max_retries`
  times with exponential backoff and full jitter. A GraphQL 502/504 also halves the page size
  (`PageSize`, minimum 5), which the caller restores after successes.
- 401 drops that token (named by fingerprint only) and retries with the others.
- Bounded I/O: each request has an overall `request_deadline` (a server dripping bytes cannot
  hold it past that, give or take one read `timeout`), its body is streamed and refused past
  `max_body_bytes`, and rate-limit waiting is capped per request (`max_rate_limit_wait`) and per
  client (`max_total_rate_limit_wait`): past a cap `RateLimitExhausted` is raised at once, so the
  caller postpones the work instead of sleeping on a pool slot.
- Concurrency: at most `max_concurrency` requests in flight per token.
- Accounting: `stats` counts requests, GraphQL points, REST rate-limit units, 304s and retries;
  `scope()` collects the same for one piece of work (e.g. one repository) in this thread.

No token ever appears in a log line, an exception or `stats`; see `token_fingerprint`.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import ipaddress
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
import urllib3

from ghmetrics_dagster.core import settings
from ghmetrics_dagster.core.redact import redact
from ghmetrics_dagster.github import errors

log = logging.getLogger("ghmetrics.github")

RESOURCES = ("core", "graphql")


def token_fingerprint(token: str) -> str:
    """A stable, non-reversible name for a token (for logs, metadata and sync_state)."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]


@dataclass
class Stats:
    """Counters of API use; thread-safe via the owning client's lock."""

    rest_requests: int = 0
    rest_units: int = 0  # REST responses that count against the rate limit (not 304)
    graphql_requests: int = 0
    graphql_points: int = 0
    not_modified: int = 0
    retries: int = 0
    secondary_limit_waits: int = 0
    page_size_reductions: int = 0
    rate_limit_waits_s: float = 0.0
    rate_limit_remaining: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return self.rest_requests + self.graphql_requests

    @property
    def units(self) -> int:
        """Rate-limit units spent: REST requests that counted plus GraphQL points."""
        return self.rest_units + self.graphql_points

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "rest_requests": self.rest_requests,
            "rest_units": self.rest_units,
            "graphql_requests": self.graphql_requests,
            "graphql_points": self.graphql_points,
            "not_modified": self.not_modified,
            "retries": self.retries,
            "secondary_limit_waits": self.secondary_limit_waits,
            "page_size_reductions": self.page_size_reductions,
            "rate_limit_waits_s": round(self.rate_limit_waits_s, 3),
            "rate_limit_remaining": dict(self.rate_limit_remaining),
        }


class PageSize:
    """A page size that halves on 502/504 (down to `minimum`) and is restored step by step
    (doubling) after `restore_after` consecutive successes."""

    def __init__(self, size: int, minimum: int = 5, restore_after: int = 3):
        self.default = size
        self.value = size
        self.minimum = minimum
        self.restore_after = restore_after
        self._successes = 0
        # One PageSize may be shared by the threads reading the same kind of page.
        self._lock = threading.Lock()

    def shrink(self) -> bool:
        with self._lock:
            self._successes = 0
            if self.value <= self.minimum:
                return False
            self.value = max(self.minimum, self.value // 2)
            return True

    def succeeded(self) -> None:
        with self._lock:
            if self.value >= self.default:
                return
            self._successes += 1
            if self._successes >= self.restore_after:
                self.value = min(self.default, self.value * 2)
                self._successes = 0


@dataclass
class RestResponse:
    status: int
    data: object
    headers: dict
    etag: str | None
    token_fingerprint: str
    next_url: str | None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class _Token:
    def __init__(self, secret: str, index: int, max_concurrency: int):
        self.secret = secret
        self.index = index
        self.fingerprint = token_fingerprint(secret)
        self.slots = threading.BoundedSemaphore(max_concurrency)
        self.remaining: dict[str, int | None] = {r: None for r in RESOURCES}
        self.reset_at: dict[str, float] = {r: 0.0 for r in RESOURCES}
        self.dropped = False

    @property
    def label(self) -> str:
        return f"token #{self.index + 1} ({self.fingerprint})"

    def available(self, resource: str, now: float) -> bool:
        remaining = self.remaining[resource]
        return not self.dropped and (remaining is None or remaining > 0 or now >= self.reset_at[resource])


_scopes: contextvars.ContextVar[tuple[Stats, ...]] = contextvars.ContextVar("ghmetrics_github_scopes", default=())


class _Retry(Exception):
    """Internal: this attempt failed in a retryable way."""

    def __init__(self, reason: str, wait: float | None = None, counts: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.counts = counts


class GitHubClient:
    def __init__(
        self,
        api_url: str = settings.DEFAULT_GITHUB_API_URL,
        graphql_url: str | None = None,
        tokens: list[str] | tuple[str, ...] = (),
        timeout: float = 20.0,
        max_concurrency: int = 8,
        *,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_rate_limit_wait: float = 300.0,
        max_total_rate_limit_wait: float = 900.0,
        request_deadline: float = 120.0,
        max_body_bytes: int = 64 * 1024 * 1024,
        secondary_limit_wait: float = 60.0,
        max_secondary_waits: int = 20,
        user_agent: str = "ghmetrics",
        sleep: Callable[[float], None] = time.sleep,
        allow_insecure_http: bool = False,
    ):
        tokens = [t.strip() for t in tokens if t and t.strip()]
        if not tokens:
            raise errors.BadCredentials(
                "no GitHub token configured; set GITHUB_TOKEN (several may be comma-separated)"
            )
        self.api_url = api_url.rstrip("/")
        if graphql_url:
            self.graphql_url = graphql_url.rstrip("/")
        elif self.api_url.endswith("/api/v3"):  # GitHub Enterprise Server
            self.graphql_url = self.api_url[: -len("/v3")] + "/graphql"
        else:
            self.graphql_url = self.api_url + "/graphql"
        for url in (self.api_url, self.graphql_url):
            require_safe_transport(url, allow_insecure_http)
        self.allow_insecure_http = allow_insecure_http
        self._tokens = [_Token(t, i, max_concurrency) for i, t in enumerate(dict.fromkeys(tokens))]
        self._secrets = tuple(t.secret for t in self._tokens)
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_rate_limit_wait = max_rate_limit_wait
        self.max_total_rate_limit_wait = max_total_rate_limit_wait
        self.request_deadline = request_deadline
        self.max_body_bytes = max_body_bytes
        self._rate_limit_waited = 0.0  # over the client's life, for max_total_rate_limit_wait
        self.secondary_limit_wait = secondary_limit_wait
        self.max_secondary_waits = max_secondary_waits
        self._sleep = sleep
        self._lock = threading.Lock()
        self._local = threading.local()
        self.user_agent = user_agent
        self.stats = Stats()
        self._random = random.Random()

    def redact(self, text: str) -> str:
        """`text` without this client's tokens or anything shaped like a token."""
        return redact(text, self._secrets)

    def __repr__(self) -> str:
        fingerprints = ", ".join(t.fingerprint for t in self._tokens)
        return f"GitHubClient({self.api_url!r}, tokens=[{fingerprints}])"

    # -- accounting -------------------------------------------------------------------

    @contextlib.contextmanager
    def scope(self) -> Iterator[Stats]:
        """Counts the requests made by this thread inside the block into a fresh `Stats`."""
        stats = Stats()
        token = _scopes.set(_scopes.get() + (stats,))
        try:
            yield stats
        finally:
            _scopes.reset(token)

    def _count(self, **increments) -> None:
        with self._lock:
            for target in (self.stats, *_scopes.get()):
                for name, value in increments.items():
                    setattr(target, name, getattr(target, name) + value)

    def _record_remaining(self) -> None:
        with self._lock:
            for resource in RESOURCES:
                known = [t.remaining[resource] for t in self._tokens if not t.dropped]
                known = [r for r in known if r is not None]
                if known:
                    for target in (self.stats, *_scopes.get()):
                        target.rate_limit_remaining[resource] = sum(known)

    @property
    def fingerprints(self) -> list[str]:
        return [t.fingerprint for t in self._tokens if not t.dropped]

    def rate_limit_remaining(self) -> dict[str, int | None]:
        with self._lock:
            out = {}
            for resource in RESOURCES:
                known = [t.remaining[resource] for t in self._tokens if not t.dropped]
                out[resource] = sum(r for r in known if r is not None) if any(r is not None for r in known) else None
            return out

    # -- token choice -----------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=self.max_concurrency)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def _pick_token(self, resource: str, prefer: str | None = None, budget: list[float] | None = None) -> _Token:
        budget = budget if budget is not None else [0.0]
        while True:
            with self._lock:
                live = [t for t in self._tokens if not t.dropped]
                if not live:
                    raise errors.BadCredentials(
                        "every GitHub token was rejected (401 Bad credentials); "
                        "create a new token and set GITHUB_TOKEN"
                    )
                now = time.time()
                usable = [t for t in live if t.available(resource, now)]
                if usable:
                    for token in usable:
                        if prefer and token.fingerprint == prefer:
                            return token
                    # unknown remaining (None) first: it is a fresh token
                    return max(usable, key=lambda t: float("inf") if t.remaining[resource] is None else t.remaining[resource])
                wait = max(0.0, min(t.reset_at[resource] for t in live) - now) + 1.0
            reset = dt.datetime.fromtimestamp(time.time() + wait, dt.UTC).strftime("%H:%M:%S UTC")
            self._rate_limit_sleep(wait, budget, f"all {len(live)} GitHub token(s) are out of {resource} rate limit until {reset}")

    def _rate_limit_sleep(self, wait: float, budget: list[float], why: str) -> None:
        """Sleeps `wait` s for a rate limit unless that would pass the request's or the client's
        cap; then raises at once, without sleeping, so the caller can postpone the work."""
        with self._lock:
            over_request = budget[0] + wait > self.max_rate_limit_wait
            over_client = self._rate_limit_waited + wait > self.max_total_rate_limit_wait
            if not (over_request or over_client):
                self._rate_limit_waited += wait
        if over_request or over_client:
            cap = "max_rate_limit_wait" if over_request else "max_total_rate_limit_wait"
            raise errors.RateLimitExhausted(
                f"{why}; waiting {wait:.0f} s more would pass {cap}: postponed to the next run "
                "(add tokens to GITHUB_TOKEN or use fewer workers)"
            )
        log.warning("%s; waiting %.0f s", why, wait)
        self._count(rate_limit_waits_s=wait)
        self._sleep(wait)
        budget[0] += wait

    def _update_limits(self, token: _Token, resource: str, headers) -> None:
        remaining = headers.get("X-RateLimit-Remaining")
        reset = headers.get("X-RateLimit-Reset")
        resource = headers.get("X-RateLimit-Resource", resource)
        if resource not in token.remaining:
            return
        with self._lock:
            if remaining is not None and remaining.lstrip("-").isdigit():
                token.remaining[resource] = int(remaining)
            if reset is not None and reset.isdigit():
                token.reset_at[resource] = float(reset)
        self._record_remaining()

    def _drop(self, token: _Token, why: str) -> None:
        with self._lock:
            if token.dropped:
                return
            token.dropped = True
        log.error("GitHub rejected %s (%s); it is no longer used", token.label, why)

    def _backoff(self, attempt: int) -> float:
        return self._random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))

    # -- the request loop -------------------------------------------------------------

    def _send(self, method: str, url: str, resource: str, *, params=None, body=None, etag=None,
              prefer=None, page: PageSize | None = None, variables: dict | None = None):
        """Sends one logical request with retries; returns (response, parsed json, token)."""
        failures = 0
        secondary = 0
        last_reason = ""
        budget = [0.0]  # rate-limit seconds waited for this request
        while True:
            token = self._pick_token(resource, prefer, budget)
            headers = {
                "Authorization": f"bearer {token.secret}",
                "Accept": "application/vnd.github+json",
                "User-Agent": self.user_agent,
                "X-GitHub-Api-Version": "2022-11-28",
            }
            if etag and token.fingerprint == prefer:
                headers["If-None-Match"] = etag
            if page is not None and variables is not None:
                body = {**body, "variables": {**variables, "first": page.value}}
            try:
                with token.slots:
                    try:
                        response = self._session().request(
                            method, url, params=params, json=body, headers=headers, timeout=self.timeout,
                            stream=True,
                        )
                        self._read_body(response, time.monotonic() + self.request_deadline)
                    except requests.Timeout:
                        raise _Retry(f"timed out after {self.timeout:g} s") from None
                    except requests.RequestException as exc:
                        raise _Retry(f"connection failed ({type(exc).__name__})") from None
                    if resource == "graphql":
                        self._count(graphql_requests=1)
                    elif response.status_code != 304 and response.status_code < 500:
                        self._count(rest_requests=1, rest_units=1)
                    else:
                        self._count(rest_requests=1)
                    self._update_limits(token, resource, response.headers)
                    payload = self._check(response, token, resource, page)
                return response, payload, token
            except _Retry as retry:
                last_reason = retry.reason
                if retry.counts:
                    failures += 1
                    if failures > self.max_retries:
                        cls = errors.MalformedResponse if "JSON" in retry.reason else errors.ServerError
                        raise cls(
                            f"GitHub request {method} {self._describe(url)} failed {failures} times "
                            f"(last: {last_reason}); GitHub may be down, try again later"
                        ) from None
                else:
                    secondary += 1
                    if secondary > self.max_secondary_waits:
                        raise errors.RateLimitExhausted(
                            f"GitHub kept rate limiting {method} {self._describe(url)} "
                            f"({secondary} waits, last: {last_reason}); try again later with fewer workers"
                        ) from None
                self._count(retries=1)
                if not retry.counts and retry.wait:  # a rate limit: capped waiting
                    self._rate_limit_sleep(
                        retry.wait, budget, f"GitHub rate limited {method} {self._describe(url)} ({last_reason})"
                    )
                    continue
                wait = retry.wait if retry.wait is not None else self._backoff(failures)
                log.info("retrying %s %s in %.2f s: %s", method, self._describe(url), wait, last_reason)
                if wait > 0:
                    self._sleep(wait)

    def _read_body(self, response: requests.Response, deadline: float) -> None:
        """Reads the streamed body into `response` within `deadline` and `max_body_bytes`."""
        too_large = (
            f"GitHub's answer to {self._describe(response.url)} is larger than {self.max_body_bytes} bytes; "
            "refused (a page this big is not GitHub's; check GHMETRICS_GITHUB_API_URL)"
        )
        try:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > self.max_body_bytes:
                raise errors.MalformedResponse(too_large)
            chunks, size = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise _Retry(f"no complete answer within the {self.request_deadline:g} s deadline")
                chunk = response.raw.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_body_bytes:  # decoded size: a compressed bomb counts in full
                    raise errors.MalformedResponse(too_large)
                chunks.append(chunk)
            response._content = b"".join(chunks)  # what requests' .json()/.text read
            # Read to the end: close() returns the connection to the pool (keep-alive) instead
            # of closing it, as it does for a body abandoned above.
            response._content_consumed = True
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            raise requests.Timeout() from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.ConnectionError(type(exc).__name__) from None
        finally:
            response.close()

    def _describe(self, url: str) -> str:
        return redact(urlsplit(url).path or url, self._secrets)

    def _check(self, response: requests.Response, token: _Token, resource: str, page: PageSize | None):
        """Classifies a response: returns its JSON, raises _Retry or a GitHubError."""
        status = response.status_code
        if status == 304:
            return None
        if status == 401:
            self._drop(token, "401 Bad credentials")
            raise _Retry(f"{token.label} rejected", wait=0, counts=False)
        if status in (403, 429):
            retry_after = response.headers.get("Retry-After")
            text = response.text[:500].lower()
            if retry_after is not None:
                self._count(secondary_limit_waits=1)
                try:
                    wait = float(retry_after)
                except ValueError:
                    wait = self.secondary_limit_wait
                raise _Retry(f"secondary rate limit, Retry-After {retry_after}", wait=wait, counts=False)
            if response.headers.get("X-RateLimit-Remaining") == "0":
                with self._lock:
                    token.remaining[resource] = 0
                raise _Retry(f"{token.label} out of {resource} rate limit", wait=0, counts=False)
            if "secondary rate limit" in text or "abuse" in text or status == 429:
                self._count(secondary_limit_waits=1)
                raise _Retry("secondary rate limit", wait=self.secondary_limit_wait + self._random.uniform(0, 1), counts=False)
            raise errors.Forbidden(
                f"GitHub refused {self._describe(response.url)} (403) for {token.label}; "
                "give the token read access to this repository"
            )
        if status == 404:
            raise errors.NotFound(f"GitHub has no {self._describe(response.url)} (404) or the token cannot see it")
        if status in (409, 451):
            raise errors.RepositoryUnavailable(
                f"GitHub cannot serve {self._describe(response.url)} ({status}: {self.redact(_message(response))})"
            )
        if status >= 500:
            if resource == "graphql" and status in (502, 504) and page is not None and page.shrink():
                self._count(page_size_reductions=1)
                log.info("GraphQL %s: page size halved to %d", status, page.value)
            raise _Retry(f"HTTP {status}")
        if status >= 400:
            raise errors.GitHubError(
                f"GitHub answered {status} to {self._describe(response.url)}: {self.redact(_message(response))}"
            )
        try:
            payload = response.json()
        except ValueError:
            raise _Retry("response is not valid JSON") from None
        if resource == "graphql":
            if not isinstance(payload, dict) or ("data" not in payload and "errors" not in payload):
                raise _Retry("GraphQL response is not valid JSON of the expected shape")
            gql_errors = payload.get("errors") or []
            if any(e.get("type") == "RATE_LIMITED" for e in gql_errors):
                with self._lock:
                    token.remaining["graphql"] = 0
                    if token.reset_at["graphql"] <= time.time():
                        token.reset_at["graphql"] = time.time() + 60
                raise _Retry(f"{token.label} GraphQL RATE_LIMITED", wait=0, counts=False)
            data = payload.get("data") or {}
            rate = data.get("rateLimit") if isinstance(data, dict) else None
            if isinstance(rate, dict) and isinstance(rate.get("cost"), int):
                self._count(graphql_points=rate["cost"])
                if isinstance(rate.get("remaining"), int):
                    with self._lock:
                        token.remaining["graphql"] = rate["remaining"]
                    self._record_remaining()
            elif not gql_errors:
                self._count(graphql_points=1)
            if page is not None:
                page.succeeded()
        return payload

    # -- public API -------------------------------------------------------------------

    def graphql(self, query: str, variables: dict | None = None, *, page: PageSize | None = None,
                allow_partial: bool = False) -> dict | tuple[dict, list[dict]]:
        """Runs a query; `page` supplies `$first` and shrinks on 502/504.

        Returns `data`, or `(data, errors)` with `allow_partial`. Without it, errors raise:
        NOT_FOUND -> RepositoryNotFound, FORBIDDEN -> Forbidden, others -> GraphQLError.
        """
        variables = dict(variables or {})
        body = {"query": query, "variables": variables}
        _, payload, _ = self._send("POST", self.graphql_url, "graphql", body=body, page=page, variables=variables)
        data = payload.get("data") or {}
        gql_errors = payload.get("errors") or []
        if allow_partial:
            return data, gql_errors
        if gql_errors:
            raise graphql_error(gql_errors, self.redact)
        return data

    def rest(self, path: str, params: dict | None = None, *, etag: str | None = None,
             etag_fingerprint: str | None = None) -> RestResponse:
        """GET a REST path (or absolute URL); with `etag`, a conditional request that may 304."""
        url = path if path.startswith(("http://", "https://")) else self.api_url + "/" + path.lstrip("/")
        response, payload, token = self._send(
            "GET", url, "core", params=params, etag=etag, prefer=etag_fingerprint if etag else None
        )
        if response.status_code == 304:
            self._count(not_modified=1)
        next_url = response.links.get("next", {}).get("url")
        return RestResponse(
            status=response.status_code,
            data=payload,
            headers=dict(response.headers),
            etag=response.headers.get("ETag"),
            token_fingerprint=token.fingerprint,
            next_url=next_url,
        )


    def download(self, url: str) -> bytes:
        """GET a signed download link that an API answer gave (e.g. a Copilot report file on
        GitHub's storage host). The link's signature is its credential: no Authorization header
        is sent, so no token reaches that host. Same transport rule, deadline and size cap as API
        requests; connection failures, timeouts and 5xx are retried with backoff. A refused or
        expired link raises `GitHubError` naming the path only (the query holds the signature)."""
        require_safe_transport(url, self.allow_insecure_http)
        failures = 0
        while True:
            try:
                try:
                    response = self._session().get(url, headers={"User-Agent": self.user_agent},
                                                   timeout=self.timeout, stream=True, allow_redirects=False)
                    self._read_body(response, time.monotonic() + self.request_deadline)
                except requests.Timeout:
                    raise _Retry(f"timed out after {self.timeout:g} s") from None
                except requests.RequestException as exc:
                    raise _Retry(f"connection failed ({type(exc).__name__})") from None
                if response.status_code >= 500:
                    raise _Retry(f"HTTP {response.status_code}")
            except _Retry as retry:
                failures += 1
                if failures > self.max_retries:
                    raise errors.ServerError(
                        f"downloading {self._describe(url)} failed {failures} times (last: {retry.reason}); try again later"
                    ) from None
                self._count(retries=1)
                self._sleep(self._backoff(failures))
                continue
            if response.status_code != 200:
                raise errors.GitHubError(
                    f"the download link {self._describe(url)} answered {response.status_code} "
                    "(expired or refused); ask the API for a new link"
                )
            return response.content


INSECURE_HTTP_VAR = "GHMETRICS_ALLOW_INSECURE_HTTP"


def require_safe_transport(url: str, allow_insecure_http: bool = False) -> None:
    """Tokens go only over https, or plain http to this machine (the sandbox); anything else
    needs an explicit opt-in, since the Authorization header would cross the network in clear."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme != "http":
        raise errors.GitHubError(f"GitHub API URL {url!r} must be https://; check GHMETRICS_GITHUB_API_URL")
    host = (parts.hostname or "").lower()
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_insecure_http:
        raise errors.GitHubError(
            f"GitHub API URL {redact(url)} is plain http: tokens would be sent in clear; "
            f"use https://, or set {INSECURE_HTTP_VAR}=1 if this network is trusted"
        )
    if not loopback:
        log.warning("GitHub API URL %s is plain http (%s=1): tokens are sent in clear", redact(url), INSECURE_HTTP_VAR)


def _message(response: requests.Response) -> str:
    try:
        message = response.json().get("message", "")
    except (ValueError, AttributeError):
        message = response.text[:200]
    return " ".join(str(message).split())[:200] or response.reason or ""


def graphql_error(gql_errors: list[dict], redactor: Callable[[str], str]) -> errors.GitHubError:
    """The error for a GraphQL `errors` list; `redactor` (the client's `redact`) masks its tokens
    in the message and in the errors kept on the exception, since GitHub may echo a credential."""
    gql_errors = _redact_strings(gql_errors, redactor)
    first = gql_errors[0] if isinstance(gql_errors[0], dict) else {"message": str(gql_errors[0])}
    kind = first.get("type")
    message = " ".join(str(first.get("message", "")).split())[:300]
    if kind == "NOT_FOUND":
        return errors.RepositoryNotFound(f"GitHub: {message} (NOT_FOUND); check the repository name and token access")
    if kind == "FORBIDDEN":
        return errors.Forbidden(f"GitHub: {message} (FORBIDDEN); give the token read access")
    return errors.GraphQLError(f"GitHub GraphQL error: {message} ({kind or 'no type'})", gql_errors)


def _redact_strings(value, redactor: Callable[[str], str]):
    """`value` (parsed JSON) with every string passed through `redactor`."""
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, list):
        return [_redact_strings(v, redactor) for v in value]
    if isinstance(value, dict):
        return {k: _redact_strings(v, redactor) for k, v in value.items()}
    return value


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
