"""The ML assets in real Dagster runs: Postgres features in, MLflow models and ml.insights out."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import psycopg2.extras
import pytest
from conftest import env_resources

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.defs import ml as ml_defs
from ghmetrics_dagster.sandbox import generator, truth
from ml import features as F


def _create_features_table(url: str, frame: pd.DataFrame) -> None:
    """Stands in for the dbt mart (docs/contracts.md column names and types)."""
    columns = ", ".join(f"{c} numeric" for c in F.METRIC_COLUMNS)
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("create schema if not exists marts")
        cur.execute(
            f"create table marts.ml_weekly_features (scope_type text not null, scope text not null, "
            f"week_start date not null, {columns}, primary key (scope_type, scope, week_start))"
        )
        rows = [
            (r["scope_type"], r["scope"], pd.Timestamp(r["week_start"]).date(),
             *[None if pd.isna(r[c]) else float(r[c]) for c in F.METRIC_COLUMNS])
            for r in frame.to_dict("records")
        ]
        psycopg2.extras.execute_values(
            cur, f"insert into marts.ml_weekly_features (scope_type, scope, week_start, "
                 f"{', '.join(F.METRIC_COLUMNS)}) values %s", rows)


@pytest.fixture
def warehouse_with_features(database_url, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    frames = truth.compute(generator.generate(1))
    features = frames["ml_weekly_features"]
    _create_features_table(database_url, features)
    login = sorted(features.loc[features["scope_type"] == "user", "scope"].unique())[0]
    repos = sorted(features.loc[features["scope_type"] == "repository", "scope"].unique())[:2]
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("insert into app.users (login) values (%s)", (login,))
        for repo in repos:
            cur.execute("insert into app.user_repositories (login, repo_full_name) values (%s, %s)", (login, repo))
    return database_url, login, repos


def _events(result, kind: str, key: list[str]):
    """The run's ASSET_MATERIALIZATION or ASSET_OBSERVATION events for one asset key."""
    found = []
    for event in result.all_events:
        if event.event_type_value != kind:
            continue
        data = event.event_specific_data
        record = data.materialization if kind == "ASSET_MATERIALIZATION" else data.asset_observation
        if record.asset_key.path == key:
            found.append(event)
    return found


def test_training_assets_materialise_only_when_the_policy_says_so(warehouse_with_features):
    models = [ml_defs.performance_model, ml_defs.anomaly_model]
    with dg.instance_for_test() as instance:
        first = dg.materialize(models, resources=env_resources(), instance=instance)
        assert first.success
        for key in (["ml", "performance_model"], ["ml", "anomaly_model"]):
            [event] = _events(first, "ASSET_MATERIALIZATION", key)
            meta = event.event_specific_data.materialization.metadata
            assert meta["trained"].value is True
            assert "first training" in meta["policy_reason"].value
            assert meta["mlflow_run_id"].value
        perf_meta = _events(first, "ASSET_MATERIALIZATION", ["ml", "performance_model"])[0] \
            .event_specific_data.materialization.metadata
        assert perf_meta["holdout_mase"].value < 1 and perf_meta["promoted"].value is True

        # Same data again: nothing new, so no materialisation; the reason is on an observation.
        second = dg.materialize(models, resources=env_resources(), instance=instance)
        assert second.success
        assert not _events(second, "ASSET_MATERIALIZATION", ["ml", "anomaly_model"])
        [observed] = _events(second, "ASSET_OBSERVATION", ["ml", "anomaly_model"])
        meta = observed.event_specific_data.asset_observation.metadata
        assert meta["policy_new_samples"].value == 0
        assert "below min_new_samples=50" in meta["policy_reason"].value
        latest = instance.get_latest_materialization_event(dg.AssetKey(["ml", "anomaly_model"]))
        assert latest.run_id == first.run_id

        # Forced from the launchpad (run config).
        forced = dg.materialize(
            [ml_defs.anomaly_model], resources=env_resources(), instance=instance,
            run_config={"ops": {"ml__anomaly_model": {"config": {"force": True, "promotion_margin": 0.5}}}},
        )
        [event] = _events(forced, "ASSET_MATERIALIZATION", ["ml", "anomaly_model"])
        meta = event.event_specific_data.materialization.metadata
        assert "forced" in meta["policy_reason"].value
        assert meta["version"].value == "2" and meta["promoted"].value is False  # margin 0.5 is unbeatable


def test_insights_asset_scores_the_users_scopes_with_the_champions(warehouse_with_features):
    url, login, repos = warehouse_with_features
    with dg.instance_for_test() as instance:
        dg.materialize([ml_defs.performance_model, ml_defs.anomaly_model], resources=env_resources(), instance=instance)
        instance.add_dynamic_partitions("users", [login])
        result = dg.materialize([ml_defs.ml_insights], resources=env_resources(), instance=instance, partition_key=login)
        assert result.success
        [event] = _events(result, "ASSET_MATERIALIZATION", ["ml", "insights"])
        meta = event.event_specific_data.materialization.metadata
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select scope_type, scope, week_start, predicted_lead_time_hours, predicted_overall_score,"
                    " anomaly_score, is_anomaly, anomaly_metric, model_version from ml.insights where login = %s",
                    (login,))
        rows = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    assert meta["rows"].value == len(rows) == 4 * (1 + len(repos))
    assert set(zip(rows["scope_type"], rows["scope"], strict=False)) == {("user", login)} | {("repository", r) for r in repos}
    assert rows["predicted_lead_time_hours"].notna().all() and rows["predicted_overall_score"].notna().all()
    # The overall score is DORA's Quick Check headline: 0..10.
    assert ((rows["predicted_overall_score"] >= 0) & (rows["predicted_overall_score"] <= 10)).all()
    assert rows["anomaly_score"].notna().all()
    assert (rows["model_version"] == "ghmetrics-performance:1,ghmetrics-anomaly:1").all()
    # A flag always names its metric; an unflagged week names none.
    assert (rows["is_anomaly"] == rows["anomaly_metric"].notna()).all()
    assert (rows["is_anomaly"] == (rows["anomaly_score"].astype(float) >= 1)).all()


def test_insights_in_a_fresh_deployment_train_the_first_models_then_training_assets_skip(warehouse_with_features):
    url, login, repos = warehouse_with_features
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("users", [login])
        result = dg.materialize([ml_defs.ml_insights], resources=env_resources(), instance=instance, partition_key=login)
        [event] = _events(result, "ASSET_MATERIALIZATION", ["ml", "insights"])
        meta = event.event_specific_data.materialization.metadata
        assert meta["trained_before_scoring"].value == "ghmetrics-performance:1, ghmetrics-anomaly:1"
        assert meta["model_version"].value == "ghmetrics-performance:1,ghmetrics-anomaly:1"
        # The training assets now find nothing new to learn from.
        later = dg.materialize([ml_defs.performance_model, ml_defs.anomaly_model], resources=env_resources(), instance=instance)
        assert not [e for e in later.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select count(*), count(predicted_lead_time_hours) from ml.insights where login = %s", (login,))
        expected = 4 * (1 + len(repos))
        assert cur.fetchone() == (expected, expected)


def test_insights_with_too_little_history_write_rows_without_model_columns(database_url, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    frame = truth.compute(generator.generate(1))["ml_weekly_features"]
    weeks = sorted(pd.to_datetime(frame["week_start"]).unique())[:3]
    _create_features_table(database_url, frame[pd.to_datetime(frame["week_start"]).isin(weeks)])
    login = sorted(frame.loc[frame["scope_type"] == "user", "scope"].unique())[0]
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("insert into app.users (login) values (%s)", (login,))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("users", [login])
        result = dg.materialize([ml_defs.ml_insights], resources=env_resources(), instance=instance, partition_key=login)
        [event] = _events(result, "ASSET_MATERIALIZATION", ["ml", "insights"])
        meta = event.event_specific_data.materialization.metadata
        assert meta["model_version"].value == "no champions yet"
        assert "not enough data" in meta["trained_before_scoring"].value
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("select count(*), count(predicted_lead_time_hours), count(anomaly_score), bool_or(is_anomaly)"
                    " from ml.insights where login = %s", (login,))
        assert cur.fetchone() == (3, 0, 0, False)
