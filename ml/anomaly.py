"""The anomaly model: flags unusual scope-weeks and names the metric that drove each flag.

Two signals over each scope-week's metric vector:
- robust per-metric z-scores against the scope's own preceding weeks (median/MAD, see
  `features.robust_scores`), which say *which* metric moved and by how much;
- an IsolationForest fitted on those z-vectors across all scopes, which catches weeks where
  several metrics are moderately off together.
A week is flagged when one metric is far off (|z| >= z_threshold), or when the forest finds the
week isolated and at least one metric supports it (|z| >= z_support). The flagged week's
`anomaly_metric` is the metric with the largest |z|.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest

from ghmetrics_dagster.metrics import contracts
from ml import features as F

# Weekly values that can jump on their own. Trailing-window aggregates (review_coverage_12w, DORA's
# 12-week values, their Quick Check bands and scores, the legacy performance score) and values
# derived from others (failed_changes) only echo these. The week's rework, recovery and time to
# restore (rework_rate, median_recovery_hours, median_time_to_restore_hours) are left out too: a
# median of a handful of events a week, they flagged ordinary weeks (restore hours made a third
# of the false alarms on the sandbox); deployments, change fail rate and incidents carry them.
_LEFT_OUT_WEEKLY_METRICS = ("failed_changes", "median_time_to_restore_hours")
ANOMALY_METRICS = [m for m in contracts.WEEKLY_METRICS if m not in _LEFT_OUT_WEEKLY_METRICS] + [F.DEPLOYS_PER_DAY]

# Which way a metric moves when something is wrong: +1 up (slower, bigger, more failures), -1
# down (less review, fewer deployment days), 0 either (a burst or a stall of deployments or
# merges). The default `direction="harmful"` alerts only that way: a week of unusually fast
# reviews is good news, and at the demo's size such weeks made half of the false alarms.
HARMFUL_DIRECTION = {
    "median_lead_time_hours": 1, "change_failure_rate": 1, "incidents": 1, "median_pr_size": 1, "p90_pr_size": 1,
    "median_coding_hours": 1, "median_pickup_hours": 1, "median_review_hours": 1, "median_deploy_hours": 1,
    F.DEPLOYS_PER_DAY: 1, "review_coverage": -1, "deployment_days": -1, "deployments": 0, "merged_prs": 0,
}

SKOPS_TRUSTED_TYPES = [
    "ml.anomaly.WeeklyAnomalyDetector",
    "sklearn.ensemble._iforest.IsolationForest",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.tree._tree.Tree",
]

TAIL_QUANTILE = 0.95
Z_CLIP = 12.0  # beyond this a z-score says nothing more; keeps the forest's splits useful


def _normal_isf(p):
    from scipy.stats import norm  # imported on use: Dagster loads this module in run processes

    return norm.isf(p)


def _normal_sf(z):
    from scipy.stats import norm

    return norm.sf(z)


class WeeklyAnomalyDetector(BaseEstimator):
    """Input: a frame with `z__<metric>` columns (from `features.robust_scores`)."""

    def __init__(self, z_threshold: float = 3.25, z_support: float = 2.75, contamination: float = 0.02,
                 n_estimators: int = 100, direction: str = "harmful", random_state: int = 0):
        self.z_threshold = z_threshold
        self.z_support = z_support
        self.contamination = contamination
        self.n_estimators = n_estimators
        self.direction = direction
        self.random_state = random_state

    def _z(self, X: pd.DataFrame, directed: bool = True) -> np.ndarray:
        missing = [f"z__{m}" for m in self.metrics_ if f"z__{m}" not in X.columns]
        if missing:
            raise F.FeatureError(f"anomaly model input lacks {missing[:5]}; compute features.robust_scores first")
        z = X[[f"z__{m}" for m in self.metrics_]].to_numpy(dtype=float)
        z = np.nan_to_num(z, nan=0.0) / np.asarray(getattr(self, "tail_scale_", np.ones(len(self.metrics_))))
        if not directed:
            pass
        elif self.direction == "harmful":
            signs = np.array([HARMFUL_DIRECTION.get(m, 0) for m in self.metrics_])
            z = np.where(signs > 0, np.clip(z, 0, None), np.where(signs < 0, np.clip(z, None, 0), z))
        elif self.direction == "up":
            z = np.clip(z, 0, None)
        return np.clip(z, -Z_CLIP, Z_CLIP)

    def fit(self, X: pd.DataFrame, y=None):
        if self.direction not in ("harmful", "both", "up"):
            raise ValueError(f"direction must be 'harmful', 'both' or 'up', not {self.direction!r}")
        self.metrics_ = [m for m in ANOMALY_METRICS if f"z__{m}" in X.columns]
        self.tail_scale_ = np.ones(len(self.metrics_))
        raw = np.abs(self._z(X, directed=False))  # both tails: the calibration reads the spread
        # Per-metric calibration: some metrics have heavier tails than their MAD suggests
        # (deploy hours that wait for a weekly release). Where the 95th percentile of |z| over
        # all judged weeks exceeds a normal's 1.96, that metric's z is shrunk by the excess.
        # The 95th percentile sits below the few percent of weeks a real anomaly could occupy.
        # Metrics judged by an exact count tail (binomial shares, Poisson redeploys) keep their
        # scale: their z already is a tail probability, and at a small organisation's size
        # their few real anomalies would set the percentile and hide themselves.
        scales = []
        for j, metric in enumerate(self.metrics_):
            if metric in F.EXACT_TAIL_METRICS:
                scales.append(1.0)
                continue
            observed = raw[:, j][raw[:, j] > 0]
            normal = float(_normal_isf((1 - TAIL_QUANTILE) / 2))
            tail = float(np.quantile(observed, TAIL_QUANTILE)) if len(observed) >= 20 else normal
            scales.append(max(1.0, tail / normal))
        self.tail_scale_ = np.array(scales)
        z = self._z(X)
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators, contamination="auto", random_state=self.random_state, n_jobs=1
        ).fit(np.abs(z))
        isolation = -self.forest_.score_samples(np.abs(z))
        # The forest's own cut: the top `contamination` share of training weeks.
        self.isolation_threshold_ = float(np.quantile(isolation, 1 - self.contamination))
        return self

    def score(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per row: anomaly_score (>= 1 means flagged), is_anomaly, anomaly_metric, max_abs_z."""
        z = self._z(X)
        absz = np.abs(z)
        max_abs_z = absz.max(axis=1) if absz.shape[1] else np.zeros(len(X))
        top = absz.argmax(axis=1) if absz.shape[1] else np.zeros(len(X), dtype=int)
        isolation = -self.forest_.score_samples(absz)
        z_ratio = max_abs_z / self.z_threshold
        forest_ratio = np.where(max_abs_z >= self.z_support, isolation / self.isolation_threshold_, 0.0)
        anomaly_score = np.maximum(z_ratio, forest_ratio)
        flagged = anomaly_score >= 1.0
        metric = np.array(self.metrics_, dtype=object)[top]
        top_z = z[np.arange(len(z)), top] if absz.shape[1] else np.zeros(len(X))
        return pd.DataFrame(
            {
                "anomaly_score": anomaly_score,
                "is_anomaly": flagged,
                "anomaly_metric": np.where(flagged, metric, None),
                "max_abs_z": max_abs_z,
                "top_metric": metric,
                "top_z": top_z,
            },
            index=X.index,
        )

    def range_limits(self) -> dict[str, float]:
        """Per metric, the uncalibrated |z| at which the z rule flags a week: the edge of the
        week's expected range."""
        return {m: self.z_threshold * float(s) for m, s in zip(self.metrics_, self.tail_scale_, strict=False)}

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 for an anomalous week, 0 otherwise (what MLflow's pyfunc flavour serves)."""
        return self.score(X)["is_anomaly"].to_numpy(dtype=int)


MIN_HISTORY = 6  # earlier weeks needed before a week is judged


def scoring_frame(frame: pd.DataFrame, range_z: dict[str, float] | None = None) -> pd.DataFrame:
    """Keys + z-scores for every scope-week, and whether the week had enough history to judge
    (with `range_z`, also each metric's expected range, see `features.robust_scores`)."""
    scores = F.robust_scores(frame, min_history=MIN_HISTORY, range_z=range_z)
    scores["has_history"] = scores["history_weeks"] >= MIN_HISTORY
    return scores


EXPLANATION_COLUMNS = ["anomaly_z", "anomaly_weeks_per_event", "anomaly_observed", "anomaly_expected_low",
                       "anomaly_expected_high"]


def score_frame(model: WeeklyAnomalyDetector, frame: pd.DataFrame, explain: bool = False) -> pd.DataFrame:
    """Keys + the model's verdict per scope-week of `frame`.

    With `explain`, each week also gets its reading on a stated scale, for the metric that
    drove the verdict (`top_metric`): `anomaly_z` (robust z-score against the scope's own
    earlier weeks, calibrated per metric; |z| >= z_threshold flags), `anomaly_weeks_per_event`
    (how many ordinary weeks pass, on average, between two weeks this far out, from that z),
    and the observed value beside the expected range (the values the z rule would not flag).
    """
    scores = scoring_frame(frame, range_z=model.range_limits() if explain else None)
    verdict = model.score(scores)
    out = pd.concat([scores[F.KEY_COLUMNS + ["has_history"]], verdict], axis=1)
    if not explain:
        return out
    prepared = F.prepare(frame).set_index(F.KEY_COLUMNS)
    observed = prepared.reindex(pd.MultiIndex.from_frame(out[F.KEY_COLUMNS]))
    observed[F.DEPLOYS_PER_DAY] = (observed["deployments"] / observed["deployment_days"]).where(
        observed["deployment_days"] > 0)
    rows = np.arange(len(out))
    pick = lambda prefix: np.array([scores[f"{prefix}{m}"].iat[i] for i, m in zip(rows, out["top_metric"], strict=False)],  # noqa: E731
                                   dtype=float) if len(out) else np.array([], dtype=float)
    out["anomaly_z"] = out["top_z"]
    out["anomaly_weeks_per_event"] = 1.0 / (2 * _normal_sf(np.abs(out["top_z"].to_numpy(dtype=float))))
    out["anomaly_observed"] = [observed[m].iat[i] for i, m in zip(rows, out["top_metric"], strict=False)]
    out["anomaly_expected_low"] = pick("low__")
    out["anomaly_expected_high"] = pick("high__")
    return out


def evaluate(model: WeeklyAnomalyDetector, frame: pd.DataFrame, labels: pd.DataFrame,
             weeks: list | None = None) -> dict[str, float]:
    """Precision and recall at repository scope-weeks against labelled anomalies.

    A flagged repo-week is a true positive if it is labelled (any metric). Only repo-weeks with
    enough history to be judged count, optionally restricted to `weeks`.
    """
    verdict = score_frame(model, frame)
    repo = verdict[(verdict["scope_type"] == "repository") & verdict["has_history"]]
    if weeks is not None:
        repo = repo[repo["week_start"].isin(pd.to_datetime(pd.Series(weeks)))]
    truth = label_keys(labels)
    keys = list(zip(repo["scope"], repo["week_start"], strict=False))
    is_true = np.array([k in truth for k in keys], dtype=bool)
    flagged = repo["is_anomaly"].to_numpy(dtype=bool)
    tp = int((flagged & is_true).sum())
    fp = int((flagged & ~is_true).sum())
    fn = int((~flagged & is_true).sum())
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_positives": float(tp),
            "false_positives": float(fp), "false_negatives": float(fn), "judged_weeks": float(len(repo))}


def label_keys(labels: pd.DataFrame) -> set:
    if labels is None or labels.empty:
        return set()
    repo = labels[labels["scope_type"] == "repository"]
    weeks = pd.to_datetime(repo["week_start"]).dt.tz_localize(None).dt.normalize()
    return set(zip(repo["scope"], weeks, strict=False))


def inject(frame: pd.DataFrame, rate: float = 0.1, seed: int = 0, min_history: int = 6) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A copy of `frame` with known anomalies: one metric of a repo-week multiplied by 2.5-5.

    Used to evaluate when no labelled anomalies exist (production): champion and challenger are
    compared on the same injected copy, so the comparison is fair even though the labels are
    synthetic. Real anomalies already in the data count as false positives there, so precision
    on injected labels is a lower bound: use it to compare models, not as an absolute figure.
    """
    rng = np.random.default_rng(seed)
    out = F.prepare(frame)
    out["_n"] = out.groupby(["scope_type", "scope"]).cumcount()
    labels = []
    candidates = out.index[(out["scope_type"] == "repository") & (out["_n"] >= min_history)]
    metrics = ["median_lead_time_hours", "merged_prs", "median_pr_size", "median_review_hours", "deployments"]
    for idx in candidates:
        if rng.random() >= rate:
            continue
        order = rng.permutation(len(metrics))
        for i in order:
            metric = metrics[i]
            value = out.at[idx, metric]
            if pd.notna(value) and value > 0:
                factor = float(rng.uniform(2.5, 5))
                out.at[idx, metric] = value * factor
                labels.append({"scope_type": "repository", "scope": out.at[idx, "scope"],
                               "week_start": out.at[idx, "week_start"], "metric": metric, "factor": factor})
                break
    return out.drop(columns="_n"), pd.DataFrame(labels, columns=["scope_type", "scope", "week_start", "metric", "factor"])


@dataclass
class TrainedAnomaly:
    model: WeeklyAnomalyDetector
    metrics: dict[str, float]
    params: dict
    feature_names: list[str]
    evaluation_frame: pd.DataFrame
    evaluation_labels: pd.DataFrame
    label_source: str  # "labels" (given) or "injected" (synthetic, seeded)


def train(frame: pd.DataFrame, labels: pd.DataFrame | None = None, injection_seed: int = 0, **params) -> TrainedAnomaly:
    """Fits the detector on every judged scope-week and evaluates precision/recall.

    With `labels` (the sandbox's injected anomalies) they are the truth; otherwise anomalies are
    injected into a copy of the data with a fixed seed and the model is evaluated on that.
    The detector never sees labels while fitting.
    """
    scores = scoring_frame(frame)
    judged = scores[scores["has_history"]]
    if len(judged) < 30:
        raise F.FeatureError(
            f"only {len(judged)} scope-weeks have enough history to judge; the anomaly model needs at least 30"
        )
    model = WeeklyAnomalyDetector(**params).fit(judged)
    if labels is not None and not labels.empty:
        eval_frame, eval_labels, source = frame, labels, "labels"
    else:
        eval_frame, eval_labels = inject(frame, seed=injection_seed)
        source = "injected"
    metrics = evaluate(model, eval_frame, eval_labels)
    metrics["train_rows"] = float(len(judged))
    names = [f"z__{m}" for m in model.metrics_]
    return TrainedAnomaly(model, metrics, model.get_params(), names, eval_frame, eval_labels, source)


def precision_recall_curve(model: WeeklyAnomalyDetector, frame: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Precision and recall at repository scope-weeks as the flagging line moves (anomaly_score
    cut-offs from 0.5 to 2.0; 1.0 is the model's own line)."""
    verdict = score_frame(model, frame)
    repo = verdict[(verdict["scope_type"] == "repository") & verdict["has_history"]]
    truth = label_keys(labels)
    is_true = np.array([k in truth for k in zip(repo["scope"], repo["week_start"], strict=False)], dtype=bool)
    score = repo["anomaly_score"].to_numpy(dtype=float)
    rows = []
    for cut in np.round(np.arange(0.5, 2.01, 0.05), 2):
        flagged = score >= cut
        tp = int((flagged & is_true).sum())
        precision = tp / int(flagged.sum()) if flagged.any() else 1.0
        recall = tp / int(is_true.sum()) if is_true.any() else 1.0
        rows.append({"cutoff": float(cut), "precision": precision, "recall": recall, "flagged": int(flagged.sum())})
    return pd.DataFrame(rows)
