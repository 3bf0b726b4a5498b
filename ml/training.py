"""Train, log, register and promote: one call per model, used by Dagster and the demo.

Flow per model: the policy decides from the registry's tags whether to train; a trained model
is logged to its experiment (params, metrics, feature list, signature, input example) and
registered with the `challenger` alias; the champion is scored on the challenger's holdout and
`champion` moves only if the challenger beats it by `promotion_margin` (and, for the
performance model, beats the naive forecast).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from ml import anomaly, backtest, live, performance, registry, review
from ml import features as F
from ml.policy import Decision, TrainingPolicy, decide


@dataclass
class Outcome:
    model_name: str
    decision: Decision
    trained: bool = False
    version: str | None = None
    promoted: bool = False
    promotion_reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    champion_version: str | None = None  # the champion after this call
    mlflow_run_id: str | None = None
    seconds: float = 0.0
    live: LiveHealth | None = None  # the performance champion's live error, when it has one

    def as_metadata(self) -> dict:
        out = {
            "model": self.model_name,
            "trained": self.trained,
            "version": self.version or "",
            "promoted": self.promoted,
            "promotion_reason": self.promotion_reason,
            "champion_version": self.champion_version or "",
            "mlflow_run_id": self.mlflow_run_id or "",
            "train_seconds": round(self.seconds, 3),
            **{f"policy_{k}": v for k, v in self.decision.as_metadata().items()},
        }
        for key, value in self.metrics.items():
            out[f"holdout_{key}"] = value
        for key, value in self.champion_metrics.items():
            out[f"champion_holdout_{key}"] = value
        if self.live is not None and self.live.version:
            out.update({f"champion_{k}": round(v, 3) for k, v in _finite(live.summary(self.live.errors)).items()})
            out["live_warning"] = self.live.warning or "none"
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class Store:
    tracking_uri: str
    artifact_root: str | None = None


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def _watermark(frame: pd.DataFrame) -> str:
    return str(pd.to_datetime(frame["week_start"]).max().date())


def _log_and_register(store: Store, name: str, model, params: dict, metrics: dict, feature_names: list[str],
                      example: pd.DataFrame, trusted_types: list[str], tags: dict, extra_metrics: dict,
                      dataset: pd.DataFrame, figures: dict | None = None,
                      tables: dict[str, pd.DataFrame] | None = None) -> tuple[str, str]:
    import mlflow
    import mlflow.data
    import mlflow.sklearn
    from mlflow.models import infer_signature

    mlflow_client = registry.client(store.tracking_uri)
    exp = registry.experiment_id(mlflow_client, name, store.artifact_root)
    # MLflow's schema enforcement treats all-float inputs strictly; NaN is a valid float.
    example = example[feature_names].astype(float).head(5)
    signature = infer_signature(example, model.predict(example))
    # A run name a reviewer can read in the list: the model, the data it saw, the trigger.
    run_name = f"{name.removeprefix('ghmetrics-')} to {tags[registry.TAG_WATERMARK]} ({tags[registry.TAG_SAMPLES]} scope-weeks)"
    with mlflow.start_run(experiment_id=exp, run_name=run_name, tags={k: str(v) for k, v in tags.items()}) as run:
        mlflow.log_input(mlflow.data.from_pandas(dataset, name="marts.ml_weekly_features"), context="training")
        mlflow.log_params({k: v for k, v in params.items()})
        mlflow.log_metrics(_finite(metrics))
        mlflow.log_metrics({f"champion_{k}": v for k, v in _finite(extra_metrics).items()})
        mlflow.log_dict({"features": feature_names}, "features.json")
        mlflow.log_param("feature_count", len(feature_names))
        # What a reviewer looks at: backtest charts, precision-recall, the rows behind them.
        for filename, figure in (figures or {}).items():
            mlflow.log_figure(figure, f"review/{filename}")
        review.close(figures)
        for filename, table in (tables or {}).items():
            mlflow.log_table(_jsonable(table), f"review/{filename}")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example,
            skops_trusted_types=trusted_types,
            # Inferring requirements runs the model in a subprocess (~5 s); they are known.
            pip_requirements=_requirements(),
        )
        run_id = run.info.run_id
        # Registered here rather than by log_model(registered_model_name=...), which prints
        # "Registered model '...' already exists" on every training after the first.
        version = registry.register_version(mlflow_client, name, info.model_id, run_id)
    registry.tag_version(mlflow_client, name, version, tags)
    registry.set_alias(mlflow_client, name, registry.CHALLENGER, version)
    return version, run_id


def _jsonable(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%d")
    return out


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in ("scikit-learn", "skops", "pandas", "numpy", "scipy", "threadpoolctl"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


@dataclass
class LiveHealth:
    """The performance champion's live error (ml/live.py) and what it decided."""

    errors: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=live.COLUMNS))
    version: str | None = None
    behind: dict[str, int] = field(default_factory=dict)  # published targets behind naive N weeks in a row
    warning: str = ""


def watch_live_error(mlflow_client, champ, model, frame: pd.DataFrame, policy: TrainingPolicy) -> LiveHealth:
    """Compares the champion's forecasts of the weeks after its watermark with what happened,
    logs the weekly live MASE on its MLflow run (one point per week, as a metric history) and
    tags the version with how many weeks in a row each target has been behind naive."""
    if champ is None or model is None:
        return LiveHealth()
    watermark = (champ.tags or {}).get(registry.TAG_WATERMARK)
    errors = live.live_errors(model, frame, pd.Timestamp(watermark) if watermark else None)
    published = performance.published_targets(model)
    streaks = {t: live.weeks_behind_naive(errors, t) for t in F.TARGETS}
    behind = {t: n for t, n in streaks.items() if published[t] and n >= policy.live_error_weeks}
    if champ.run_id and not errors.empty:
        _log_live_history(mlflow_client, champ.run_id, errors)
    tags = {f"live_weeks_behind_naive_{backtest.SHORT_NAMES[t]}": n for t, n in streaks.items()}
    tags.update({f"live_withdrawn_{backtest.SHORT_NAMES[t]}": str(t in behind).lower() for t in F.TARGETS})
    registry.tag_version(mlflow_client, registry.PERFORMANCE, str(champ.version), tags)
    warning = ""
    if behind:
        parts = []
        for target, weeks in behind.items():
            latest = errors[errors["target"] == target].iloc[-weeks:]
            parts.append(f"{backtest.SHORT_NAMES[target].replace('_', ' ')} ({weeks} weeks, live MASE "
                         f"{latest['mae'].mean() / max(latest['mae_naive'].mean(), 1e-12):.2f})")
        warning = (f"{registry.PERFORMANCE} champion v{champ.version} forecasts worse than last week's value: "
                   f"{', '.join(parts)}; those forecasts are withdrawn until a retrained version beats naive")
    return LiveHealth(errors, str(champ.version), behind, warning)


def _log_live_history(mlflow_client, run_id: str, errors: pd.DataFrame) -> None:
    """One point per target week of `live_mase_<target>` (step = weeks since 1970)."""
    from mlflow.entities import Metric

    metrics = []
    for target, rows in errors.groupby("target"):
        key = f"live_mase_{backtest.SHORT_NAMES[target]}"
        # A week is logged again only when its value changed (late-arriving data revised it).
        seen = {(m.step, round(m.value, 9)) for m in mlflow_client.get_metric_history(run_id, key)}
        for row in rows.itertuples():
            step = int(pd.Timestamp(row.target_week).value // (7 * 86400 * 10**9))
            if np.isfinite(row.mase) and (step, round(float(row.mase), 9)) not in seen:
                metrics.append(Metric(key, float(row.mase), int(pd.Timestamp(row.target_week).timestamp() * 1000), step))
    if metrics:
        mlflow_client.log_batch(run_id, metrics=metrics)


def _per_target(metrics: dict[str, float]) -> str:
    return ", ".join(f"{backtest.SHORT_NAMES[t].replace('_', ' ')} {metrics[f'mase_{backtest.SHORT_NAMES[t]}']:.3f}"
                     for t in F.TARGETS)


class _ModelKind(Protocol):
    """What a model adds to the training sequence of `_train`; the rest is the same for both."""

    name: str
    trusted_types: list[str]
    watches_live_error: bool  # the champion is loaded before deciding, to judge it live

    def fit(self, frame: pd.DataFrame): ...

    def evaluate(self, champion_model, trained) -> dict[str, float]:
        """The champion's metrics on the challenger's holdout (F.FeatureError: it cannot be judged)."""

    def judge(self, trained, champ, champion_metrics: dict, health: LiveHealth | None) -> tuple[bool, str]:
        """Whether the challenger becomes champion, and why."""

    def tags(self, trained) -> dict: ...

    def params(self, trained, policy: TrainingPolicy) -> dict: ...

    def review(self, trained, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict, dict]:
        """The input example, and the figures and tables a reviewer looks at."""

    def champion_features(self, champion_model) -> list[str] | None: ...


@dataclass
class _Performance:
    promotion_margin: float
    origins: int
    warmup: int
    train_params: dict
    name = registry.PERFORMANCE
    trusted_types = performance.SKOPS_TRUSTED_TYPES
    watches_live_error = True

    def fit(self, frame):
        return performance.train(frame, origins=self.origins, warmup=self.warmup, **self.train_params)

    def evaluate(self, champion_model, trained):
        return performance.evaluate(champion_model, trained.holdout)

    def judge(self, trained, champ, champion_metrics, health):
        margin, origins = self.promotion_margin, self.origins
        mase = trained.metrics["mase"]
        published = ", ".join(backtest.SHORT_NAMES[t].replace("_", " ") for t, ok in trained.published.items() if ok)
        if not trained.beats_naive:
            return False, (f"does not beat the naive forecast on any target over {origins} rolling origins "
                           f"(MASE {_per_target(trained.metrics)})")
        if champ is None:
            return True, f"first champion: beats naive on {published} (MASE {_per_target(trained.metrics)})"
        if not champion_metrics:
            return True, f"champion cannot be scored on the new features; challenger beats naive on {published}"
        if mase < champion_metrics["mase"] - margin:
            return True, (f"MASE {mase:.3f} beats champion v{champ.version} "
                          f"{champion_metrics['mase']:.3f} by more than {margin:g}")
        if health.behind:
            return True, (f"the champion v{champ.version} fell behind naive live; the challenger beats naive "
                          f"on {published} over {origins} rolling origins")
        return False, (f"MASE {mase:.3f} does not beat champion v{champ.version} "
                       f"{champion_metrics['mase']:.3f} by more than {margin:g}")

    def tags(self, trained):
        return {f"published_{backtest.SHORT_NAMES[t]}": str(ok).lower() for t, ok in trained.published.items()}

    def params(self, trained, policy):
        return {**trained.params, "backtest_origins": self.origins, "backtest_warmup": self.warmup,
                "interval_level": trained.backtest.level, "promotion_margin": self.promotion_margin,
                "min_new_samples": policy.min_new_samples, "max_age_days": policy.max_age_days,
                "live_error_weeks": policy.live_error_weeks}

    def review(self, trained, frame):
        figures = review.backtest_figures(trained.backtest)
        return trained.holdout, figures, {"backtest_predictions.json": trained.backtest.predictions}

    def champion_features(self, champion_model):
        return getattr(champion_model, "feature_names_", None)


@dataclass
class _Anomaly:
    promotion_margin: float
    labels: pd.DataFrame | None
    train_params: dict
    name = registry.ANOMALY
    trusted_types = anomaly.SKOPS_TRUSTED_TYPES
    watches_live_error = False

    def fit(self, frame):
        return anomaly.train(frame, labels=self.labels, **self.train_params)

    def evaluate(self, champion_model, trained):
        return anomaly.evaluate(champion_model, trained.evaluation_frame, trained.evaluation_labels)

    def judge(self, trained, champ, champion_metrics, health):
        margin = self.promotion_margin
        f1 = trained.metrics["f1"]
        if champ is None:
            return True, f"first champion: F1 {f1:.3f} on {trained.label_source} anomalies"
        if not champion_metrics:
            return True, "champion cannot be scored on the new features"
        if f1 > champion_metrics["f1"] + margin:
            return True, (f"F1 {f1:.3f} beats champion v{champ.version} {champion_metrics['f1']:.3f} "
                          f"by more than {margin:g}")
        return False, (f"F1 {f1:.3f} does not beat champion v{champ.version} "
                       f"{champion_metrics['f1']:.3f} by more than {margin:g}")

    def tags(self, trained):
        return {"label_source": trained.label_source}

    def params(self, trained, policy):
        return {**trained.params, "promotion_margin": self.promotion_margin, "label_source": trained.label_source,
                "min_new_samples": policy.min_new_samples, "max_age_days": policy.max_age_days}

    def review(self, trained, frame):
        scores = anomaly.scoring_frame(frame)
        curve = anomaly.precision_recall_curve(trained.model, trained.evaluation_frame, trained.evaluation_labels)
        figures = review.precision_recall_figures(curve, trained.label_source)
        return scores[scores["has_history"]], figures, {"precision_recall.json": curve}

    def champion_features(self, champion_model):
        return None if champion_model is None else [f"z__{m}" for m in champion_model.metrics_]


def train_performance(frame: pd.DataFrame, store: Store, policy: TrainingPolicy | None = None,
                      promotion_margin: float = 0.01, run_id: str = "", now: dt.datetime | None = None,
                      origins: int = 6, warmup: int = 2, **params) -> Outcome:
    return _train(_Performance(promotion_margin, origins, warmup, params), frame, store, policy or TrainingPolicy(),
                  run_id, now)


def train_anomaly(frame: pd.DataFrame, store: Store, policy: TrainingPolicy | None = None,
                  promotion_margin: float = 0.01, run_id: str = "", labels: pd.DataFrame | None = None,
                  now: dt.datetime | None = None, **params) -> Outcome:
    return _train(_Anomaly(promotion_margin, labels, params), frame, store, policy or TrainingPolicy(), run_id, now)


def _train(kind: _ModelKind, frame: pd.DataFrame, store: Store, policy: TrainingPolicy, run_id: str, now) -> Outcome:
    frame = F.prepare(frame)
    mlflow_client = registry.client(store.tracking_uri)
    required = registry.REQUIRED_TAGS[kind.name]
    health = None
    if kind.watches_live_error:
        champ, champion_model = _champion(mlflow_client, kind.name, required)
        health = watch_live_error(mlflow_client, champ, champion_model, frame, policy)
    decision = decide(frame["week_start"], registry.last_training(mlflow_client, kind.name, required),
                      policy, now=now, live_behind=health.behind if health else None)
    outcome = Outcome(kind.name, decision, live=health)
    if not decision.train:
        outcome.champion_version = _champion_version(store, kind.name)
        return outcome
    started = time.perf_counter()
    trained = kind.fit(frame)
    outcome.seconds = time.perf_counter() - started
    if not kind.watches_live_error:  # loaded only now: nothing needs it unless a challenger was trained
        champ, champion_model = _champion(mlflow_client, kind.name, required)
    champion_metrics = {}
    if champion_model is not None:
        try:
            champion_metrics = kind.evaluate(champion_model, trained)
        except F.FeatureError:
            champion_metrics = {}  # features changed: the champion cannot be judged on these weeks
    promote, why = kind.judge(trained, champ, champion_metrics, health)
    tags = {**_version_tags(run_id, frame, now), **required, **kind.tags(trained)}
    params_logged = kind.params(trained, policy)
    example, figures, tables = kind.review(trained, frame)
    version, mlflow_run = _log_and_register(
        store, kind.name, trained.model, params_logged, trained.metrics, trained.feature_names,
        example, kind.trusted_types, tags, champion_metrics, frame, figures, tables,
    )
    _finish(store, outcome, kind.name, version, mlflow_run, promote, why, trained.metrics, champion_metrics,
            review.what_changed(mlflow_client, champ, kind.champion_features(champion_model), params_logged,
                                trained.feature_names, trained.metrics, tags))
    return outcome


def _champion(mlflow_client, name: str, required: dict):
    """The champion's version (None without one) and its model."""
    champ = registry.champion(mlflow_client, name, required)
    return champ, (registry.load(name, str(champ.version)) if champ is not None else None)


def _version_tags(run_id: str, frame: pd.DataFrame, now) -> dict:
    return {
        registry.TAG_RUN_ID: run_id or "none",
        registry.TAG_SAMPLES: len(frame),
        registry.TAG_WATERMARK: _watermark(frame),
        registry.TAG_TRAINED_AT: (now or dt.datetime.now(dt.UTC)).isoformat(),
    }


def _finish(store, outcome, name, version, mlflow_run, promote, why, metrics, champion_metrics, changed: str = ""):
    mlflow_client = registry.client(store.tracking_uri)
    if promote:
        registry.set_alias(mlflow_client, name, registry.CHAMPION, version)
    mlflow_client.set_model_version_tag(name, version, "promotion", why)
    # The decision in full on the version's page (a tag's value is cut short in the UI).
    measured = ", ".join(f"{k} {v:.3f}" for k, v in _finite(metrics).items())
    against = ", ".join(f"{k} {v:.3f}" for k, v in _finite(champion_metrics).items())
    verdict = "Promoted to champion" if promote else "Registered as challenger; the champion stays"
    mlflow_client.update_model_version(name, version, description=(
        f"{verdict}: {why}.\n\nThis version on its holdout: {measured}."
        + (f"\n\nThe champion before it on the same holdout: {against}." if against else "")
        + (f"\n\nWhat changed against the champion:\n{changed}" if changed else "")
    ))
    outcome.trained = True
    outcome.version = version
    outcome.promoted = promote
    outcome.promotion_reason = why
    outcome.metrics = _finite(metrics)
    outcome.champion_metrics = _finite(champion_metrics)
    outcome.mlflow_run_id = mlflow_run
    outcome.champion_version = _champion_version(store, name)


def _champion_version(store: Store, name: str) -> str | None:
    champ = registry.champion(registry.client(store.tracking_uri), name, registry.REQUIRED_TAGS[name])
    return None if champ is None else str(champ.version)


def store_for(settings) -> Store:
    """The MLflow store `settings` (a Settings) name: MLFLOW_TRACKING_URI, else the embedded
    sqlite database; artifacts where `settings.mlflow_artifact_root()` says."""
    return Store(settings.mlflow_tracking_uri(), settings.mlflow_artifact_root())
