"""Spending limits per run and per UTC day, reserved before each call.

A call reserves its worst-case cost (estimated input tokens plus the full output allowance)
and settles to the billed cost afterwards, so concurrent runs cannot overshoot the day's
limit together. The day's ledger is app.llm_spend (Postgres) or, without a database, memory.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

from ghmetrics_dagster.summaries.db import SharedConnection
from ghmetrics_dagster.warehouse import app_data

DEFAULT_RUN_USD = 1.0
DEFAULT_DAY_USD = 10.0
_DAY_LOCK = 0x676D_6C6C  # "gmll": serialises reservations across processes


@dataclasses.dataclass(frozen=True)
class ModelPrice:
    provider: str
    model: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    tier: str  # "routine" (cheap) or "strong"

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_usd_per_mtok + output_tokens * self.output_usd_per_mtok) / 1_000_000


@dataclasses.dataclass
class Reservation:
    id: int | None
    amount: float


class BudgetExhausted(Exception):
    pass


class MemoryLedger:
    def __init__(self):
        self._rows: dict[int, tuple[dt.date, float]] = {}
        self._next = 1
        self._lock = threading.Lock()

    def reserve(self, day: dt.date, limit: float, amount: float, run_id, provider, model) -> int | None:
        with self._lock:
            spent = sum(cost for d, cost in self._rows.values() if d == day)
            if spent + amount > limit + 1e-12:
                return None
            row_id, self._next = self._next, self._next + 1
            self._rows[row_id] = (day, amount)
            return row_id

    def settle(self, row_id: int, cost: float) -> None:
        with self._lock:
            day, _ = self._rows[row_id]
            self._rows[row_id] = (day, cost)

    def spent(self, day: dt.date) -> float:
        return sum(cost for d, cost in self._rows.values() if d == day)


class PostgresLedger:
    def __init__(self, database_url: str):
        self.db = SharedConnection(database_url)

    def reserve(self, day: dt.date, limit: float, amount: float, run_id, provider, model) -> int | None:
        with self.db.cursor() as cur:
            cur.execute("select pg_advisory_xact_lock(%s)", (_DAY_LOCK,))
            if app_data.spent_on(cur, day) + amount > limit + 1e-12:
                return None
            return app_data.reserve_spend(cur, day, run_id, provider, model, amount)

    def settle(self, row_id: int, cost: float) -> None:
        with self.db.cursor() as cur:
            app_data.settle_spend(cur, row_id, cost)

    def spent(self, day: dt.date) -> float:
        with self.db.cursor() as cur:
            return app_data.spent_on(cur, day)


class Budget:
    """Per-run limit in memory, per-day limit in the ledger; `reserve` raises BudgetExhausted."""

    def __init__(self, per_run_usd: float, per_day_usd: float, ledger=None, run_id: str | None = None, today=None):
        self.per_run_usd = per_run_usd
        self.per_day_usd = per_day_usd
        self.ledger = ledger or MemoryLedger()
        self.run_id = run_id
        self._today = today or (lambda: dt.datetime.now(dt.UTC).date())
        self.run_spent = 0.0  # reserved or settled in this run
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, llm, database_url: str | None = None, run_id: str | None = None) -> Budget:
        """The budgets `llm` (an LLMSettings) sets, else the defaults; the day's ledger in Postgres
        when a URL is given."""
        return cls(
            DEFAULT_RUN_USD if llm.budget_run_usd is None else llm.budget_run_usd,
            DEFAULT_DAY_USD if llm.budget_day_usd is None else llm.budget_day_usd,
            PostgresLedger(database_url) if database_url else MemoryLedger(),
            run_id,
        )

    def reserve(self, amount: float, provider: str, model: str) -> Reservation:
        with self._lock:
            if self.run_spent + amount > self.per_run_usd + 1e-12:
                raise BudgetExhausted(
                    f"the per-run LLM budget of ${self.per_run_usd:.2f} is used up "
                    f"(${self.run_spent:.4f} spent; GHMETRICS_LLM_BUDGET_RUN_USD)"
                )
            row_id = self.ledger.reserve(self._today(), self.per_day_usd, amount, self.run_id, provider, model)
            if row_id is None:
                raise BudgetExhausted(
                    f"the per-day LLM budget of ${self.per_day_usd:.2f} is used up (GHMETRICS_LLM_BUDGET_DAY_USD)"
                )
            self.run_spent += amount
            return Reservation(row_id, amount)

    def settle(self, reservation: Reservation, cost: float) -> None:
        """Replaces the reserved amount by the billed cost (0 when the call failed unbilled)."""
        with self._lock:
            self.run_spent += cost - reservation.amount
            self.ledger.settle(reservation.id, cost)
