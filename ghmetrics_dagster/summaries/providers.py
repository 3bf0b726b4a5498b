"""OpenAI and Anthropic through their official SDKs, with errors sorted into what the router does.

The SDKs are built with `max_retries=0` and an explicit timeout: the router owns retries,
failover and the circuit breaker.
"""

from __future__ import annotations

import dataclasses
import time

from ghmetrics_dagster.core.redact import redact

DEFAULT_TIMEOUT_S = 30.0


@dataclasses.dataclass
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    latency_ms: int


class ProviderError(Exception):
    """A failed call. `kind` says what the router does with it:

    failover: 429, 5xx, 529 overloaded, timeouts, connection errors, unusable responses;
    bad_request: 400 (the request is wrong: trying elsewhere will not help);
    auth: 401/403 (the key is wrong: the provider is disabled for the run).
    """

    def __init__(
        self,
        provider: str,
        kind: str,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
        maybe_billed: bool = False,
    ):
        super().__init__(message)
        self.maybe_billed = maybe_billed  # a timed-out call may have been processed and billed
        self.provider = provider
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


def _retry_after(exc) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def classify(provider: str, exc: Exception, secrets: tuple[str, ...] = ()) -> ProviderError:
    """Maps an SDK exception (openai or anthropic: same class names) to a ProviderError."""
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    message = redact(str(exc).splitlines()[0] if str(exc) else name, secrets)[:300]
    if name in ("APITimeoutError",):
        return ProviderError(provider, "failover", f"{provider}: timed out", None, maybe_billed=True)
    if name in ("APIConnectionError",):
        return ProviderError(provider, "failover", f"{provider}: connection failed ({message})", None)
    if name == "APIResponseValidationError":
        return ProviderError(provider, "failover", f"{provider}: response did not match the API schema", status)
    if status is not None:
        if status in (401, 403):
            env = "OPENAI_API_KEY" if provider == "openai" else "ANTHROPIC_API_KEY"
            return ProviderError(
                provider,
                "auth",
                f"{provider} rejected the API key (HTTP {status}); check {env}. "
                f"{provider} is disabled for the rest of this run.",
                status,
            )
        if status == 400:
            return ProviderError(provider, "bad_request", f"{provider}: bad request (HTTP 400): {message}", status)
        if status == 429 or status == 408 or status == 409 or status >= 500:
            return ProviderError(provider, "failover", f"{provider}: HTTP {status}: {message}", status, _retry_after(exc))
        return ProviderError(provider, "bad_request", f"{provider}: HTTP {status}: {message}", status)
    return ProviderError(provider, "failover", f"{provider}: {name}: {message}", None)


class OpenAIProvider:
    name = "openai"
    # OpenAI's tokenisers average about 4 characters per token for English; used only to
    # reserve budget before the call (the bill uses the usage the API returns).
    chars_per_token = 4.0
    per_message_overhead = 4

    def __init__(self, api_key: str, base_url: str | None = None, timeout: float = DEFAULT_TIMEOUT_S, strict: bool = False):
        import openai

        self._secrets = (api_key,)
        self.client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url or None,
            max_retries=0,
            timeout=timeout,
            _strict_response_validation=strict,
        )

    def estimate_input_tokens(self, system: str, user: str) -> int:
        return int((len(system) + len(user)) / self.chars_per_token) + 2 * self.per_message_overhead + 3

    def request(self, model: str, system: str, user: str, max_tokens: int, temperature: float | None = None) -> dict:
        request = {
            "model": model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "max_completion_tokens": max_tokens,
        }
        if temperature is not None:  # newer reasoning models reject the parameter
            request["temperature"] = temperature
        return request

    def complete(self, request: dict) -> Completion:
        started = time.perf_counter()
        try:
            response = self.client.chat.completions.create(**request)
        except Exception as exc:
            raise classify(self.name, exc, self._secrets) from None
        latency = int((time.perf_counter() - started) * 1000)
        if not response.choices or response.usage is None:
            raise ProviderError(self.name, "failover", "openai: response without choices or usage")
        text = response.choices[0].message.content or ""
        usage = response.usage
        return Completion(text, usage.prompt_tokens, usage.completion_tokens, latency)


class AnthropicProvider:
    name = "anthropic"
    # Claude's tokeniser yields somewhat more tokens than OpenAI's for the same English text.
    chars_per_token = 3.5
    per_message_overhead = 5

    def __init__(self, api_key: str, base_url: str | None = None, timeout: float = DEFAULT_TIMEOUT_S, strict: bool = False):
        import anthropic

        self._secrets = (api_key,)
        self.client = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url or None,
            max_retries=0,
            timeout=timeout,
            _strict_response_validation=strict,
        )

    def estimate_input_tokens(self, system: str, user: str) -> int:
        return int((len(system) + len(user)) / self.chars_per_token) + 2 * self.per_message_overhead

    def request(self, model: str, system: str, user: str, max_tokens: int, temperature: float | None = None) -> dict:
        # The installed anthropic SDK (2.x) no longer takes `temperature`: never sent.
        return {
            "model": model,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            "max_tokens": max_tokens,
        }

    def complete(self, request: dict) -> Completion:
        started = time.perf_counter()
        try:
            response = self.client.messages.create(**request)
        except Exception as exc:
            raise classify(self.name, exc, self._secrets) from None
        latency = int((time.perf_counter() - started) * 1000)
        text = "".join(block.text for block in response.content if getattr(block, "type", None) == "text")
        return Completion(text, response.usage.input_tokens, response.usage.output_tokens, latency)


def configured_providers(llm, timeout: float | None = None, strict: bool = False) -> dict[str, object]:
    """The providers whose keys `llm` (an LLMSettings) holds (OPENAI_API_KEY, ANTHROPIC_API_KEY), keyed by name."""
    timeout = timeout or llm.timeout_s or DEFAULT_TIMEOUT_S
    found: dict[str, object] = {}
    if llm.openai_api_key:
        found["openai"] = OpenAIProvider(llm.openai_api_key, llm.openai_base_url, timeout=timeout, strict=strict)
    if llm.anthropic_api_key:
        found["anthropic"] = AnthropicProvider(
            llm.anthropic_api_key, llm.anthropic_base_url, timeout=timeout, strict=strict
        )
    return found
