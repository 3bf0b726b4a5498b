"""Dagster wiring for the ML library (ml/): two training assets and the per-user insights.

The training assets materialise only when the training policy says so (ml/policy.py); when it
does not, the run succeeds without a materialisation and records an observation whose metadata
holds the reason (new scope-weeks, age), visible on the asset's page.

Insights do not depend on the training assets: a downstream step of an asset that does not
materialise is skipped, and a user's login run must always end with fresh insights. Instead the
insights asset scores with whatever champions MLflow holds, and trains a model itself only when
none was ever trained (a fresh deployment). A Postgres advisory lock per model serialises
training, and the policy is decided inside it, so a concurrent training asset in the same run
sees the new version and skips.
"""

import contextlib
import zlib

import dagster as dg

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.defs.partitions import users_partitions
from ghmetrics_dagster.defs.resources import MLflowResource, WarehouseResource
from ml import data, registry
from ml.features import FeatureError
from ml.policy import TrainingPolicy

FEATURES = dg.AssetKey(["marts", "ml_weekly_features"])
# One training at a time across runs (pool limit 1); the advisory lock below also covers
# trainings started outside Dagster.
TRAINING_POOL = "mlflow_training"


class TrainingConfig(dg.Config):
    """Set from the launchpad: force a training, or change the thresholds for one run."""

    force: bool = False
    min_new_samples: int = 50
    max_age_days: float = 7.0
    promotion_margin: float = 0.01
    live_error_weeks: int = 3  # weeks in a row behind naive live before the champion is retrained


class InsightsConfig(dg.Config):
    weeks: int = 4  # how many of each scope's latest weeks to score


@contextlib.contextmanager
def _training_lock(url: str, model_name: str):
    """One training of a model at a time across processes (the warehouse is shared by all)."""
    key = zlib.crc32(f"ghmetrics-train:{model_name}".encode())
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            cur.execute("select pg_advisory_unlock(%s)", (key,))


def _trainer(model_name: str):
    # ml.training and ml.insights import scikit-learn (2 s): every run process loads these
    # definitions, but only the ML steps need it.
    from ml import training

    return {registry.PERFORMANCE: training.train_performance, registry.ANOMALY: training.train_anomaly}[model_name]


def _train(context: dg.AssetExecutionContext, config: TrainingConfig, model_name: str,
           warehouse_resource: WarehouseResource, mlflow: MLflowResource):
    policy = TrainingPolicy(
        min_new_samples=config.min_new_samples, max_age_days=config.max_age_days, force=config.force,
        live_error_weeks=config.live_error_weeks,
    )
    url = warehouse_resource.url()
    try:
        with _training_lock(url, model_name):
            frame = data.load_features(url)
            outcome = _trainer(model_name)(frame, mlflow.store(), policy=policy,
                                            promotion_margin=config.promotion_margin, run_id=context.run.run_id)
    except FeatureError as exc:  # a young organisation: nothing to learn from yet, not a failure
        context.log.info(f"{model_name}: not training: {exc}")
        context.log_event(dg.AssetObservation(asset_key=context.asset_key, metadata={"decision": f"not enough data: {exc}"}))
        return
    health = outcome.live
    if health is not None and health.version:
        # The champion's live error, per target week, for the dashboard and the summary.
        data.replace_forecast_errors(url, model_name, health.version, health.errors)
        if health.warning:
            context.log.warning(health.warning)
    metadata = outcome.as_metadata()
    if not outcome.trained:
        context.log.info(f"{outcome.model_name}: not training: {outcome.decision.reason}")
        context.log_event(dg.AssetObservation(asset_key=context.asset_key, metadata=metadata))
        return
    context.log.info(
        f"{outcome.model_name}: trained version {outcome.version} ({outcome.decision.reason}); "
        f"{'promoted to champion' if outcome.promoted else 'left as challenger'}: {outcome.promotion_reason}"
    )
    yield dg.MaterializeResult(metadata=metadata)


def training_asset(model_name: str, key: str, description: str) -> dg.AssetsDefinition:
    """A model's training asset: it materialises only when the training policy says so."""

    @dg.asset(
        key=["ml", key],
        deps=[FEATURES],
        output_required=False,
        pool=TRAINING_POOL,
        kinds={"mlflow", "scikit-learn"},
        group_name="ml",
        description=description,
    )
    def train(context: dg.AssetExecutionContext, config: TrainingConfig, warehouse: WarehouseResource,
              mlflow: MLflowResource):
        yield from _train(context, config, model_name, warehouse, mlflow)

    return train


performance_model = training_asset(
    registry.PERFORMANCE, "performance_model",
    "Forecasts next week's median lead time and overall score (DORA's Quick Check headline, 0-10) per scope "
    "(registered model ghmetrics-performance). Trains only when the policy's thresholds are met; versions that "
    "forecast the legacy 0-100 performance score are not its champion.",
)
anomaly_model = training_asset(
    registry.ANOMALY, "anomaly_model",
    "Flags anomalous weeks per scope and names the metric behind each flag (registered model ghmetrics-anomaly). "
    "Trains only when the policy's thresholds are met.",
)


@dg.asset(
    key=["ml", "insights"],
    deps=[FEATURES],
    partitions_def=users_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
    kinds={"postgres", "mlflow"},
    group_name="ml",
    description="ml.insights for each user of the wave: forecasts and anomaly flags for the user's "
    "scope and repositories, scored with the champion models.",
)
def ml_insights(context: dg.AssetExecutionContext, config: InsightsConfig, warehouse: WarehouseResource,
                mlflow: MLflowResource) -> dg.MaterializeResult:
    url = warehouse.url()
    from ml import insights

    store = mlflow.store()
    champions = insights.load_champions(store.tracking_uri)
    bootstrapped = []
    for model_name in champions.missing:
        # A fresh deployment: train under the normal policy (its first-time branch); a model
        # that was trained but never beat its baseline is not retried until new data arrives.
        try:
            with _training_lock(url, model_name):
                outcome = _trainer(model_name)(data.load_features(url), store, run_id=context.run.run_id)
        except FeatureError as exc:  # too little history yet: score without this model
            context.log.warning(f"{model_name}: cannot train yet: {exc}")
            bootstrapped.append(f"{model_name}:not enough data")
            continue
        context.log.info(f"{model_name}: no champion before scoring; {outcome.decision.reason}; "
                         + (f"trained version {outcome.version}: {outcome.promotion_reason}" if outcome.trained
                            else "not trained"))
        bootstrapped.append(f"{model_name}:{outcome.version}" if outcome.trained else f"{model_name}:skipped")
    if bootstrapped:
        champions = insights.load_champions(store.tracking_uri)
    for note in champions.notes:
        context.log.warning(note)
    written = scopes_total = 0
    flagged_metrics: set[str] = set()
    anomalies = 0
    for login in context.partition_keys:
        scopes = data.user_scopes(url, login)
        rows = insights.score(data.load_features(url, scopes), champions, login, weeks=config.weeks)
        written += data.replace_insights(url, login, rows)
        scopes_total += len(scopes)
        flagged = rows[rows["is_anomaly"]] if "is_anomaly" in rows else rows.iloc[0:0]
        anomalies += len(flagged)
        if "anomaly_metric" in flagged:
            flagged_metrics.update(flagged["anomaly_metric"].dropna())
    return dg.MaterializeResult(
        metadata={
            "users": len(context.partition_keys),
            "rows": written,
            "scopes": scopes_total,
            "anomalies": anomalies,
            "anomaly_metrics": ", ".join(sorted(flagged_metrics)) or "none",
            "model_version": champions.model_version or "no champions yet",
            "trained_before_scoring": ", ".join(bootstrapped) or "none",
        }
    )


defs = dg.Definitions(assets=[performance_model, anomaly_model, ml_insights])
