"""Scoring a user's latest weeks with the champion models (rows for ml.insights)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ml import anomaly, performance, registry
from ml import features as F


@dataclass
class Champions:
    performance: object | None = None
    performance_version: str | None = None
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
                found.notes.append(f"{name}'s champion forecasts a former target (the legacy performance score), "
                                   "not the overall score: its columns stay empty until a new one is trained")
            else:
                found.notes.append(f"{name} has no champion yet: its columns stay empty until one is trained")
            continue
        setattr(found, attr, registry.load(name, str(champ.version)))
        setattr(found, f"{attr}_version", str(champ.version))
    return found


def score(frame: pd.DataFrame, champions: Champions, login: str, weeks: int = 4) -> pd.DataFrame:
    """The last `weeks` weeks of every scope in `frame`, as ml.insights rows.

    `predicted_*` on week w is the forecast for week w + 1 made from data up to w; the anomaly
    columns judge week w itself. All history in `frame` is used to build features.
    """
    columns = ["login", *F.KEY_COLUMNS, "predicted_lead_time_hours", "predicted_overall_score",
               "anomaly_score", "is_anomaly", "anomaly_metric", "model_version"]
    if frame.empty:
        # Typed columns: a boolean mask over an object-typed empty `is_anomaly` would be read
        # as a list of column names and select none (then KeyError: 'anomaly_metric').
        empty = pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
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
    else:
        out["predicted_lead_time_hours"] = None
        out["predicted_overall_score"] = None
    if champions.anomaly is not None:
        verdict = anomaly.score_frame(champions.anomaly, frame)
        verdict = verdict[F.KEY_COLUMNS + ["anomaly_score", "is_anomaly", "anomaly_metric", "has_history"]]
        out = out.merge(verdict, on=F.KEY_COLUMNS, how="left")
        # Weeks without enough history are not judged: no score rather than a misleading 0.
        out.loc[~out["has_history"].fillna(False).astype(bool), "anomaly_score"] = None
        out["is_anomaly"] = out["is_anomaly"].fillna(False).astype(bool)
        out = out.drop(columns="has_history")
    else:
        out["anomaly_score"] = None
        out["is_anomaly"] = False
        out["anomaly_metric"] = None
    out["model_version"] = champions.model_version or None
    return out[columns]
