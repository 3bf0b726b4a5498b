"""The performance model: next week's median lead time and overall score per scope.

The overall score is DORA's Quick Check headline (0..10, docs/dora.md). Two gradient-boosted
tree ensembles learn how far next week moves from the last known value (on log1p hours for lead
time, points for the score) from lagged weekly features. They minimise
absolute error, the metric they are judged on, so when history says nothing they stay at
"no change" rather than chasing noise. It is judged against that
naive last-value forecast on the most recent weeks, held out by time: MASE below 1 means it
beats naive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from ml import features as F

LEAD_BASE = f"{F.LEAD_TIME}__last"  # log1p of the last known lead time
SCORE_BASE = f"{F.SCORE}__last"
OUTPUTS = ["predicted_lead_time_hours", "predicted_overall_score"]
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


@dataclass
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    holdout_weeks: list[pd.Timestamp] = field(default_factory=list)


def split_by_time(rows: pd.DataFrame, holdout_weeks: int) -> Split:
    """The last `holdout_weeks` target weeks are the holdout; training only sees earlier targets."""
    weeks = sorted(rows["target_week_start"].unique())
    if len(weeks) <= holdout_weeks + 2:
        raise F.FeatureError(
            f"only {len(weeks)} weeks with a next-week target; the performance model needs more than "
            f"{holdout_weeks + 2} (holdout_weeks={holdout_weeks}): ingest more history"
        )
    cut = weeks[-holdout_weeks]
    return Split(rows[rows["target_week_start"] < cut], rows[rows["target_week_start"] >= cut], list(weeks[-holdout_weeks:]))


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
    holdout: pd.DataFrame
    train_rows: int

    @property
    def beats_naive(self) -> bool:
        return bool(self.metrics["mase"] < 1.0)


def train(frame: pd.DataFrame, holdout_weeks: int = 4, **params) -> TrainedPerformance:
    """Fits on all but the last `holdout_weeks` target weeks and evaluates on them."""
    rows = labelled_rows(F.forecast_features(frame))
    if len(rows) < 30:
        raise F.FeatureError(
            f"only {len(rows)} scope-weeks with a next week to learn from; the performance model needs at least 30"
        )
    split = split_by_time(rows, holdout_weeks)
    # A feature with no value in the training weeks (e.g. no incidents yet) carries nothing,
    # and scikit-learn's histogram binning cannot bin an all-missing column.
    names = [name for name in F.forecast_feature_names(rows) if split.train[name].notna().any()]
    model = PerformanceForecaster(**params)
    model.fit(split.train[names], split.train[[f"target_{t}" for t in F.TARGETS]].to_numpy(dtype=float))
    metrics = evaluate(model, split.holdout)
    metrics["train_rows"] = float(len(split.train))
    return TrainedPerformance(model, metrics, model.get_params(), names, split.holdout, len(split.train))


def predict_latest(model, frame: pd.DataFrame) -> pd.DataFrame:
    """Next-week forecasts from every scope-week of `frame` (keys + OUTPUTS)."""
    feats = F.forecast_features(frame)
    if feats.empty:
        return pd.DataFrame(columns=F.KEY_COLUMNS + OUTPUTS)
    predicted = model.predict(feats)
    out = feats[F.KEY_COLUMNS].copy()
    out[OUTPUTS[0]] = predicted[:, 0]
    out[OUTPUTS[1]] = predicted[:, 1]
    return out
