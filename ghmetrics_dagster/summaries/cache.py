"""Answers cached by the SHA-256 of the whole request and the prompt version (app.llm_cache).

Only grounded answers are stored, so a hit can be served as is, at zero cost.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading

from ghmetrics_dagster.summaries.db import SharedConnection
from ghmetrics_dagster.warehouse import app_data


def request_key(provider: str, request: dict, prompt_version: str) -> str:
    """SHA-256 of the canonical JSON of the request (model, messages, parameters)."""
    canonical = json.dumps(
        {"provider": provider, "request": request, "prompt_version": prompt_version},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclasses.dataclass
class CachedAnswer:
    response: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int


class MemoryCache:
    def __init__(self):
        self._rows: dict[str, CachedAnswer] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: list[str]) -> dict[str, CachedAnswer]:
        with self._lock:
            return {k: self._rows[k] for k in keys if k in self._rows}

    def put(self, key: str, answer: CachedAnswer) -> None:
        with self._lock:
            self._rows[key] = answer


class PostgresCache:
    def __init__(self, database_url: str):
        self.db = SharedConnection(database_url)

    def get_many(self, keys: list[str]) -> dict[str, CachedAnswer]:
        if not keys:
            return {}
        with self.db.cursor() as cur:
            return {row[0]: CachedAnswer(*row[1:]) for row in app_data.cached_answers(cur, keys)}

    def put(self, key: str, answer: CachedAnswer) -> None:
        with self.db.cursor() as cur:
            app_data.cache_answer(cur, key, answer.response, answer.provider, answer.model,
                                  answer.input_tokens, answer.output_tokens)
