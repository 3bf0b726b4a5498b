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

import pandas as pd

from ml import anomaly, performance, registry
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
                      dataset: pd.DataFrame) -> tuple[str, str]:
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


def train_performance(frame: pd.DataFrame, store: Store, policy: TrainingPolicy = TrainingPolicy(),
                      promotion_margin: float = 0.01, run_id: str = "", now: dt.datetime | None = None,
                      holdout_weeks: int = 4, **params) -> Outcome:
    frame = F.prepare(frame)
    decision = _decide(store, registry.PERFORMANCE, frame, policy, now)
    outcome = Outcome(registry.PERFORMANCE, decision)
    if not decision.train:
        outcome.champion_version = _champion_version(store, registry.PERFORMANCE)
        return outcome
    started = time.perf_counter()
    trained = performance.train(frame, holdout_weeks=holdout_weeks, **params)
    outcome.seconds = time.perf_counter() - started
    # A champion that forecast another target (the legacy performance score) is no champion.
    champ = registry.champion(registry.client(store.tracking_uri), registry.PERFORMANCE,
                              registry.REQUIRED_TAGS[registry.PERFORMANCE])
    champion_metrics = {}
    if champ is not None:
        try:
            champion_metrics = performance.evaluate(registry.load(registry.PERFORMANCE), trained.holdout)
        except F.FeatureError:
            champion_metrics = {}  # features changed: the champion cannot be judged on this holdout
    if not trained.beats_naive:
        promote, why = False, f"MASE {trained.metrics['mase']:.3f} does not beat the naive forecast (needs < 1)"
    elif champ is None:
        promote, why = True, f"first champion: MASE {trained.metrics['mase']:.3f} beats naive"
    elif not champion_metrics:
        promote, why = True, "champion cannot be scored on the new features; challenger beats naive"
    elif trained.metrics["mase"] < champion_metrics["mase"] - promotion_margin:
        promote, why = True, (f"MASE {trained.metrics['mase']:.3f} beats champion v{champ.version} "
                              f"{champion_metrics['mase']:.3f} by more than {promotion_margin:g}")
    else:
        promote, why = False, (f"MASE {trained.metrics['mase']:.3f} does not beat champion v{champ.version} "
                               f"{champion_metrics['mase']:.3f} by more than {promotion_margin:g}")
    tags = {**_version_tags(run_id, frame, now), **registry.REQUIRED_TAGS[registry.PERFORMANCE]}
    params_logged = {**trained.params, "holdout_weeks": holdout_weeks, "promotion_margin": promotion_margin,
                     "min_new_samples": policy.min_new_samples, "max_age_days": policy.max_age_days}
    version, mlflow_run = _log_and_register(
        store, registry.PERFORMANCE, trained.model, params_logged, trained.metrics, trained.feature_names,
        trained.holdout, performance.SKOPS_TRUSTED_TYPES, tags, champion_metrics, frame,
    )
    _finish(store, outcome, registry.PERFORMANCE, version, mlflow_run, promote, why, trained.metrics, champion_metrics)
    return outcome


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
    if champ is not None:
        try:
            champion_metrics = anomaly.evaluate(registry.load(registry.ANOMALY), trained.evaluation_frame,
                                                trained.evaluation_labels)
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
    version, mlflow_run = _log_and_register(
        store, registry.ANOMALY, trained.model, params_logged, trained.metrics, trained.feature_names,
        example, anomaly.SKOPS_TRUSTED_TYPES, tags, champion_metrics, frame,
    )
    _finish(store, outcome, registry.ANOMALY, version, mlflow_run, promote, why, trained.metrics, champion_metrics)
    return outcome


def _version_tags(run_id: str, frame: pd.DataFrame, now) -> dict:
    return {
        registry.TAG_RUN_ID: run_id or "none",
        registry.TAG_SAMPLES: len(frame),
        registry.TAG_WATERMARK: _watermark(frame),
        registry.TAG_TRAINED_AT: (now or dt.datetime.now(dt.timezone.utc)).isoformat(),
    }


def _finish(store, outcome, name, version, mlflow_run, promote, why, metrics, champion_metrics):
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


def default_store() -> Store:
    """The configured MLflow store: MLFLOW_TRACKING_URI, else the embedded sqlite database.

    Artifacts go to GHMETRICS_MLFLOW_ARTIFACT_ROOT, else (for a local store only) the embedded
    folder; an MLflow server without that variable keeps its own artifact location.
    """
    import os

    from ghmetrics_dagster import settings

    uri = settings.mlflow_tracking_uri()
    local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    root = settings.mlflow_artifact_root() if local or os.environ.get("GHMETRICS_MLFLOW_ARTIFACT_ROOT") else None
    return Store(uri, root)
