"""The LLM router: picks a model by price and tier, fails over, budgets, caches and grounds.

Order of a summary: the cache (any candidate's request) -> providers in order of estimated
cost, each at most once per round, rounds separated by backoff -> the rule-based writer,
which is always last and always grounded.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from pathlib import Path

from ghmetrics_dagster.core.redact import redact
from ghmetrics_dagster.summaries import grounding, rules
from ghmetrics_dagster.summaries.aggregates import SummaryInput
from ghmetrics_dagster.summaries.budget import Budget, BudgetExhausted, ModelPrice
from ghmetrics_dagster.summaries.cache import CachedAnswer, MemoryCache, PostgresCache, request_key
from ghmetrics_dagster.summaries.prompts import MAX_OUTPUT_TOKENS, PROMPT_VERSION, build_messages
from ghmetrics_dagster.summaries.providers import ProviderError, configured_providers

log = logging.getLogger("ghmetrics.summaries")

# USD per million tokens (list prices; override with GHMETRICS_LLM_PRICES).
DEFAULT_PRICES = (
    ModelPrice("openai", "gpt-4.1-mini", 0.40, 1.60, "routine"),
    ModelPrice("openai", "gpt-4.1", 2.00, 8.00, "strong"),
    ModelPrice("anthropic", "claude-haiku-4-5", 1.00, 5.00, "routine"),
    ModelPrice("anthropic", "claude-sonnet-4-5", 3.00, 15.00, "strong"),
)
TIERS = ("routine", "strong")


class ConfigError(ValueError):
    pass


def load_prices(value: str | None) -> list[ModelPrice]:
    """The price table from GHMETRICS_LLM_PRICES: a JSON list (or a path to a JSON file) of
    {provider, model, input_usd_per_mtok, output_usd_per_mtok, tier}; None: the default prices."""
    if not value:
        return list(DEFAULT_PRICES)
    try:
        text = Path(value).read_text() if not value.lstrip().startswith("[") else value
        rows = json.loads(text)
        prices = [ModelPrice(**row) for row in rows]
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"GHMETRICS_LLM_PRICES is not a JSON list of {{provider, model, input_usd_per_mtok, "
            f"output_usd_per_mtok, tier}} ({exc}); fix it or unset it for the default prices"
        ) from None
    for price in prices:
        if price.tier not in TIERS or price.provider not in ("openai", "anthropic"):
            raise ConfigError(
                f"GHMETRICS_LLM_PRICES: {price.model} has provider {price.provider!r} and tier {price.tier!r}; "
                "providers are openai/anthropic and tiers routine/strong"
            )
    return prices


@dataclasses.dataclass
class RouterConfig:
    prices: list[ModelPrice] = dataclasses.field(default_factory=lambda: list(DEFAULT_PRICES))
    max_output_tokens: int = MAX_OUTPUT_TOKENS
    temperature: float | None = None  # provider default unless set
    max_rounds: int = 2
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    breaker_threshold: int = 3
    breaker_cooldown_s: float = 60.0

    @classmethod
    def from_settings(cls, llm) -> RouterConfig:
        return cls(prices=load_prices(llm.prices))


@dataclasses.dataclass
class Attempt:
    provider: str
    model: str
    outcome: str  # ok, cache_hit, failed, rejected, skipped
    detail: str = ""


@dataclasses.dataclass
class SummaryResult:
    login: str
    text: str
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0  # everything billed for this summary, rejected answers included
    latency_ms: int = 0
    cache_hit: bool = False
    grounded: bool = True
    tier: str = "routine"
    budget_exhausted: bool = False
    attempts: list[Attempt] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class CircuitBreaker:
    """Skips a provider for a cool-down after `threshold` consecutive failures."""

    def __init__(self, threshold: int, cooldown_s: float, clock=time.monotonic):
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.failures: dict[str, int] = {}
        self.opened_at: dict[str, float] = {}

    def allow(self, provider: str) -> bool:
        opened = self.opened_at.get(provider)
        # After the cool-down one trial call is let through (half-open).
        return opened is None or self.clock() - opened >= self.cooldown_s

    def record_success(self, provider: str) -> None:
        self.failures[provider] = 0
        self.opened_at.pop(provider, None)

    def record_failure(self, provider: str) -> None:
        self.failures[provider] = self.failures.get(provider, 0) + 1
        if self.failures[provider] >= self.threshold:
            self.opened_at[provider] = self.clock()


@dataclasses.dataclass
class _Candidate:
    price: ModelPrice
    provider: object
    request: dict
    key: str
    reserve_usd: float


class Router:
    def __init__(
        self,
        providers: dict[str, object],
        config: RouterConfig | None = None,
        budget: Budget | None = None,
        cache=None,
        clock=time.monotonic,
        sleep=time.sleep,
        logger: logging.Logger | None = None,
    ):
        self.providers = providers
        self.config = config or RouterConfig()
        self.budget = budget or Budget(1.0, 10.0)
        self.cache = cache if cache is not None else MemoryCache()
        self.breaker = CircuitBreaker(self.config.breaker_threshold, self.config.breaker_cooldown_s, clock)
        self.sleep = sleep
        self.log = logger or log
        self.disabled: dict[str, str] = {}  # provider -> why (401 for this run)
        self.run_notes: list[str] = []  # things the run must say (budget exhausted, provider disabled)

    @classmethod
    def from_settings(cls, llm, database_url: str | None = None, run_id: str | None = None, logger=None,
                      **provider_kwargs) -> Router:
        """Providers whose keys `llm` (an LLMSettings) holds; cache and day budget in Postgres
        when a URL is given."""
        return cls(
            configured_providers(llm, **provider_kwargs),
            RouterConfig.from_settings(llm),
            Budget.from_settings(llm, database_url, run_id),
            PostgresCache(database_url) if database_url else MemoryCache(),
            logger=logger,
        )

    # -- routing ---------------------------------------------------------------------------

    def _candidates(self, tier: str, system: str, user: str) -> list[_Candidate]:
        chosen = []
        for name, provider in self.providers.items():
            models = [p for p in self.config.prices if p.provider == name]
            in_tier = [p for p in models if p.tier == tier] or models
            if not in_tier:
                continue
            estimate = provider.estimate_input_tokens(system, user)
            best = min(in_tier, key=lambda p: p.cost(estimate, self.config.max_output_tokens))
            request = provider.request(best.model, system, user, self.config.max_output_tokens, self.config.temperature)
            chosen.append(
                _Candidate(
                    best,
                    provider,
                    request,
                    request_key(name, request, PROMPT_VERSION),
                    best.cost(estimate, self.config.max_output_tokens),
                )
            )
        return sorted(chosen, key=lambda c: c.reserve_usd)

    def _note(self, result: SummaryResult, message: str, run_level: bool = False) -> None:
        result.notes.append(message)
        if run_level and message not in self.run_notes:
            self.run_notes.append(message)
            self.log.warning(message)

    def summarise(self, data: SummaryInput) -> SummaryResult:
        started = time.perf_counter()
        tier = "strong" if data.needs_strong_model else "routine"
        result = SummaryResult(data.login, "", rules.PROVIDER, rules.MODEL, tier=tier)
        if not data.has_data:
            self._note(result, "no weekly rows for this user: rule-based summary")
            return self._rules(data, result, started)
        if not self.providers:
            self._note(result, "no LLM provider configured (OPENAI_API_KEY, ANTHROPIC_API_KEY): rule-based summary")
            return self._rules(data, result, started)

        system, user = build_messages(data)
        candidates = self._candidates(tier, system, user)

        hits = self.cache.get_many([c.key for c in candidates])
        for candidate in candidates:
            hit = hits.get(candidate.key)
            if hit is None:
                continue
            check = grounding.check(hit.response, data)
            if not check.grounded:  # a prompt-compatible but stale entry: ignore it
                continue
            result.text, result.provider, result.model = check.text, hit.provider, hit.model
            result.input_tokens, result.output_tokens = hit.input_tokens, hit.output_tokens
            result.cache_hit, result.grounded = True, True
            result.attempts.append(Attempt(hit.provider, hit.model, "cache_hit"))
            result.latency_ms = int((time.perf_counter() - started) * 1000)
            return result

        for round_no in range(self.config.max_rounds):
            retryable, retry_after = False, 0.0
            for candidate in candidates:
                name, model = candidate.price.provider, candidate.price.model
                if name in self.disabled:
                    result.attempts.append(Attempt(name, model, "skipped", "disabled for this run"))
                    continue
                if not self.breaker.allow(name):
                    result.attempts.append(Attempt(name, model, "skipped", "circuit open"))
                    continue
                try:
                    reservation = self.budget.reserve(candidate.reserve_usd, name, model)
                except BudgetExhausted as exc:
                    result.budget_exhausted = True
                    self._note(result, f"LLM budget exhausted: {exc}; rule-based summaries from here on", run_level=True)
                    return self._rules(data, result, started)
                try:
                    completion = candidate.provider.complete(candidate.request)
                except ProviderError as exc:
                    # A timed-out call may still be billed: keep its reservation.
                    self.budget.settle(reservation, reservation.amount if exc.maybe_billed else 0.0)
                    message = redact(str(exc))
                    result.attempts.append(Attempt(name, model, "failed", message))
                    if exc.kind == "auth":
                        self.disabled[name] = message
                        self._note(result, message, run_level=True)
                        continue
                    if exc.kind == "bad_request":
                        self._note(result, f"{message}; not retried elsewhere: rule-based summary")
                        return self._rules(data, result, started)
                    self.breaker.record_failure(name)
                    retryable = True
                    retry_after = max(retry_after, exc.retry_after or 0.0)
                    continue
                cost = candidate.price.cost(completion.input_tokens, completion.output_tokens)
                self.budget.settle(reservation, cost)
                self.breaker.record_success(name)
                result.cost_usd += cost
                result.input_tokens += completion.input_tokens
                result.output_tokens += completion.output_tokens
                check = grounding.check(completion.text, data)
                if not check.grounded:
                    result.attempts.append(Attempt(name, model, "rejected", "; ".join(check.reasons)[:500]))
                    continue
                self.cache.put(
                    candidate.key,
                    CachedAnswer(check.text, name, model, completion.input_tokens, completion.output_tokens),
                )
                result.text, result.provider, result.model, result.grounded = check.text, name, model, True
                result.attempts.append(Attempt(name, model, "ok"))
                result.latency_ms = int((time.perf_counter() - started) * 1000)
                return result
            if not retryable or round_no == self.config.max_rounds - 1:
                break
            backoff = min(self.config.backoff_max_s, self.config.backoff_base_s * 2**round_no)
            self.sleep(min(self.config.backoff_max_s, max(retry_after, backoff * random.uniform(0.5, 1.0))))

        self._note(result, "no provider gave a grounded answer: rule-based summary")
        return self._rules(data, result, started)

    def _rules(self, data: SummaryInput, result: SummaryResult, started: float) -> SummaryResult:
        check = grounding.check(rules.write_summary(data), data)
        result.text, result.provider, result.model = check.text, rules.PROVIDER, rules.MODEL
        result.grounded = check.grounded
        result.attempts.append(Attempt(rules.PROVIDER, rules.MODEL, "ok" if check.grounded else "rejected"))
        result.latency_ms = int((time.perf_counter() - started) * 1000)
        return result
