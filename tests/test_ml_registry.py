"""Promotion and rollback on a real (sqlite) MLflow store, and the `models` command."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import env_settings

from ghmetrics_dagster.cli.models import models
from ml import registry, synthetic, training
from ml.policy import TrainingPolicy

FORCE = TrainingPolicy(force=True)


@pytest.fixture
def store(home, monkeypatch):
    """The default store of an isolated GHMETRICS_HOME: what the CLI will open too."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return training.store_for(env_settings())


def _alias(client, name, alias):
    return str(client.get_model_version_by_alias(name, alias).version)


def test_worse_challenger_is_registered_but_not_promoted_and_rollback_moves_the_alias(store):
    frame, labels = synthetic.weekly_features(scopes=12, weeks=30, seed=3)
    good = training.train_anomaly(frame, store, policy=FORCE, labels=labels, run_id="run-1")
    assert good.trained and good.promoted and good.champion_version == "1"
    assert good.metrics["f1"] > 0.5

    # A detector that almost never fires: registered as challenger, champion unchanged.
    worse = training.train_anomaly(frame, store, policy=FORCE, labels=labels, run_id="run-2", z_threshold=40.0,
                                   z_support=40.0)
    client = registry.client(store.tracking_uri)
    assert worse.trained and worse.version == "2" and not worse.promoted
    assert worse.metrics["f1"] < good.metrics["f1"]
    # The champion was judged on the challenger's holdout and kept its score there.
    assert worse.champion_metrics["f1"] == pytest.approx(good.metrics["f1"])
    assert "does not beat champion v1" in worse.promotion_reason
    assert _alias(client, registry.ANOMALY, "champion") == "1"
    assert _alias(client, registry.ANOMALY, "challenger") == "2"
    assert client.get_model_version(registry.ANOMALY, "2").tags["promotion"] == worse.promotion_reason
    # MLflow's pages explain themselves: what the model is, why this version is (not) champion,
    # a readable run name and the data it was trained on.
    assert client.get_registered_model(registry.ANOMALY).description == registry.DESCRIPTIONS[registry.ANOMALY]
    described = client.get_model_version(registry.ANOMALY, "2").description
    assert described.startswith("Registered as challenger; the champion stays: " + worse.promotion_reason)
    assert "The champion before it on the same holdout: " in described
    assert client.get_model_version(registry.ANOMALY, "1").description.startswith("Promoted to champion: first champion")
    run = client.get_run(worse.mlflow_run_id)
    assert run.info.run_name.startswith("anomaly to ") and "scope-weeks" in run.info.run_name
    (dataset,) = [i.dataset for i in run.inputs.dataset_inputs]
    assert dataset.name == "marts.ml_weekly_features" and '"num_rows": %d' % len(frame) in dataset.profile

    runner = CliRunner()
    listed = runner.invoke(models, ["list"])
    assert listed.exit_code == 0, listed.output
    lines = {tuple(line.split()[:3]) for line in listed.output.splitlines()[1:]}
    assert ("ghmetrics-anomaly", "1", "champion") in lines
    assert ("ghmetrics-anomaly", "2", "challenger") in lines

    moved = runner.invoke(models, ["rollback", "ghmetrics-anomaly", "--version", "2"])
    assert moved.exit_code == 0, moved.output
    assert "from version 1 to version 2" in moved.output
    assert _alias(client, registry.ANOMALY, "champion") == "2"
    back = runner.invoke(models, ["rollback", "ghmetrics-anomaly", "--version", "1"])
    assert back.exit_code == 0 and _alias(client, registry.ANOMALY, "champion") == "1"

    missing = runner.invoke(models, ["rollback", "ghmetrics-anomaly", "--version", "9"])
    assert missing.exit_code != 0
    assert "has no version 9; existing versions: 1, 2" in missing.output
    assert _alias(client, registry.ANOMALY, "champion") == "1"


def test_performance_model_that_does_not_beat_naive_is_never_promoted(store):
    frame, _ = synthetic.weekly_features(scopes=12, weeks=30, seed=5)
    # Full-size steps on two-row leaves: it memorises noise and loses to the naive last value.
    overfit = training.train_performance(frame, store, policy=FORCE, max_iter=20, learning_rate=1.0,
                                         min_samples_leaf=2, max_leaf_nodes=63, l2_regularization=0.0)
    assert overfit.trained and overfit.metrics["mase"] > 1
    # Not even as the first version: no champion at all rather than a bad one.
    assert not overfit.promoted and overfit.champion_version is None
    assert "does not beat the naive forecast" in overfit.promotion_reason

    strong = training.train_performance(frame, store, policy=FORCE)
    assert strong.metrics["mase"] < 1 and strong.promoted and strong.champion_version == strong.version


def test_a_champion_that_forecast_the_legacy_score_is_replaced_by_a_first_overall_score_champion(store):
    frame, _ = synthetic.weekly_features(scopes=12, weeks=30, seed=5)
    first = training.train_performance(frame, store, policy=FORCE)
    client = registry.client(store.tracking_uri)
    assert first.promoted
    assert client.get_model_version(registry.PERFORMANCE, first.version).tags[registry.TAG_TARGET] == "overall_score"
    # What a version trained before the overall score looks like: no forecast_target tag.
    client.delete_model_version_tag(registry.PERFORMANCE, first.version, registry.TAG_TARGET)
    assert registry.champion(client, registry.PERFORMANCE) is not None
    assert registry.champion(client, registry.PERFORMANCE, registry.REQUIRED_TAGS[registry.PERFORMANCE]) is None
    from ml import insights

    stale = insights.load_champions(store.tracking_uri)
    assert stale.performance is None and registry.PERFORMANCE in stale.missing
    assert any("legacy performance score" in note for note in stale.notes)
    # The same data, the normal policy: the legacy version does not count, so this is a first training.
    again = training.train_performance(frame, store)
    assert again.trained and "first training" in again.decision.reason
    assert again.promoted and "first champion" in again.promotion_reason and again.champion_version == again.version
    champions = insights.load_champions(store.tracking_uri)
    assert champions.performance_version == again.version and registry.PERFORMANCE not in champions.missing


def test_demo_summary_trains_on_the_sandbox_and_lists_the_anomalies_found(store):
    from ghmetrics_dagster.sandbox import generator, truth
    from ml import demo

    frames = truth.compute(generator.generate(1))
    result = demo.train_and_summarise(frames["ml_weekly_features"], frames["anomalies"], store=store)
    text = str(result)
    assert result.performance.trained and result.anomaly.trained
    assert f"champion version 1, rolling-origin backtest: MASE {result.performance.metrics['mase']:.3f}" in text
    assert f"overall score {result.performance.metrics['mase_overall_score']:.3f}" in text
    assert f"precision {result.anomaly.metrics['precision']:.2f}" in text
    assert "(on labels anomalies)" in text
    listed = [line for line in text.splitlines() if "week of" in line]
    assert listed and all(line.rstrip().endswith(("[injected]", "[not injected]")) for line in listed)
    # Most of what it lists are the sandbox's injected anomalies.
    assert sum(line.endswith("[injected]") for line in listed) >= 0.8 * len(listed)
    # Again on the same data: nothing to retrain, the champions' logged metrics are still shown.
    again = demo.train_and_summarise(frames["ml_weekly_features"], frames["anomalies"], store=store)
    assert not again.anomaly.trained and again.anomaly.champion_version == "1"
    assert "not retrained (0 new scope-weeks" in str(again)
    assert f"champion version 1, rolling-origin backtest: MASE {result.performance.metrics['mase']:.3f}" in str(again)
    # Forced: a new version that does not beat the champion stays a challenger.
    forced = demo.train_and_summarise(frames["ml_weekly_features"], frames["anomalies"], store=store,
                                      policy=TrainingPolicy(force=True))
    assert forced.anomaly.version == "2" and forced.anomaly.champion_version == "1"
    assert "kept as challenger" in str(forced)


def _log_tiny_model(experiment_id: str, registered_model_name: str | None = None):
    """A small scikit-learn model logged in its own run; returns (ModelInfo, run id)."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LinearRegression

    x = np.arange(8, dtype=float).reshape(-1, 1)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        info = mlflow.sklearn.log_model(LinearRegression().fit(x, 2 * x.ravel()), name="model",
                                        registered_model_name=registered_model_name,
                                        pip_requirements=["scikit-learn"])
    return info, run.info.run_id


def test_a_second_registration_says_nothing_about_an_existing_model(store, capfd, caplog):
    import json

    client = registry.client(store.tracking_uri)
    exp = registry.experiment_id(client, "registration", store.artifact_root)
    first, first_run = _log_tiny_model(exp)
    assert registry.register_version(client, registry.ANOMALY, first.model_id, first_run) == "1"
    second, second_run = _log_tiny_model(exp)
    capfd.readouterr()
    caplog.clear()
    with caplog.at_level("DEBUG"):
        assert registry.register_version(client, registry.ANOMALY, second.model_id, second_run) == "2"
    out, err = capfd.readouterr()
    for text in (out, err, caplog.text):
        assert "already exists" not in text
    assert client.get_registered_model(registry.ANOMALY).description == registry.DESCRIPTIONS[registry.ANOMALY]

    # What MLflow's own log_model(registered_model_name=...) records, which printed the line.
    theirs, theirs_run = _log_tiny_model(exp, registered_model_name="mlflow-registered")
    _log_tiny_model(exp, registered_model_name="mlflow-registered")
    assert "already exists" in capfd.readouterr().err
    expected = client.get_model_version("mlflow-registered", "1")
    version = client.get_model_version(registry.ANOMALY, "2")
    assert (version.source, version.run_id, version.status) == (f"models:/{second.model_id}", second_run, "READY")
    assert expected.source == f"models:/{theirs.model_id}" and expected.run_id == theirs_run
    assert (version.tags, version.description, version.model_id) == (expected.tags, expected.description,
                                                                      expected.model_id)
    linked = client.get_logged_model(second.model_id).tags["mlflow.modelVersions"]
    assert json.loads(linked) == [{"name": registry.ANOMALY, "version": 2}]
    assert json.loads(client.get_logged_model(theirs.model_id).tags["mlflow.modelVersions"]) == [
        {"name": "mlflow-registered", "version": 1}]


def test_a_registered_model_gets_its_description_once_and_keeps_it_up_to_date(store):
    client = registry.client(store.tracking_uri)
    registry.ensure_registered_model(client, registry.PERFORMANCE)
    assert client.get_registered_model(registry.PERFORMANCE).description == registry.DESCRIPTIONS[registry.PERFORMANCE]
    client.update_registered_model(registry.PERFORMANCE, description="an older text")
    registry.ensure_registered_model(client, registry.PERFORMANCE)
    assert client.get_registered_model(registry.PERFORMANCE).description == registry.DESCRIPTIONS[registry.PERFORMANCE]


def test_retraining_prints_no_already_exists_line(store, capfd):
    frame, labels = synthetic.weekly_features(scopes=12, weeks=30, seed=3)
    training.train_anomaly(frame, store, policy=FORCE, labels=labels, run_id="run-1")
    capfd.readouterr()
    again = training.train_anomaly(frame, store, policy=FORCE, labels=labels, run_id="run-2")
    assert again.version == "2"
    assert "already exists" not in capfd.readouterr().err
