"""Model quality on the sandbox organisation, judged by its ground truth (3 seeds).

The org is larger than the default (12 repositories, 40 weeks) so every seed has about 48
injected anomalies and enough weeks for a 6-origin rolling backtest.
"""

from __future__ import annotations

import pytest

from ml import anomaly, performance

ORG = dict(repos=12, weeks=40, prs_per_repo=250)


@pytest.fixture(scope="module", params=[1, 2, 3], ids=lambda s: f"seed{s}")
def sandbox(request, sandbox_frames):
    return sandbox_frames(request.param, **ORG)


def test_anomaly_model_finds_the_injected_anomalies(sandbox):
    features, labels = sandbox
    assert len(labels) >= 30  # enough labels for precision and recall to mean something
    trained = anomaly.train(features, labels=labels)
    m = trained.metrics
    assert trained.label_source == "labels"
    assert m["precision"] >= 0.8, m
    assert m["recall"] >= 0.8, m
    # Every flagged week names a metric it was flagged for, and it is one the model watches.
    verdict = anomaly.score_frame(trained.model, features)
    flagged = verdict[verdict["is_anomaly"]]
    assert flagged["anomaly_metric"].isin(trained.model.metrics_).all()
    # The driving metric is right for most true positives (injected deployments show up in
    # deployments or in deployments per deployment day).
    labelled = labels.assign(week_start=lambda d: d["week_start"].astype("datetime64[ns]"))
    hits = flagged.merge(labelled, on=["scope_type", "scope", "week_start"])
    same = hits.apply(lambda r: r["anomaly_metric"] == r["metric"]
                      or (r["metric"] == "deployments" and r["anomaly_metric"].startswith("deployments")), axis=1)
    assert same.mean() >= 0.8


def test_performance_model_beats_the_naive_forecast(sandbox):
    features, _ = sandbox
    trained = performance.train(features)
    m = trained.metrics
    assert m["mase"] < 1, m
    assert m["mase_lead_time"] < 1, m
    assert trained.beats_naive
    assert m["backtest_rows"] >= 100 and m["backtest_origins"] == 6
    assert trained.published[performance.F.LEAD_TIME]
