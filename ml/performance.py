"""The performance model: next week's median lead time and overall score per scope.

The overall score is DORA's Quick Check headline (0..10, docs/dora.md). Two gradient-boosted
tree ensembles learn how far next week moves from the last known value (on log1p hours for lead
time, points for the score) from lagged weekly features. They minimise
absolute error, the metric they are judged on, so when history says nothing they stay at
"no change" rather than chasing noise. Each target is judged against that naive last-value
forecast over rolling forecast origins (ml/backtest.py): MASE below 1 means it beats naive, and
only such targets are published, with conformal prediction intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from ml import backtest
from ml import features as F

LEAD_BASE = f"{F.LEAD_TIME}__last"  # log1p of the last known lead time
SCORE_BASE = f"{F.SCORE}__last"
OUTPUTS = ["predicted_lead_time_hours", "predicted_overall_score"]
INTERVAL_OUTPUTS = [f"{o}_{bound}" for o in OUTPUTS for bound in ("low", "high")]
# What the model forecasts, recorded on each registered version (tag `forecast_target`): a
# version that forecast something else (the legacy 0-100 performance score) is not this
# model's champion any more.
FORECAST_TARGET = F.SCORE
SCORE_RANGE = (0.0, 10.0)

# What skops must trust to load the model (MLflow saves scikit-learn models with skops).
SKOPS_TRUSTED_TYPES = [
    "ml.performance.PerformanceForecaster",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]


class PerformanceForecaster(RegressorMixin, BaseEstimator):
    """Predicts [lead time hours, overall score] for the week after each feature row."""

    def __init__(self, max_iter: int = 150, learning_rate: float = 0.05, max_leaf_nodes: int = 15,
                 min_samples_leaf: int = 20, l2_regularization: float = 1.0, random_state: int = 0):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.random_state = random_state

    def _bases(self, X: pd.DataFrame) -> np.ndarray:
        lead = X[LEAD_BASE].to_numpy(dtype=float)
        score = X[SCORE_BASE].to_numpy(dtype=float)
        # A scope with no lead time yet starts from what is typical across all scopes.
        lead = np.where(np.isnan(lead), self.default_bases_[0], lead)
        score = np.where(np.isnan(score), self.default_bases_[1], score)
        return np.column_stack([lead, score])

    def fit(self, X: pd.DataFrame, y):
        y = np.asarray(y, dtype=float)
        self.feature_names_ = list(X.columns)
        self.targets_ = list(F.TARGETS)
        self.default_bases_ = [float(np.nanmedian(X[LEAD_BASE])), float(np.nanmedian(X[SCORE_BASE]))]
        target = np.column_stack([np.log1p(np.clip(y[:, 0], 0, None)), y[:, 1]])
        X_values = X[self.feature_names_].to_numpy(dtype=float)
        residual = target - self._bases(X)
        self.estimators_ = []
        # One OpenMP thread: on a shared machine spinning threads cost far more than they save.
        with threadpool_limits(1):
            self._fit_estimators(X_values, residual)
        return self

    def _fit_estimators(self, X_values: np.ndarray, residual: np.ndarray) -> None:
        for column in range(2):
            estimator = HistGradientBoostingRegressor(
                loss="absolute_error",
                max_iter=self.max_iter,
                learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                l2_regularization=self.l2_regularization,
                random_state=self.random_state,
            )
            self.estimators_.append(estimator.fit(X_values, residual[:, column]))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        X = pd.DataFrame(X)
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise F.FeatureError(f"performance model input lacks features {missing[:5]}; rebuild the features")
        X_values = X[self.feature_names_].to_numpy(dtype=float)
        with threadpool_limits(1):
            raw = np.column_stack([e.predict(X_values) for e in self.estimators_]) + self._bases(X)
        lead = np.expm1(raw[:, 0]).clip(min=0)
        score = raw[:, 1].clip(*SCORE_RANGE)
        return np.column_stack([lead, score])


def labelled_rows(features: pd.DataFrame) -> pd.DataFrame:
    """Feature rows whose next week has both targets."""
    targets = [f"target_{t}" for t in F.TARGETS]
    return features.dropna(subset=targets)


def evaluate(model, holdout: pd.DataFrame) -> dict[str, float]:
    """MAE of the model and of the naive last-value forecast, and MASE = their ratio, per target.

    `mase` (the headline) is the mean of the two ratios. Rows where the naive forecast has no
    value are left out for that target, so both are judged on the same weeks.
    """
    predicted = model.predict(holdout)
    metrics: dict[str, float] = {"holdout_rows": float(len(holdout))}
    ratios = []
    for i, (target, short) in enumerate(((F.LEAD_TIME, "lead_time"), (F.SCORE, F.SCORE))):
        actual = holdout[f"target_{target}"].to_numpy(dtype=float)
        naive = holdout[f"naive_{target}"].to_numpy(dtype=float)
        ok = ~np.isnan(actual) & ~np.isnan(naive)
        mae = float(np.mean(np.abs(predicted[ok, i] - actual[ok]))) if ok.any() else float("nan")
        mae_naive = float(np.mean(np.abs(naive[ok] - actual[ok]))) if ok.any() else float("nan")
        # A naive error of 0 (nothing moved) makes any error look infinite; count it as a tie.
        ratio = mae / mae_naive if mae_naive > 0 else (1.0 if mae == 0 else float("inf"))
        metrics[f"mae_{short}"] = mae
        metrics[f"mae_naive_{short}"] = mae_naive
        metrics[f"mase_{short}"] = ratio
        ratios.append(ratio)
    metrics["mase"] = float(np.mean(ratios))
    return metrics


@dataclass
class TrainedPerformance:
    model: PerformanceForecaster
    metrics: dict[str, float]
    params: dict
    feature_names: list[str]
    holdout: pd.DataFrame  # the labelled rows of the backtest's origins (a champion is judged on them)
    train_rows: int
    backtest: backtest.Backtest

    @property
    def published(self) -> dict[str, bool]:
        return self.backtest.published

    @property
    def beats_naive(self) -> bool:
        """Whether any target beats the naive forecast over the rolling origins."""
        return any(self.published.values())


def train(frame: pd.DataFrame, origins: int = 6, warmup: int = 2, level: float = backtest.LEVEL,
          **params) -> TrainedPerformance:
    """Backtests over `origins` rolling forecast origins, then fits on every labelled week.

    The final model carries what the backtest measured: which targets it may publish
    (`published_`) and its conformal interval half-widths (`interval_half_width_`, `level_`).
    """
    rows = labelled_rows(F.forecast_features(frame))
    if len(rows) < 30:
        raise F.FeatureError(
            f"only {len(rows)} scope-weeks with a next week to learn from; the performance model needs at least 30"
        )
    names = F.forecast_feature_names(rows)

    def fit(train_rows: pd.DataFrame) -> PerformanceForecaster:
        # A feature with no value in the training weeks (e.g. no incidents yet) carries nothing,
        # and scikit-learn's histogram binning cannot bin an all-missing column.
        present = [n for n in names if train_rows[n].notna().any()]
        return PerformanceForecaster(**params).fit(
            train_rows[present], train_rows[[f"target_{t}" for t in F.TARGETS]].to_numpy(dtype=float))

    tested = backtest.rolling_origin(rows, fit, origins=origins, warmup=warmup, level=level)
    model = fit(rows)
    model.published_ = [tested.targets[t].published for t in F.TARGETS]
    model.interval_half_width_ = [tested.targets[t].half_width for t in F.TARGETS]
    model.level_ = level
    metrics = {**tested.metrics(), "train_rows": float(len(rows))}
    holdout = rows[rows["target_week_start"].isin(tested.origins)]
    return TrainedPerformance(model, metrics, model.get_params(), model.feature_names_, holdout, len(rows), tested)


def predict_latest(model, frame: pd.DataFrame) -> pd.DataFrame:
    """Next-week forecasts from every scope-week of `frame`: keys, OUTPUTS and their interval
    bounds (`<output>_low` / `_high`, empty for a model without measured intervals)."""
    feats = F.forecast_features(frame)
    columns = F.KEY_COLUMNS + OUTPUTS + INTERVAL_OUTPUTS
    if feats.empty:
        return pd.DataFrame(columns=columns)
    predicted = model.predict(feats)
    out = feats[F.KEY_COLUMNS].copy()
    widths = getattr(model, "interval_half_width_", None)
    for i, (target, output) in enumerate(zip(F.TARGETS, OUTPUTS, strict=False)):
        out[output] = predicted[:, i]
        if widths is None or not np.isfinite(widths[i]):
            out[f"{output}_low"] = np.nan
            out[f"{output}_high"] = np.nan
            continue
        centre = backtest.to_axis(target, predicted[:, i])
        out[f"{output}_low"] = backtest.from_axis(target, centre - widths[i])
        out[f"{output}_high"] = backtest.from_axis(target, centre + widths[i])
    return out[columns]


def published_targets(model) -> dict[str, bool]:
    """What the model's backtest allows it to publish, per target."""
    flags = getattr(model, "published_", None) or [True] * len(F.TARGETS)
    return dict(zip(F.TARGETS, (bool(f) for f in flags), strict=False))
