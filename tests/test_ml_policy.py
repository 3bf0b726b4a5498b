"""The training policy: pure decisions, then every branch on a real (sqlite) MLflow store."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ml import registry, synthetic, training
from ml.policy import LastTraining, TrainingPolicy, count_new_samples, decide

T0 = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def _weeks(start: str, n: int, scopes: int = 1) -> pd.Series:
    return pd.Series([pd.Timestamp(start) + pd.Timedelta(weeks=w) for _ in range(scopes) for w in range(n)])


def test_new_samples_count_weeks_after_the_watermark_and_unseen_history():
    last = LastTraining("1", T0, pd.Timestamp("2026-01-26"), sample_count=4)
    weeks = _weeks("2026-01-05", 6)  # 4 up to the watermark, 2 after
    assert count_new_samples(weeks, last) == 2
    # A repository added later brings 4 weeks of history at or before the watermark.
    assert count_new_samples(pd.concat([weeks, _weeks("2026-01-05", 4)]), last) == 6


def test_decisions_name_their_reason_and_respect_configured_thresholds():
    weeks = _weeks("2026-01-05", 10)
    first = decide(weeks, None, TrainingPolicy())
    assert first.train and "first training" in first.reason and first.new_samples == 10

    last = LastTraining("3", T0, pd.Timestamp("2026-02-02"), sample_count=5)  # 5 weeks seen, 5 new
    young = decide(weeks, last, TrainingPolicy(), now=T0 + dt.timedelta(days=1))
    assert not young.train
    assert "5 new scope-weeks" in young.reason and "min_new_samples=50" in young.reason
    assert young.age_days == pytest.approx(1.0)
    # The threshold is configuration: 5 new samples are enough when min_new_samples is 5.
    assert decide(weeks, last, TrainingPolicy(min_new_samples=5), now=T0 + dt.timedelta(days=1)).train
    # No champion (the last version lost to naive) and no new data: retraining is pointless.
    stale = LastTraining("3", T0, pd.Timestamp("2026-03-09"), sample_count=10, has_champion=False)
    assert not decide(weeks, stale, TrainingPolicy(), now=T0 + dt.timedelta(days=30)).train
    with pytest.raises(ValueError, match="min_new_samples"):
        TrainingPolicy(min_new_samples=0)


@pytest.fixture(scope="module")
def series():
    """10 repositories over 40 weeks; training starts on the first 30."""
    frame, _ = synthetic.weekly_features(scopes=10, weeks=40, seed=7)
    return frame.sort_values(["week_start", "scope"]).reset_index(drop=True)


def test_policy_branches_on_a_real_mlflow_store(tmp_path, series):
    store = training.Store(f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "artifacts"))
    cut = pd.Timestamp(series["week_start"].min()) + pd.Timedelta(weeks=30)
    base = series[series["week_start"] < cut]
    later = series[series["week_start"] >= cut]  # 100 rows, in week order
    train = lambda frame, now, **kw: training.train_anomaly(frame, store, now=now, run_id="test-run", **kw)  # noqa: E731

    first = train(base, T0)
    assert first.trained and first.version == "1" and first.decision.new_samples == len(base)
    assert "first training" in first.decision.reason

    with_49 = pd.concat([base, later.head(49)])
    skipped = train(with_49, T0 + dt.timedelta(days=1))
    assert not skipped.trained and skipped.decision.new_samples == 49
    assert "below min_new_samples=50" in skipped.decision.reason
    assert skipped.as_metadata()["policy_new_samples"] == 49

    with_50 = pd.concat([base, later.head(50)])
    fifty = train(with_50, T0 + dt.timedelta(days=1))
    assert fifty.trained and fifty.version == "2" and fifty.decision.new_samples == 50

    # 7 days after version 2 with a single new scope-week.
    with_51 = pd.concat([base, later.head(51)])
    assert not train(with_51, T0 + dt.timedelta(days=7)).trained  # only 6 days old
    aged = train(with_51, T0 + dt.timedelta(days=8))
    assert aged.trained and aged.decision.new_samples == 1 and "max_age_days=7" in aged.decision.reason

    forced = train(with_51, T0 + dt.timedelta(days=8, hours=1), policy=TrainingPolicy(force=True))
    assert forced.trained and forced.decision.new_samples == 0 and "forced" in forced.decision.reason

    # The registry tags are what the policy read back: each version's watermark and sample count.
    client = registry.client(store.tracking_uri)
    v2 = client.get_model_version(registry.ANOMALY, "2")
    assert v2.tags[registry.TAG_SAMPLES] == str(len(with_50))
    assert v2.tags[registry.TAG_WATERMARK] == str(with_50["week_start"].max().date())
    assert v2.tags[registry.TAG_RUN_ID] == "test-run"
    assert str(client.get_model_version_by_alias(registry.ANOMALY, "challenger").version) == "4"
