"""Live error: the champion's forecasts against what happened, week by week.

A champion is trained on weeks up to its watermark; every target week after it is one the
model never saw, so its forecasts of those weeks are exactly the forecasts it made (or would
have made) in production. Recomputing them from the features, rather than storing each
forecast, gives the same numbers and survives late-arriving data. Each week's MASE is the
model's mean absolute error over the scopes divided by the naive last-value forecast's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml import backtest, performance
from ml import features as F

COLUMNS = ["target", "target_week", "scopes", "mae", "mae_naive", "mase"]


def live_errors(model, frame: pd.DataFrame, watermark: pd.Timestamp | None) -> pd.DataFrame:
    """One row per target and target week after `watermark` that has happened."""
    rows = performance.labelled_rows(F.forecast_features(frame))
    if watermark is not None:
        rows = rows[rows["target_week_start"] > pd.Timestamp(watermark)]
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    predicted = model.predict(rows)
    out = []
    for i, target in enumerate(F.TARGETS):
        actual = rows[f"target_{target}"].to_numpy(dtype=float)
        naive = rows[f"naive_{target}"].to_numpy(dtype=float)
        frame_t = pd.DataFrame({"week": rows["target_week_start"].to_numpy(), "error": np.abs(predicted[:, i] - actual),
                                "naive_error": np.abs(naive - actual)}).dropna()
        for week, group in frame_t.groupby("week"):
            mae, mae_naive = float(group["error"].mean()), float(group["naive_error"].mean())
            mase = mae / mae_naive if mae_naive > 0 else (1.0 if mae == 0 else float("inf"))
            out.append({"target": target, "target_week": pd.Timestamp(week), "scopes": len(group),
                        "mae": mae, "mae_naive": mae_naive, "mase": mase})
    return pd.DataFrame(out, columns=COLUMNS).sort_values(["target", "target_week"]).reset_index(drop=True)


def weeks_behind_naive(errors: pd.DataFrame, target: str) -> int:
    """How many of the latest consecutive target weeks the model did worse than naive on."""
    weeks = errors[errors["target"] == target].sort_values("target_week")["mase"].to_numpy(dtype=float)
    count = 0
    for mase in weeks[::-1]:
        if not mase > 1.0:
            break
        count += 1
    return count


def behind_naive(errors: pd.DataFrame, weeks: int) -> dict[str, int]:
    """Targets whose live error has been worse than naive for at least `weeks` weeks in a row."""
    found = {t: weeks_behind_naive(errors, t) for t in F.TARGETS}
    return {t: n for t, n in found.items() if n >= weeks}


def summary(errors: pd.DataFrame) -> dict[str, float]:
    """MLflow metrics: per target, the pooled live MASE over every live week and its count."""
    out: dict[str, float] = {}
    for target in F.TARGETS:
        rows = errors[errors["target"] == target]
        short = backtest.SHORT_NAMES[target]
        out[f"live_weeks_{short}"] = float(len(rows))
        if len(rows):
            weights = rows["scopes"].to_numpy(dtype=float)
            mae = float(np.average(rows["mae"].to_numpy(dtype=float), weights=weights))
            naive = float(np.average(rows["mae_naive"].to_numpy(dtype=float), weights=weights))
            out[f"live_mase_{short}"] = mae / naive if naive > 0 else float("nan")
    return out
