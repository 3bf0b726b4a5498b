"""Scoring a user's latest weeks with the champion models (rows for ml.insights)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ml import anomaly, backtest, performance, registry
from ml import features as F

FORECAST_STATUS_COLUMNS = {F.LEAD_TIME: "lead_time_forecast_status", F.SCORE: "overall_score_forecast_status"}
PUBLISHED, NO_BETTER, BEHIND_LIVE = "published", "no_better_than_naive", "behind_naive_live"
COLUMNS = ["login", *F.KEY_COLUMNS, *performance.OUTPUTS, *performance.INTERVAL_OUTPUTS, "interval_level",
           *FORECAST_STATUS_COLUMNS.values(), "anomaly_score", "is_anomaly", "anomaly_metric",
           *anomaly.EXPLANATION_COLUMNS, "model_version"]


@dataclass
class Champions:
    performance: object | None = None
    performance_version: str | None = None
    # Per target: published, no_better_than_naive (its backtest) or behind_naive_live (its live error).
    forecast_status: dict[str, str] = field(default_factory=dict)
    anomaly: object | None = None
    anomaly_version: str | None = None
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # registered-model names with no champion

    @property
    def model_version(self) -> str:
        parts = []
        if self.performance_version:
            parts.append(f"{registry.PERFORMANCE}:{self.performance_version}")
        if self.anomaly_version:
            parts.append(f"{registry.ANOMALY}:{self.anomaly_version}")
        return ",".join(parts)


def load_champions(tracking_uri: str) -> Champions:
    """Both champions (None where a model has none yet, with a note saying so)."""
    mlflow_client = registry.client(tracking_uri)
    found = Champions()
    for name, attr in ((registry.PERFORMANCE, "performance"), (registry.ANOMALY, "anomaly")):
        champ = registry.champion(mlflow_client, name, registry.REQUIRED_TAGS[name])
        if champ is None:
            found.missing.append(name)
            if registry.champion(mlflow_client, name) is not None:
                found.notes.append(f"{name}'s champion was trained for a former target or evaluation (the legacy "
                                   "performance score, or a single holdout without intervals): its columns stay "
                                   "empty until a new one is trained")
            else:
                found.notes.append(f"{name} has no champion yet: its columns stay empty until one is trained")
            continue
        setattr(found, attr, registry.load(name, str(champ.version)))
        setattr(found, f"{attr}_version", str(champ.version))
        if name == registry.PERFORMANCE:
            found.forecast_status = forecast_status(found.performance, champ.tags or {})
    return found


def forecast_status(model, tags: dict) -> dict[str, str]:
    """Per target, whether the champion's forecast is shown, from its backtest and live error."""
    status = {}
    for target, published in performance.published_targets(model).items():
        withdrawn = tags.get(f"live_withdrawn_{backtest.SHORT_NAMES[target]}") == "true"
        status[target] = NO_BETTER if not published else BEHIND_LIVE if withdrawn else PUBLISHED
    return status


def score(frame: pd.DataFrame, champions: Champions, login: str, weeks: int = 4) -> pd.DataFrame:
    """The last `weeks` weeks of every scope in `frame`, as ml.insights rows.

    `predicted_*` on week w is the forecast for week w + 1 made from data up to w, with its
    interval, and only for targets whose status is published (the others stay empty and say
    why); the anomaly columns judge week w itself, on a stated scale. All history in `frame` is
    used to build features.
    """
    if frame.empty:
        # Typed columns: a boolean mask over an object-typed empty `is_anomaly` would be read
        # as a list of column names and select none (then KeyError: 'anomaly_metric').
        empty = pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})
        empty["is_anomaly"] = empty["is_anomaly"].astype(bool)
        return empty
    frame = F.prepare(frame)
    rank = frame.groupby(["scope_type", "scope"])["week_start"].rank(ascending=False, method="first")
    latest = frame.loc[rank <= weeks, F.KEY_COLUMNS].reset_index(drop=True)
    out = latest.copy()
    out.insert(0, "login", login)
    if champions.performance is not None:
        forecasts = performance.predict_latest(champions.performance, frame)
        out = out.merge(forecasts, on=F.KEY_COLUMNS, how="left")
        out["interval_level"] = getattr(champions.performance, "level_", None)
        for target, output in zip(F.TARGETS, performance.OUTPUTS, strict=False):
            status = champions.forecast_status.get(target, PUBLISHED)
            out[FORECAST_STATUS_COLUMNS[target]] = status
            if status != PUBLISHED:
                out[[output, f"{output}_low", f"{output}_high"]] = None
    else:
        for column in [*performance.OUTPUTS, *performance.INTERVAL_OUTPUTS, "interval_level",
                       *FORECAST_STATUS_COLUMNS.values()]:
            out[column] = None
    if champions.anomaly is not None:
        verdict = anomaly.score_frame(champions.anomaly, frame, explain=True)
        verdict = verdict[F.KEY_COLUMNS + ["anomaly_score", "is_anomaly", "anomaly_metric", "has_history",
                                           *anomaly.EXPLANATION_COLUMNS]]
        out = out.merge(verdict, on=F.KEY_COLUMNS, how="left")
        # Weeks without enough history are not judged: no score rather than a misleading 0.
        unjudged = ~out["has_history"].fillna(False).astype(bool)
        out.loc[unjudged, ["anomaly_score", *anomaly.EXPLANATION_COLUMNS]] = None
        out["is_anomaly"] = out["is_anomaly"].fillna(False).astype(bool)
        out = out.drop(columns="has_history")
    else:
        out["anomaly_score"] = None
        out["is_anomaly"] = False
        out["anomaly_metric"] = None
        for column in anomaly.EXPLANATION_COLUMNS:
            out[column] = None
    out["model_version"] = champions.model_version or None
    return out[COLUMNS]
