"""MLflow: experiments, registered models and their `champion` / `challenger` aliases.

The tracking store is whatever `tracking_uri` names (embedded sqlite by default, an MLflow
server in production). Versions carry tags saying what data they saw, which the training policy
reads back.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ghmetrics_dagster.metrics.contracts import OVERALL_SCORE
from ml.policy import LastTraining

PERFORMANCE = "ghmetrics-performance"
ANOMALY = "ghmetrics-anomaly"
MODEL_NAMES = (PERFORMANCE, ANOMALY)
CHAMPION = "champion"
CHALLENGER = "challenger"

# What each registered model's page in MLflow says about it.
DESCRIPTIONS = {
    PERFORMANCE: (
        "Forecasts next week's median lead time for changes (hours) and overall score (DORA's Quick Check "
        "headline, 0-10) for each scope (a repository, or a user's repositories pooled; a team's or a service's "
        "delivery, never a person's), from that scope's weekly DORA and pull-request "
        "metrics in marts.ml_weekly_features and their recent history (lags, 4-week means). Judged by rolling-"
        "origin backtests (refitted at each of the last 6 target weeks, forecasting only weeks it never saw): "
        "MASE against the naive forecast (next week = this week) per target. A target is published only while "
        "its MASE is below 1 (tags published_<target>) and the champion's live forecasts have not been worse "
        "than naive for live_error_weeks weeks in a row (tags live_withdrawn_<target>, metric history "
        "live_mase_<target>); forecasts carry 80 % conformal intervals whose backtest coverage is logged. A "
        "version becomes `champion` when it beats naive on a target and the champion's MASE on the same weeks by "
        "more than the promotion margin (or the champion fell behind naive live). Each run logs its backtest "
        "charts under review/."
    ),
    ANOMALY: (
        "Flags unusual weeks per scope: a robust z-score of each weekly metric against the scope's own history "
        "combined with an isolation forest. Each week's reading is the driving metric's calibrated z-score "
        "(|z| >= 3.25 flags), how many ordinary weeks pass between two that far out, and the observed value "
        "beside the expected range. Judged by precision, recall and F1 on labelled "
        "anomalies (the sandbox's injected ones, or anomalies injected into the training weeks); becomes "
        "`champion` only when its F1 beats the champion's on the same weeks by more than the promotion margin."
    ),
}

TAG_RUN_ID = "dagster_run_id"
TAG_SAMPLES = "sample_count"
TAG_WATERMARK = "data_watermark"
TAG_TRAINED_AT = "trained_at"
TAG_TARGET = "forecast_target"  # what a performance version forecasts (overall_score)
TAG_EVALUATION = "evaluation"  # how a performance version was judged (rolling_origin: per-target publishing)
# Tags a version must carry to be today's model: the performance model forecast the legacy
# 0-100 performance score before it forecast the overall score, and such versions neither
# count as its champion nor as its last training.
# Versions judged on a single holdout carry neither per-target publishing nor intervals, so
# they are not today's champion either.
REQUIRED_TAGS = {PERFORMANCE: {TAG_TARGET: OVERALL_SCORE, TAG_EVALUATION: "rolling_origin"}, ANOMALY: {}}


class RegistryError(RuntimeError):
    """A registry operation cannot be done; the message says what to do."""


_initialised: set[str] = set()


def ensure_store(tracking_uri: str) -> None:
    """Creates and migrates an embedded (sqlite) store once, under a file lock.

    MLflow creates and migrates a sqlite store the first time a process opens it; two
    processes doing so at once fail ("duplicate column name"). `ghmetrics` calls this before
    any run starts, and every process passes through the lock before its first use.
    """
    if tracking_uri in _initialised or not tracking_uri.startswith("sqlite:///"):
        return
    import fcntl

    from mlflow import MlflowClient

    database = Path(tracking_uri[len("sqlite:///"):])
    database.parent.mkdir(parents=True, exist_ok=True)
    store_logs = logging.getLogger("mlflow.store")
    level = store_logs.level
    with open(f"{database}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Creating the tables logs a line per migration step at INFO, on the user's terminal.
        store_logs.setLevel(logging.WARNING)
        try:
            MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)
        finally:
            store_logs.setLevel(level)
            fcntl.flock(lock, fcntl.LOCK_UN)
    _initialised.add(tracking_uri)


def client(tracking_uri: str):
    """An MlflowClient on `tracking_uri` (which is also the model registry)."""
    import mlflow
    from mlflow import MlflowClient

    ensure_store(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def experiment_id(mlflow_client, name: str, artifact_root: str | None) -> str:
    """The experiment for a model, created on first use (artifacts under `artifact_root`)."""
    existing = mlflow_client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if artifact_root and "://" not in artifact_root:
        path = Path(artifact_root).expanduser().resolve() / name
        path.mkdir(parents=True, exist_ok=True)
        location = path.as_uri()
    elif artifact_root:
        location = artifact_root.rstrip("/") + "/" + name
    return mlflow_client.create_experiment(name, artifact_location=location)


def _versions(mlflow_client, name: str) -> list:
    from mlflow.exceptions import MlflowException

    try:
        found = mlflow_client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return []
    return sorted(found, key=lambda v: int(v.version))


def _alias_version(mlflow_client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def champion(mlflow_client, name: str, tags: dict[str, str] | None = None):
    """The champion ModelVersion, or None. With `tags`, only a champion carrying those tags
    counts (a version that forecast another target is no champion of today's model)."""
    version = _alias_version(mlflow_client, name, CHAMPION)
    if version is not None and not _has_tags(version, tags):
        return None
    return version


def _has_tags(version, tags: dict[str, str] | None) -> bool:
    found = version.tags or {}
    return all(found.get(key) == str(value) for key, value in (tags or {}).items())


def last_training(mlflow_client, name: str, tags: dict[str, str] | None = None) -> LastTraining | None:
    """What the newest registered version was trained on, for the training policy. With `tags`,
    only versions carrying those tags count: a model whose target changed starts afresh."""
    versions = [v for v in _versions(mlflow_client, name) if _has_tags(v, tags)]
    if not versions:
        return None
    latest = versions[-1]
    tags_found = latest.tags or {}
    trained_at = tags_found.get(TAG_TRAINED_AT)
    when = (dt.datetime.fromisoformat(trained_at) if trained_at
            else dt.datetime.fromtimestamp(latest.creation_timestamp / 1000, dt.UTC))
    watermark = pd.Timestamp(tags_found[TAG_WATERMARK]) if tags_found.get(TAG_WATERMARK) else None
    return LastTraining(
        version=str(latest.version),
        trained_at=when,
        watermark=watermark,
        sample_count=int(tags_found.get(TAG_SAMPLES, 0)),
        has_champion=champion(mlflow_client, name, tags) is not None,
    )


def ensure_registered_model(mlflow_client, name: str) -> None:
    """Creates the registered model `name` with its description if it does not exist yet, and
    brings an existing one's description up to date.

    Checking first keeps MLflow quiet: `log_model(registered_model_name=...)` always tries to
    create the model and prints "Registered model '...' already exists" to stderr on every
    training after the first.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode

    description = DESCRIPTIONS.get(name)
    try:
        existing = mlflow_client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        existing = None
    if existing is None:
        try:
            mlflow_client.create_registered_model(name, description=description)
            return
        except MlflowException as error:
            # Another process created it between the check and here: update it like an existing one.
            if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            existing = mlflow_client.get_registered_model(name)
    if description is not None and existing.description != description:
        mlflow_client.update_registered_model(name, description=description)


def register_version(mlflow_client, name: str, model_id: str, run_id: str | None = None) -> str:
    """Registers the logged model `model_id` (a `ModelInfo.model_id` from `log_model` called
    without `registered_model_name`) as a new version of `name`; returns the version number.

    The same registration `log_model(registered_model_name=name)` does (source
    `models:/<model_id>`, the run, the model id, the version linked back on the logged model
    under `mlflow.modelVersions`), without its console lines; the registered model is created
    with its description on first use (`ensure_registered_model`).
    """
    import json

    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    ensure_registered_model(mlflow_client, name)
    created = mlflow_client.create_model_version(name, source=f"models:/{model_id}", run_id=run_id,
                                                 model_id=model_id)
    # What MLflow's own registration records on the logged model: the MLflow UI lists a logged
    # model's registered versions from this tag.
    linked = [{"name": created.name, "version": created.version}]
    existing = (mlflow_client.get_logged_model(model_id).tags or {}).get(MLFLOW_MODEL_VERSIONS)
    if existing:
        linked = json.loads(existing) + linked
    mlflow_client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(linked)})
    return str(created.version)


def tag_version(mlflow_client, name: str, version: str, tags: dict) -> None:
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(name, version, key, str(value))


def set_alias(mlflow_client, name: str, alias: str, version: str) -> None:
    mlflow_client.set_registered_model_alias(name, alias, str(version))


def rollback(mlflow_client, name: str, version: int | str) -> str:
    """Moves `champion` to an existing version; returns the version that held it before ('' if none)."""
    versions = {str(v.version) for v in _versions(mlflow_client, name)}
    if not versions:
        raise RegistryError(f"no registered model named {name!r}; run `ghmetrics models list` to see the models")
    if str(version) not in versions:
        raise RegistryError(
            f"{name} has no version {version}; existing versions: {', '.join(sorted(versions, key=int))}"
        )
    before = champion(mlflow_client, name)
    set_alias(mlflow_client, name, CHAMPION, str(version))
    mlflow_client.set_model_version_tag(name, str(version), "rolled_back_at", dt.datetime.now(dt.UTC).isoformat())
    return "" if before is None else str(before.version)


@dataclass
class VersionRow:
    name: str
    version: str
    aliases: list[str]
    created: str
    sample_count: str
    watermark: str
    run_id: str
    headline: str  # the metric the version is judged on


def list_versions(mlflow_client) -> list[VersionRow]:
    """Every version of the ghmetrics models, with aliases, data tags and its headline metric."""
    rows = []
    for name in MODEL_NAMES:
        versions = _versions(mlflow_client, name)
        # search_model_versions leaves aliases out; the registered model maps them.
        by_version: dict[str, list[str]] = {}
        if versions:
            for alias, number in (mlflow_client.get_registered_model(name).aliases or {}).items():
                by_version.setdefault(str(number), []).append(alias)
        for v in versions:
            tags = v.tags or {}
            metric_key = "mase" if name == PERFORMANCE else "f1"
            headline = ""
            if v.run_id:
                try:
                    value = mlflow_client.get_run(v.run_id).data.metrics.get(metric_key)
                    headline = "" if value is None else f"{metric_key}={value:.3f}"
                except Exception:  # noqa: BLE001 - a deleted run must not hide the version
                    headline = ""
            if name == PERFORMANCE and tags.get("published_lead_time"):
                shown = [target.replace("_", " ") for target in ("lead_time", "overall_score")
                         if tags.get(f"published_{target}") == "true" and tags.get(f"live_withdrawn_{target}") != "true"]
                headline += f" (forecasts shown: {', '.join(shown) or 'none'})"
            rows.append(
                VersionRow(
                    name=name,
                    version=str(v.version),
                    aliases=sorted(by_version.get(str(v.version), [])),
                    created=dt.datetime.fromtimestamp(v.creation_timestamp / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M"),
                    sample_count=tags.get(TAG_SAMPLES, ""),
                    watermark=tags.get(TAG_WATERMARK, ""),
                    run_id=tags.get(TAG_RUN_ID, ""),
                    headline=headline,
                )
            )
    return rows


def load(name: str, alias_or_version: str = CHAMPION):
    """The scikit-learn model behind an alias (or a version number)."""
    import mlflow.sklearn

    ref = f"models:/{name}/{alias_or_version}" if str(alias_or_version).isdigit() else f"models:/{name}@{alias_or_version}"
    return mlflow.sklearn.load_model(ref)
