"""Models people can trust: per-target publishing, live error, intervals, anomalies on a scale.

The forecasts are judged by rolling-origin backtests (ml/backtest.py); a target is shown only
while it beats the naive last-value forecast; the champion's live error is watched (ml/live.py)
and retrains it when it falls behind naive; anomalies are read as a z-score with an expected
range. Real MLflow stores (sqlite) and the sandbox's ground truth; no mocks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml import anomaly, backtest, insights, live, performance, registry, synthetic, training
from ml import features as F
from ml.policy import TrainingPolicy

DEMO_ORG = dict(repos=6, weeks=26, prs_per_repo=80)  # what `ghmetrics demo` generates


def _random_walk_score(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The overall score replaced by a random walk per scope: nothing forecasts it better than
    its last value."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    out["overall_score"] = out.groupby("scope")["overall_score"].transform(
        lambda s: np.clip(5 + np.cumsum(rng.normal(0, 0.6, len(s))), 0, 10))
    return out


@pytest.fixture
def store(tmp_path):
    return training.Store(f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "artifacts"))


def test_a_target_that_does_not_beat_naive_is_not_published(store):
    frame, _ = synthetic.weekly_features(scopes=20, weeks=30, seed=1)
    frame = _random_walk_score(frame, seed=1)
    outcome = training.train_performance(frame, store, policy=TrainingPolicy(force=True))
    m = outcome.metrics
    assert m["mase_overall_score"] >= 1 > m["mase_lead_time"], m
    assert outcome.promoted  # lead time beats naive: the version is useful
    client = registry.client(store.tracking_uri)
    champ = registry.champion(client, registry.PERFORMANCE, registry.REQUIRED_TAGS[registry.PERFORMANCE])
    assert champ.tags["published_lead_time"] == "true" and champ.tags["published_overall_score"] == "false"
    listed = [r for r in registry.list_versions(client) if r.name == registry.PERFORMANCE]
    assert listed[0].headline.endswith("(forecasts shown: lead time)"), listed[0].headline

    champions = insights.load_champions(store.tracking_uri)
    assert champions.forecast_status == {F.LEAD_TIME: insights.PUBLISHED, F.SCORE: insights.NO_BETTER}
    rows = insights.score(frame, champions, "alice", weeks=2)
    assert rows["predicted_overall_score"].isna().all()
    assert rows["predicted_overall_score_low"].isna().all()
    assert (rows["overall_score_forecast_status"] == "no_better_than_naive").all()
    lead = rows.dropna(subset=["predicted_lead_time_hours"])
    assert len(lead) == len(rows) and (lead["lead_time_forecast_status"] == "published").all()
    # The published forecast comes with its interval around it.
    assert (lead["predicted_lead_time_hours_low"] <= lead["predicted_lead_time_hours"]).all()
    assert (lead["predicted_lead_time_hours"] <= lead["predicted_lead_time_hours_high"]).all()
    assert (lead["predicted_lead_time_hours_high"] > lead["predicted_lead_time_hours_low"]).all()
    assert (rows["interval_level"] == backtest.LEVEL).all()

    # The reviewer's view in MLflow: per-target backtest charts and the predictions behind them.
    artefacts = {a.path for a in client.list_artifacts(champ.run_id, "review")}
    assert {"review/backtest_lead_time.png", "review/backtest_overall_score.png",
            "review/backtest_predictions.json"} <= artefacts
    logged = client.get_run(champ.run_id).data.metrics
    assert 0 < logged["interval_coverage_lead_time"] <= 1 and logged["published_overall_score"] == 0.0


def _stall_after(frame: pd.DataFrame, watermark: pd.Timestamp) -> pd.DataFrame:
    """After `watermark`, every scope's lead time barely moves (1 % a week): the naive forecast
    is all but perfect there and the model, which expects the usual swings, is worse than it."""
    rng = np.random.default_rng(7)
    out = F.prepare(frame)
    later = out["week_start"] > watermark
    out.loc[later, F.LEAD_TIME] = np.nan
    out[F.LEAD_TIME] = out.groupby(["scope_type", "scope"])[F.LEAD_TIME].ffill()
    out.loc[later, F.LEAD_TIME] *= np.exp(rng.normal(0, 0.01, int(later.sum())))
    return out


def test_a_champion_behind_naive_live_is_withdrawn_and_retrained(store):
    frame, _ = synthetic.weekly_features(scopes=20, weeks=34, seed=2)
    frame = F.prepare(frame)
    weeks = sorted(frame["week_start"].unique())
    first = frame[frame["week_start"] <= weeks[-6]]
    trained = training.train_performance(first, store, policy=TrainingPolicy(force=True))
    assert trained.promoted and trained.metrics["mase_lead_time"] < 1
    patient = TrainingPolicy(min_new_samples=10_000, max_age_days=365, live_error_weeks=3)

    # Real weeks after the watermark: the champion keeps beating naive, nothing triggers.
    ordinary = training.train_performance(frame, store, policy=patient)
    assert not ordinary.trained, ordinary.decision.reason
    assert set(ordinary.live.errors["target_week"]) == set(pd.to_datetime(weeks[-5:]))
    assert ordinary.live.behind == {} and ordinary.live.warning == ""
    assert insights.load_champions(store.tracking_uri).forecast_status[F.LEAD_TIME] == insights.PUBLISHED

    # Weeks where lead time stops moving: the champion's forecasts are worse than naive every week.
    stalled = _stall_after(frame, pd.Timestamp(weeks[-6]))
    errors = live.live_errors(registry.load(registry.PERFORMANCE), stalled, pd.Timestamp(weeks[-6]))
    assert live.weeks_behind_naive(errors, F.LEAD_TIME) >= 3
    outcome = training.train_performance(stalled, store, policy=patient)
    assert outcome.live.behind == {F.LEAD_TIME: live.weeks_behind_naive(errors, F.LEAD_TIME)}
    assert "worse than last week's value" in outcome.live.warning and "lead time" in outcome.live.warning
    # The third trigger: retrained although neither new samples nor age would have.
    assert outcome.trained and "live forecasts are worse than naive" in outcome.decision.reason
    client = registry.client(store.tracking_uri)
    old = client.get_model_version(registry.PERFORMANCE, trained.version)
    assert old.tags["live_withdrawn_lead_time"] == "true"
    # One point per live week and reading: the ordinary weeks, then the same weeks revised.
    history = client.get_metric_history(old.run_id, "live_mase_lead_time")
    assert len(history) == 10 and len({h.step for h in history}) == 5
    assert sum(h.value > 1 for h in history) >= 3
    # Watching again adds no duplicate points.
    training.watch_live_error(client, old, registry.load(registry.PERFORMANCE, trained.version), stalled, patient)
    assert len(client.get_metric_history(old.run_id, "live_mase_lead_time")) == 10
    if not outcome.promoted:
        # The old champion stays, but its lead-time forecast is withdrawn.
        assert insights.load_champions(store.tracking_uri).forecast_status[F.LEAD_TIME] == insights.BEHIND_LIVE


def test_interval_coverage_is_near_its_nominal_level_on_the_sandbox(sandbox_frames):
    covered = {t: [] for t in F.TARGETS}
    for seed in (1, 2, 3):
        features, _ = sandbox_frames(seed, **DEMO_ORG)
        tested = performance.train(features).backtest
        for target, result in tested.targets.items():
            assert result.covered_rows >= 60
            covered[target].append((result.interval_coverage, result.covered_rows))
    for target, seeds in covered.items():
        pooled = sum(c * n for c, n in seeds) / sum(n for _, n in seeds)
        assert abs(pooled - backtest.LEVEL) <= 0.1, (target, seeds)


def test_conformal_half_width_is_the_finite_sample_quantile():
    errors = np.arange(1, 10, dtype=float)  # 9 errors: the 80 % interval takes the 8th smallest
    assert backtest.conformal_half_width(errors, 0.8) == 8.0
    assert backtest.conformal_half_width(np.array([1.0, 2.0]), 0.8) == float("inf")


@pytest.fixture(scope="module", params=[1, 2, 3], ids=lambda s: f"seed{s}")
def demo_sandbox(request, sandbox_frames):
    return sandbox_frames(request.param, **DEMO_ORG)


def test_anomalies_are_found_at_the_demo_size_on_a_stated_scale(demo_sandbox):
    features, labels = demo_sandbox
    trained = anomaly.train(features, labels=labels)
    assert trained.metrics["precision"] >= 0.8 and trained.metrics["recall"] >= 0.8, trained.metrics
    verdict = anomaly.score_frame(trained.model, features, explain=True)
    flagged = verdict[verdict["is_anomaly"]]
    by_z = flagged[flagged["max_abs_z"] >= trained.model.z_threshold]
    assert len(by_z) > 0
    # Flagged by its z-score: the observed value lies outside the expected range, on the side z says.
    above = by_z["anomaly_z"] > 0
    assert (by_z.loc[above, "anomaly_observed"] > by_z.loc[above, "anomaly_expected_high"]).all()
    assert (by_z.loc[~above, "anomaly_observed"] < by_z.loc[~above, "anomaly_expected_low"]).all()
    # The rarity reads from z: beyond 3.25 such a week comes less than once in 850 ordinary weeks.
    assert (by_z["anomaly_weeks_per_event"] > 850).all()
    ordinary = verdict[~verdict["is_anomaly"] & verdict["has_history"]]
    assert (ordinary["anomaly_observed"].dropna().between(ordinary["anomaly_expected_low"] - 1e-9,
                                                          ordinary["anomaly_expected_high"] + 1e-9)).mean() > 0.95


def test_the_live_error_is_kept_per_target_and_week_in_the_warehouse(database_url, store):
    from ml import data

    frame = F.prepare(synthetic.weekly_features(scopes=20, weeks=34, seed=2)[0])
    weeks = sorted(frame["week_start"].unique())
    trained = training.train_performance(frame[frame["week_start"] <= weeks[-6]], store,
                                         policy=TrainingPolicy(force=True))
    health = training.train_performance(frame, store, policy=TrainingPolicy(min_new_samples=10_000,
                                                                            max_age_days=365)).live
    assert health.version == trained.version and len(health.errors) == 2 * 5
    assert data.replace_forecast_errors(database_url, registry.PERFORMANCE, health.version, health.errors) == 10
    # Rewritten, not appended, each time the asset runs.
    data.replace_forecast_errors(database_url, registry.PERFORMANCE, health.version, health.errors)
    import psycopg2

    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("select target, target_week, scopes, mase from ml.forecast_errors where model_version = %s"
                    " order by target, target_week", (health.version,))
        stored = cur.fetchall()
    expected = health.errors.sort_values(["target", "target_week"])
    assert [(t, w, s) for t, w, s, _ in stored] == [
        (r.target, r.target_week.date(), r.scopes) for r in expected.itertuples()]
    assert [float(m) for *_, m in stored] == pytest.approx(expected["mase"].tolist())
