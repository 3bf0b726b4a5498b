"""When a model should be (re)trained. Pure: the caller supplies the facts and the thresholds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class TrainingPolicy:
    """Thresholds (configuration, not constants: Dagster run config sets them)."""

    min_new_samples: int = 50
    max_age_days: float = 7.0
    force: bool = False
    # A champion whose live forecasts of a published target are worse than naive this many
    # weeks in a row is retrained (ml/live.py) and that target withdrawn meanwhile.
    live_error_weeks: int = 3

    def __post_init__(self):
        if self.min_new_samples < 1:
            raise ValueError(f"min_new_samples must be at least 1, not {self.min_new_samples}")
        if self.live_error_weeks < 1:
            raise ValueError(f"live_error_weeks must be at least 1, not {self.live_error_weeks}")
        if self.max_age_days < 0:
            raise ValueError(f"max_age_days must not be negative, not {self.max_age_days}")


@dataclass(frozen=True)
class LastTraining:
    """What the latest trained version of a model saw (from its registry tags)."""

    version: str
    trained_at: dt.datetime
    watermark: pd.Timestamp | None  # the newest week_start in its training data
    sample_count: int  # scope-weeks in its training data
    has_champion: bool = True  # whether any version holds the champion alias


@dataclass(frozen=True)
class Decision:
    train: bool
    reason: str
    new_samples: int
    age_days: float | None
    total_samples: int

    def as_metadata(self) -> dict:
        return {
            "train": self.train,
            "reason": self.reason,
            "new_samples": self.new_samples,
            "age_days": None if self.age_days is None else round(self.age_days, 3),
            "total_samples": self.total_samples,
        }


def count_new_samples(week_starts: pd.Series, last: LastTraining) -> int:
    """Scope-weeks the last training did not see.

    Weeks after its watermark are new. Weeks at or before it are new only beyond the count it
    trained on (a repository added later brings its own history).
    """
    weeks = pd.to_datetime(week_starts)
    if getattr(weeks.dt, "tz", None) is not None:
        weeks = weeks.dt.tz_localize(None)
    if last.watermark is None:
        return int(len(weeks))
    after = int((weeks > last.watermark).sum())
    before = int(len(weeks)) - after
    return after + max(0, before - last.sample_count)


def decide(week_starts: pd.Series, last: LastTraining | None, policy: TrainingPolicy,
           now: dt.datetime | None = None, live_behind: dict[str, int] | None = None) -> Decision:
    """Whether to train now, and why (the reason names the counts and the age).

    Three triggers: enough new scope-weeks, age with new data, and `live_behind` (published
    targets whose champion has forecast worse than naive for weeks in a row, ml/live.py)."""
    now = now or dt.datetime.now(dt.UTC)
    total = int(len(week_starts))
    if last is None:
        if policy.force:
            return Decision(True, "forced by run config (no model yet)", total, None, total)
        return Decision(True, f"first training: no model yet ({total} scope-weeks available)", total, None, total)
    new = count_new_samples(week_starts, last)
    age = (now - last.trained_at).total_seconds() / 86400
    facts = (f"{new} new scope-weeks since version {last.version} (watermark "
             f"{last.watermark.date() if last.watermark is not None else 'none'}), trained {age:.1f} days ago")
    if policy.force:
        return Decision(True, f"forced by run config; {facts}", new, age, total)
    if live_behind:
        behind = ", ".join(f"{target} for {weeks} weeks" for target, weeks in live_behind.items())
        return Decision(True, f"{facts}: the champion's live forecasts are worse than naive ({behind}; "
                              f"live_error_weeks={policy.live_error_weeks})", new, age, total)
    if not last.has_champion and new == 0:
        # No champion yet because the last version did not beat naive: retraining on the same
        # data would give the same model.
        return Decision(False, f"no champion yet and no new data; {facts}", new, age, total)
    if new >= policy.min_new_samples:
        return Decision(True, f"{facts}: at least min_new_samples={policy.min_new_samples}", new, age, total)
    if age >= policy.max_age_days and new >= 1:
        return Decision(True, f"{facts}: older than max_age_days={policy.max_age_days:g} with new data", new, age, total)
    if not last.has_champion and new >= 1:
        return Decision(True, f"no champion yet; {facts}", new, age, total)
    return Decision(
        False,
        f"{facts}: below min_new_samples={policy.min_new_samples} and "
        + (f"younger than max_age_days={policy.max_age_days:g}" if age < policy.max_age_days else "no new data"),
        new,
        age,
        total,
    )
