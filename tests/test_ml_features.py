"""Feature building: robust scores (MAD = 0 guard), binomial shares, no look-ahead, the overall score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ghmetrics_dagster.sandbox import generator, truth
from ml import anomaly, performance
from ml import features as F


def _weekly(values: dict[str, list], scope: str = "acme/api") -> pd.DataFrame:
    n = len(next(iter(values.values())))
    frame = pd.DataFrame({"scope_type": "repository", "scope": scope,
                          "week_start": pd.date_range("2026-01-05", periods=n, freq="7D")})
    for column in F.METRIC_COLUMNS:
        frame[column] = values.get(column, [np.nan] * n)
    return frame


def test_constant_history_does_not_divide_by_zero_and_a_jump_still_stands_out():
    # MAD and mean deviation are both 0 over a flat history: the floor takes over.
    hours = [10.0] * 12 + [40.0]
    scores = F.robust_scores(_weekly({"median_review_hours": hours}))
    z = scores["z__median_review_hours"].to_numpy()
    assert np.isfinite(z).all()
    assert (z[:12] == 0).all()
    assert z[12] == pytest.approx((np.log1p(40) - np.log1p(10)) / 0.25)
    # Too little history: not judged (0), whatever the value.
    assert F.robust_scores(_weekly({"median_review_hours": [1.0, 1.0, 500.0]}))["z__median_review_hours"].iloc[2] == 0


def test_mostly_zero_history_falls_back_to_the_mean_deviation():
    values = [0.0] * 10 + [4.0, 0.0] + [0.0]
    scores = F.robust_scores(_weekly({"incidents": values, "deployments": [5.0] * 13}))
    assert np.isfinite(scores["z__incidents"]).all()
    assert scores["z__incidents"].iloc[12] < 0.5  # back to zero is not an anomaly


def test_shares_of_few_events_are_judged_by_their_binomial_tail():
    n = 14
    deployments = [3.0] * n
    failures = [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]
    cfr = [f / d for f, d in zip(failures, deployments, strict=False)]
    scores = F.robust_scores(_weekly({"change_failure_rate": cfr, "deployments": deployments,
                                      "failed_changes": failures}))
    # 2 failures of 3 with a usual rate of 2/39: rare but not extreme (a median/MAD on the share
    # would say z > 5 here).
    z = scores["z__change_failure_rate"].iloc[-1]
    assert 1.5 < z < 3.25


def test_forecast_features_never_look_ahead():
    frame = truth.compute(generator.generate(2))["ml_weekly_features"]
    feats = F.forecast_features(frame)
    names = F.forecast_feature_names(feats)
    assert not any(n.startswith(("target_", "naive_")) for n in names)
    # Changing the last week changes only that week's features (and the week before's target).
    last = F.prepare(frame)["week_start"].max()
    changed = frame.copy()
    changed.loc[pd.to_datetime(changed["week_start"]) == last, "median_lead_time_hours"] = 9999.0
    after = F.forecast_features(changed)
    earlier = feats["week_start"] < last
    pd.testing.assert_frame_equal(feats.loc[earlier, names], after.loc[earlier, names])
    before_last = feats["target_week_start"] == last
    assert (after.loc[before_last, f"target_{F.LEAD_TIME}"] == 9999.0).all()


def test_window_score_reproduces_the_contract_overall_score():
    frame = F.prepare(truth.compute(generator.generate(3))["ml_weekly_features"])
    recomputed = F.window_score(frame, 12)
    known = frame["overall_score"].notna()
    assert known.mean() > 0.9
    # Lead time and recovery medians are pooled in the contract and approximated here by
    # medians of weekly medians (a band moves only near its threshold): allow a small share of
    # weeks to differ.
    close = (recomputed[known] - frame.loc[known, "overall_score"]).abs() < 0.01
    assert close.mean() > 0.9


def test_predictions_are_in_range_and_feature_errors_are_one_clear_line():
    frame = truth.compute(generator.generate(4))["ml_weekly_features"]
    trained = performance.train(frame)
    forecasts = performance.predict_latest(trained.model, frame)
    assert (forecasts["predicted_lead_time_hours"] >= 0).all()
    assert forecasts["predicted_overall_score"].between(0, 10).all()
    assert trained.model.targets_ == ["median_lead_time_hours", "overall_score"]
    with pytest.raises(F.FeatureError, match="lacks features"):
        trained.model.predict(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(F.FeatureError, match="rebuild the marts"):
        F.prepare(pd.DataFrame({"scope": ["a"]}))
    with pytest.raises(F.FeatureError, match="needs at least 30"):
        anomaly.train(frame.head(20))
