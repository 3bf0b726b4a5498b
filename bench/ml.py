"""Training and scoring time of the ML models per 1,000 scopes.

    .venv/bin/python bench/ml.py [--quick]

Data: synthetic weekly feature frames (ml/synthetic.py) with N scopes x 40 weeks, plus the
sandbox organisation (12 repositories x 40 weeks) for quality. Baselines measured in the same
process on the same data: the naive last-value forecast (what the performance model must beat)
and robust z-scores alone with a fixed threshold (the anomaly model without its forest and
calibration). Times are wall-clock seconds on this machine; "per 1k scopes" divides by the
number of scopes / 1000. Writes bench/results/ml.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml import anomaly, performance, synthetic  # noqa: E402
from ml import features as F  # noqa: E402

WEEKS = 40


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def _naive_baseline(frame):
    """Naive forecast: features needed only for the last value. Returns (seconds, MASE=1 by definition)."""
    def run():
        prepared = F.prepare(frame)
        return prepared.groupby(["scope_type", "scope"])[[F.LEAD_TIME, F.SCORE]].ffill()
    _, seconds = _timed(run)
    return seconds


def _zscore_baseline(frame, labels, threshold=3.5):
    def run():
        scores = anomaly.scoring_frame(frame)
        z = scores[[f"z__{m}" for m in anomaly.ANOMALY_METRICS]].abs().max(axis=1)
        return scores.assign(is_anomaly=z >= threshold)
    scored, seconds = _timed(run)
    judged = scored[(scored["scope_type"] == "repository") & scored["has_history"]]
    truth = anomaly.label_keys(labels)
    is_true = np.array([(s, w) in truth for s, w in zip(judged["scope"], judged["week_start"])])
    flagged = judged["is_anomaly"].to_numpy()
    tp = int((flagged & is_true).sum())
    precision = tp / max(1, int(flagged.sum()))
    recall = tp / max(1, int(is_true.sum()))
    return seconds, precision, recall


def bench_scale(scopes: int, seed: int = 0) -> list[dict]:
    frame, labels = synthetic.weekly_features(scopes=scopes, weeks=WEEKS, seed=seed)
    per_k = scopes / 1000
    rows = []

    perf, train_s = _timed(lambda: performance.train(frame))
    _, score_s = _timed(lambda: performance.predict_latest(perf.model, frame))
    naive_s = _naive_baseline(frame)
    rows.append({"model": "performance (HistGradientBoosting x2)", "scopes": scopes, "rows": len(frame),
                 "train_s": train_s, "score_s": score_s, "train_s_per_1k": train_s / per_k,
                 "score_s_per_1k": score_s / per_k, "quality": f"MASE {perf.metrics['mase']:.3f}"})
    rows.append({"model": "baseline: naive last value", "scopes": scopes, "rows": len(frame),
                 "train_s": 0.0, "score_s": naive_s, "train_s_per_1k": 0.0, "score_s_per_1k": naive_s / per_k,
                 "quality": "MASE 1.000"})

    anom, train_s = _timed(lambda: anomaly.train(frame, labels=labels))
    _, score_s = _timed(lambda: anomaly.score_frame(anom.model, frame))
    rows.append({"model": "anomaly (robust z + IsolationForest)", "scopes": scopes, "rows": len(frame),
                 "train_s": train_s, "score_s": score_s, "train_s_per_1k": train_s / per_k,
                 "score_s_per_1k": score_s / per_k,
                 "quality": f"P {anom.metrics['precision']:.2f} R {anom.metrics['recall']:.2f}"})
    z_s, p, r = _zscore_baseline(frame, labels)
    rows.append({"model": "baseline: robust z >= 3.5 only", "scopes": scopes, "rows": len(frame),
                 "train_s": 0.0, "score_s": z_s, "train_s_per_1k": 0.0, "score_s_per_1k": z_s / per_k,
                 "quality": f"P {p:.2f} R {r:.2f}"})
    return rows


def bench_with_mlflow(scopes: int, seed: int = 0) -> list[dict]:
    """The same training as the Dagster assets do it: policy, fit, MLflow logging and registry."""
    import tempfile

    from ml import training

    frame, labels = synthetic.weekly_features(scopes=scopes, weeks=WEEKS, seed=seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = training.Store(f"sqlite:///{tmp}/mlflow.db", f"{tmp}/artifacts")
        for name, train in (("performance", lambda: training.train_performance(frame, store)),
                            ("anomaly", lambda: training.train_anomaly(frame, store, labels=labels))):
            outcome, seconds = _timed(train)
            rows.append({"model": f"{name}: train + log + register (sqlite)", "scopes": scopes, "rows": len(frame),
                         "train_s": seconds, "score_s": float("nan"), "train_s_per_1k": seconds / (scopes / 1000),
                         "score_s_per_1k": float("nan"), "quality": f"version {outcome.version}"})
    return rows


def bench_sandbox(seed: int = 1) -> list[dict]:
    from ghmetrics_dagster.sandbox import generator, truth

    frames = truth.compute(generator.generate(seed, repos=12, weeks=WEEKS, prs_per_repo=250))
    features, labels = frames["ml_weekly_features"], frames["anomalies"]
    scopes = features.groupby(["scope_type", "scope"]).ngroups
    perf, perf_s = _timed(lambda: performance.train(features))
    anom, anom_s = _timed(lambda: anomaly.train(features, labels=labels))
    z_s, p, r = _zscore_baseline(features, labels)
    return [
        {"model": f"sandbox seed {seed}: performance", "scopes": scopes, "rows": len(features), "train_s": perf_s,
         "score_s": float("nan"), "train_s_per_1k": perf_s / (scopes / 1000), "score_s_per_1k": float("nan"),
         "quality": f"MASE {perf.metrics['mase']:.3f} (lead {perf.metrics['mase_lead_time']:.3f}, "
                    f"overall score {perf.metrics['mase_overall_score']:.3f})"},
        {"model": f"sandbox seed {seed}: anomaly", "scopes": scopes, "rows": len(features), "train_s": anom_s,
         "score_s": float("nan"), "train_s_per_1k": anom_s / (scopes / 1000), "score_s_per_1k": float("nan"),
         "quality": f"P {anom.metrics['precision']:.2f} R {anom.metrics['recall']:.2f}"},
        {"model": f"sandbox seed {seed}: baseline robust z >= 3.5", "scopes": scopes, "rows": len(features),
         "train_s": 0.0, "score_s": z_s, "train_s_per_1k": 0.0, "score_s_per_1k": z_s / (scopes / 1000),
         "quality": f"P {p:.2f} R {r:.2f}"},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 scopes only (a smoke run)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    sizes = [200] if args.quick else [250, 1000, 2000]
    rows = []
    for scopes in sizes:
        rows += bench_scale(scopes)
    rows += bench_with_mlflow(sizes[0] if args.quick else 1000)
    rows += bench_sandbox()

    header = f"{'model':44s} {'scopes':>6s} {'rows':>7s} {'train s':>8s} {'score s':>8s} {'train/1k':>9s} {'score/1k':>9s}  quality"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['model']:44s} {r['scopes']:6d} {r['rows']:7d} {r['train_s']:8.2f} {r['score_s']:8.2f} "
              f"{r['train_s_per_1k']:9.2f} {r['score_s_per_1k']:9.2f}  {r['quality']}")
    out = ROOT / "bench" / "results" / "ml.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "weeks": WEEKS, "quick": args.quick, "python": platform.python_version(), "machine": platform.machine(),
        "rows": [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()} for r in rows],
    }, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
