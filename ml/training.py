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
    live: "LiveHealth | None" = None  # the performance champion's live error, when it has one

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


def _decide(store: Store, name: str, frame: pd.DataFrame, policy: TrainingPolicy, now) -> Decision:
    mlflow_client = registry.client(store.tracking_uri)
    return decide(frame["week_start"], registry.last_training(mlflow_client, name, registry.REQUIRED_TAGS[name]),
                  policy, now=now)


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


def train_performance(frame: pd.DataFrame, store: Store, policy: TrainingPolicy = TrainingPolicy(),
                      promotion_margin: float = 0.01, run_id: str = "", now: dt.datetime | None = None,
                      origins: int = 6, warmup: int = 2, **params) -> Outcome:
    frame = F.prepare(frame)
    mlflow_client = registry.client(store.tracking_uri)
    required = registry.REQUIRED_TAGS[registry.PERFORMANCE]
    champ = registry.champion(mlflow_client, registry.PERFORMANCE, required)
    champion_model = registry.load(registry.PERFORMANCE, str(champ.version)) if champ is not None else None
    health = watch_live_error(mlflow_client, champ, champion_model, frame, policy)
    decision = decide(frame["week_start"], registry.last_training(mlflow_client, registry.PERFORMANCE, required),
                      policy, now=now, live_behind=health.behind)
    outcome = Outcome(registry.PERFORMANCE, decision, live=health)
    if not decision.train:
        outcome.champion_version = _champion_version(store, registry.PERFORMANCE)
        return outcome
    started = time.perf_counter()
    trained = performance.train(frame, origins=origins, warmup=warmup, **params)
    outcome.seconds = time.perf_counter() - started
    champion_metrics = {}
    if champion_model is not None:
        try:
            champion_metrics = performance.evaluate(champion_model, trained.holdout)
        except F.FeatureError:
            champion_metrics = {}  # features changed: the champion cannot be judged on these weeks
    mase = trained.metrics["mase"]
    published = ", ".join(backtest.SHORT_NAMES[t].replace("_", " ") for t, ok in trained.published.items() if ok)
    if not trained.beats_naive:
        promote, why = False, (f"does not beat the naive forecast on any target over {origins} rolling origins "
                               f"(MASE {_per_target(trained.metrics)})")
    elif champ is None:
        promote, why = True, f"first champion: beats naive on {published} (MASE {_per_target(trained.metrics)})"
    elif not champion_metrics:
        promote, why = True, f"champion cannot be scored on the new features; challenger beats naive on {published}"
    elif mase < champion_metrics["mase"] - promotion_margin:
        promote, why = True, (f"MASE {mase:.3f} beats champion v{champ.version} "
                              f"{champion_metrics['mase']:.3f} by more than {promotion_margin:g}")
    elif health.behind:
        promote, why = True, (f"the champion v{champ.version} fell behind naive live; the challenger beats naive "
                              f"on {published} over {origins} rolling origins")
    else:
        promote, why = False, (f"MASE {mase:.3f} does not beat champion v{champ.version} "
                               f"{champion_metrics['mase']:.3f} by more than {promotion_margin:g}")
    tags = {**_version_tags(run_id, frame, now), **required,
            **{f"published_{backtest.SHORT_NAMES[t]}": str(ok).lower() for t, ok in trained.published.items()}}
    params_logged = {**trained.params, "backtest_origins": origins, "backtest_warmup": warmup,
                     "interval_level": trained.backtest.level, "promotion_margin": promotion_margin,
                     "min_new_samples": policy.min_new_samples, "max_age_days": policy.max_age_days,
                     "live_error_weeks": policy.live_error_weeks}
    figures = review.backtest_figures(trained.backtest)
    tables = {"backtest_predictions.json": trained.backtest.predictions}
    version, mlflow_run = _log_and_register(
        store, registry.PERFORMANCE, trained.model, params_logged, trained.metrics, trained.feature_names,
        trained.holdout, performance.SKOPS_TRUSTED_TYPES, tags, champion_metrics, frame, figures, tables,
    )
    _finish(store, outcome, registry.PERFORMANCE, version, mlflow_run, promote, why, trained.metrics, champion_metrics,
            review.what_changed(mlflow_client, champ, getattr(champion_model, "feature_names_", None), params_logged,
                                trained.feature_names, trained.metrics, tags))
    return outcome


def _per_target(metrics: dict[str, float]) -> str:
    return ", ".join(f"{backtest.SHORT_NAMES[t].replace('_', ' ')} {metrics[f'mase_{backtest.SHORT_NAMES[t]}']:.3f}"
                     for t in F.TARGETS)


def train_anomaly(frame: pd.DataFrame, store: Store, policy: TrainingPolicy = TrainingPolicy(),
                  promotion_margin: float = 0.01, run_id: str = "", labels: pd.DataFrame | None = None,
                  now: dt.datetime | None = None, **params) -> Outcome:
    frame = F.prepare(frame)
    decision = _decide(store, registry.ANOMALY, frame, policy, now)
    outcome = Outcome(registry.ANOMALY, decision)
    if not decision.train:
        outcome.champion_version = _champion_version(store, registry.ANOMALY)
        return outcome
    started = time.perf_counter()
    trained = anomaly.train(frame, labels=labels, **params)
    outcome.seconds = time.perf_counter() - started
    champ = registry.champion(registry.client(store.tracking_uri), registry.ANOMALY)
    champion_metrics = {}
    champion_model = registry.load(registry.ANOMALY, str(champ.version)) if champ is not None else None
    if champion_model is not None:
        try:
            champion_metrics = anomaly.evaluate(champion_model, trained.evaluation_frame, trained.evaluation_labels)
        except F.FeatureError:
            champion_metrics = {}
    f1 = trained.metrics["f1"]
    if champ is None:
        promote, why = True, f"first champion: F1 {f1:.3f} on {trained.label_source} anomalies"
    elif not champion_metrics:
        promote, why = True, "champion cannot be scored on the new features"
    elif f1 > champion_metrics["f1"] + promotion_margin:
        promote, why = True, (f"F1 {f1:.3f} beats champion v{champ.version} {champion_metrics['f1']:.3f} "
                              f"by more than {promotion_margin:g}")
    else:
        promote, why = False, (f"F1 {f1:.3f} does not beat champion v{champ.version} "
                               f"{champion_metrics['f1']:.3f} by more than {promotion_margin:g}")
    scores = anomaly.scoring_frame(frame)
    example = scores[scores["has_history"]]
    tags = {**_version_tags(run_id, frame, now), "label_source": trained.label_source}
    params_logged = {**trained.params, "promotion_margin": promotion_margin, "label_source": trained.label_source,
                     "min_new_samples": policy.min_new_samples, "max_age_days": policy.max_age_days}
    curve = anomaly.precision_recall_curve(trained.model, trained.evaluation_frame, trained.evaluation_labels)
    version, mlflow_run = _log_and_register(
        store, registry.ANOMALY, trained.model, params_logged, trained.metrics, trained.feature_names,
        example, anomaly.SKOPS_TRUSTED_TYPES, tags, champion_metrics, frame,
        review.precision_recall_figures(curve, trained.label_source), {"precision_recall.json": curve},
    )
    _finish(store, outcome, registry.ANOMALY, version, mlflow_run, promote, why, trained.metrics, champion_metrics,
            review.what_changed(registry.client(store.tracking_uri), champ,
                                None if champion_model is None else [f"z__{m}" for m in champion_model.metrics_],
                                params_logged, trained.feature_names, trained.metrics, tags))
    return outcome


def _version_tags(run_id: str, frame: pd.DataFrame, now) -> dict:
    return {
        registry.TAG_RUN_ID: run_id or "none",
        registry.TAG_SAMPLES: len(frame),
        registry.TAG_WATERMARK: _watermark(frame),
        registry.TAG_TRAINED_AT: (now or dt.datetime.now(dt.timezone.utc)).isoformat(),
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
