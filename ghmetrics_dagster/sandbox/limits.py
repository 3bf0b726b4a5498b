"""Rate limits and injected faults of the sandbox, per token, as GitHub applies them.

Primary limits: an hourly budget per token and resource (REST "core": 1 per request;
"graphql": the query's cost in points). The window starts at the token's first charged
request and resets an hour later, as GitHub's do.

Secondary limits (off unless configured): too many concurrent requests per token (403) and
too many requests per minute per token (429; GitHub counts 1 point per GET or GraphQL query),
both with `Retry-After`.

Faults are drawn from a seeded random stream in request order, so a sequential client sees
the same faults on every run with the same seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import threading
import time
from collections import deque

WINDOW_SECONDS = 3600


def fingerprint(token: str) -> str:
    """A stable, non-reversible name for a token (logs and stats never hold the token)."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class FaultConfig:
    """What can go wrong, and how often; every rate is a probability per request."""

    seed: int = 0
    rate_5xx: float = 0.0
    statuses_5xx: tuple[int, ...] = (500, 502, 503, 504)
    rate_hang: float = 0.0
    hang_seconds: float = 30.0  # longer than any sane client timeout
    rate_truncated_json: float = 0.0
    # GraphQL queries that may return more nodes than this get a 502, as big pages do on GitHub.
    graphql_502_node_threshold: int | None = None
    # Secondary limits per token: concurrent requests in flight, requests per rolling minute.
    secondary_max_concurrent: int | None = None
    secondary_points_per_minute: int | None = None
    retry_after_seconds: int = 1

    def __post_init__(self):
        for name in ("rate_5xx", "rate_hang", "rate_truncated_json"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultConfig.{name} must be between 0 and 1, got {value}")
        if self.rate_5xx + self.rate_hang + self.rate_truncated_json > 1.0:
            raise ValueError("FaultConfig: rate_5xx + rate_hang + rate_truncated_json must not exceed 1")


class FaultInjector:
    """Decides, per request and in arrival order, whether to inject a fault."""

    def __init__(self, config: FaultConfig):
        self.config = config
        self._random = random.Random(config.seed)
        self._lock = threading.Lock()

    def draw(self) -> tuple[str | None, int]:
        """(fault kind or None, 5xx status). Kinds: "5xx", "hang", "truncated_json"."""
        c = self.config
        if not (c.rate_5xx or c.rate_hang or c.rate_truncated_json):
            return None, 0
        with self._lock:
            x = self._random.random()
            status = c.statuses_5xx[self._random.randrange(len(c.statuses_5xx))] if c.statuses_5xx else 502
        if x < c.rate_5xx:
            return "5xx", status
        if x < c.rate_5xx + c.rate_hang:
            return "hang", 0
        if x < c.rate_5xx + c.rate_hang + c.rate_truncated_json:
            return "truncated_json", 0
        return None, 0


@dataclasses.dataclass
class Budget:
    limit: int
    used: int = 0
    window_start: float | None = None

    def refresh(self, now: float) -> None:
        if self.window_start is not None and now >= self.window_start + WINDOW_SECONDS:
            self.used = 0
            self.window_start = None

    def reset_at(self, now: float) -> int:
        start = self.window_start if self.window_start is not None else now
        return int(start + WINDOW_SECONDS)

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclasses.dataclass
class TokenState:
    core: Budget
    graphql: Budget
    in_flight: int = 0
    recent: deque = dataclasses.field(default_factory=deque)  # request times, last minute
    requests: int = 0
    rest_requests: int = 0
    graphql_requests: int = 0
    not_modified: int = 0
    rate_limited: int = 0
    secondary_limited: int = 0
    faults: dict = dataclasses.field(default_factory=dict)


class RateLimits:
    """Per-token budgets and counters; every method is thread-safe."""

    def __init__(self, rest_limit: int = 5000, graphql_limit: int = 5000, clock=time.time):
        self.rest_limit = rest_limit
        self.graphql_limit = graphql_limit
        self.clock = clock
        self._tokens: dict[str, TokenState] = {}
        self._lock = threading.Lock()

    def _state(self, key: str) -> TokenState:
        state = self._tokens.get(key)
        if state is None:
            # Anonymous REST callers get GitHub's 60 requests an hour.
            core = 60 if key == "anonymous" else self.rest_limit
            state = self._tokens[key] = TokenState(Budget(core), Budget(self.graphql_limit))
        return state

    def budget(self, key: str, resource: str) -> Budget:
        with self._lock:
            state = self._state(key)
            budget = state.core if resource == "core" else state.graphql
            budget.refresh(self.clock())
            return dataclasses.replace(budget)

    def try_charge(self, key: str, resource: str, cost: int) -> tuple[bool, Budget]:
        """Charges `cost` if the budget allows it; (charged, budget after)."""
        with self._lock:
            state = self._state(key)
            budget = state.core if resource == "core" else state.graphql
            now = self.clock()
            budget.refresh(now)
            if budget.used + cost > budget.limit:
                state.rate_limited += 1
                return False, dataclasses.replace(budget)
            if cost and budget.window_start is None:
                budget.window_start = now
            budget.used += cost
            return True, dataclasses.replace(budget)

    def enter(self, key: str, config: FaultConfig) -> tuple[str | None, int]:
        """Admits a request past the secondary limits: (None, 0) or (reason, retry_after)."""
        with self._lock:
            state = self._state(key)
            now = self.clock()
            state.requests += 1
            if config.secondary_max_concurrent is not None and state.in_flight >= config.secondary_max_concurrent:
                state.secondary_limited += 1
                return "concurrency", config.retry_after_seconds
            if config.secondary_points_per_minute is not None:
                while state.recent and state.recent[0] <= now - 60:
                    state.recent.popleft()
                if len(state.recent) >= config.secondary_points_per_minute:
                    state.secondary_limited += 1
                    wait = int(state.recent[0] + 60 - now) + 1
                    return "points_per_minute", max(config.retry_after_seconds, wait)
                state.recent.append(now)
            state.in_flight += 1
            return None, 0

    def leave(self, key: str) -> None:
        with self._lock:
            self._state(key).in_flight -= 1

    def count(self, key: str, *, resource: str | None = None, not_modified: bool = False, fault: str | None = None):
        with self._lock:
            state = self._state(key)
            if resource == "core":
                state.rest_requests += 1
            elif resource == "graphql":
                state.graphql_requests += 1
            if not_modified:
                state.not_modified += 1
            if fault:
                state.faults[fault] = state.faults.get(fault, 0) + 1

    def reset(self) -> None:
        with self._lock:
            for state in self._tokens.values():
                state.core = Budget(state.core.limit)
                state.graphql = Budget(state.graphql.limit)
                state.recent.clear()

    def stats(self, key: str) -> dict:
        with self._lock:
            state = self._state(key)
            now = self.clock()
            state.core.refresh(now)
            state.graphql.refresh(now)
            return {
                "rest_limit": state.core.limit,
                "rest_used": state.core.used,
                "rest_remaining": state.core.remaining,
                "graphql_limit": state.graphql.limit,
                "graphql_used": state.graphql.used,
                "graphql_remaining": state.graphql.remaining,
                "requests": state.requests,
                "rest_requests": state.rest_requests,
                "graphql_requests": state.graphql_requests,
                "not_modified": state.not_modified,
                "rate_limited": state.rate_limited,
                "secondary_limited": state.secondary_limited,
                "faults": sum(state.faults.values()),
                "faults_by_kind": dict(sorted(state.faults.items())),
            }

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._tokens)
