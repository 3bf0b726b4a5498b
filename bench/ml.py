"""Model quality and cost per organisation size: forecasts, intervals, anomalies, time per 1,000 scopes.

    .venv/bin/python bench/ml.py [--quick]

Quality is measured on the sandbox organisation (its ground truth computes the marts and knows
the injected anomalies) at the demo's size (6 repositories x 26 weeks) and the benchmark's
(12 x 40), 3 seeds each: per forecast target, MASE over the rolling origins (ml/backtest.py)
and whether the target is published (MASE < 1) and the measured coverage of the 80 % conformal
intervals; anomaly precision and recall on the injected anomalies (the worst seed is reported).
Baselines measured in the same process on the same data: the naive last-value forecast (MASE 1
by definition, what a target must beat to be published) and robust z-scores alone with a fixed
threshold of 3.5 (the anomaly model without its calibration and forest).

Cost: train and score seconds per 1,000 scopes, on the sandbox sizes and on synthetic frames
(ml/synthetic.py) of 250 and 1,000 scopes x 40 weeks. Wall-clock on this machine, one thread.
Writes bench/results/ml.json: `sizes` holds one object per size with `repos`, `weeks`,
`anomaly_precision`, `anomaly_recall` (the worst seed) and `targets` (per target `mase`,
`published`, `interval_coverage`).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ghmetrics_dagster.sandbox import generator, truth  # noqa: E402
from ml import anomaly, backtest, performance, synthetic  # noqa: E402
from ml import features as F  # noqa: E402

SIZES = [{"name": "demo", "repos": 6, "weeks": 26, "prs_per_repo": 80},  # what `ghmetrics demo` generates
         {"name": "benchmark", "repos": 12, "weeks": 40, "prs_per_repo": 250}]
SEEDS = (1, 2, 3)


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def _zscore_baseline(frame, labels, threshold=3.5) -> tuple[float, float]:
    scores = anomaly.scoring_frame(frame)
    z = scores[[f"z__{m}" for m in anomaly.ANOMALY_METRICS]].abs().max(axis=1)
    judged = scores[(scores["scope_type"] == "repository") & scores["has_history"]]
    flagged = (z[judged.index] >= threshold).to_numpy()
    truth_keys = anomaly.label_keys(labels)
    is_true = np.array([(s, w) in truth_keys for s, w in zip(judged["scope"], judged["week_start"], strict=False)])
    tp = int((flagged & is_true).sum())
    return tp / max(1, int(flagged.sum())), tp / max(1, int(is_true.sum()))


def bench_size(size: dict, seeds) -> dict:
    per_seed = []
    for seed in seeds:
        frames = truth.compute(generator.generate(seed, repos=size["repos"], weeks=size["weeks"],
                                                  prs_per_repo=size["prs_per_repo"]))
        features, labels = frames["ml_weekly_features"], frames["anomalies"]
        scopes = features.groupby(["scope_type", "scope"]).ngroups
        perf, perf_train = _timed(functools.partial(performance.train, features))
        _, perf_score = _timed(functools.partial(performance.predict_latest, perf.model, features))
        anom, anom_train = _timed(functools.partial(anomaly.train, features, labels=labels))
        _, anom_score = _timed(functools.partial(anomaly.score_frame, anom.model, features, explain=True))
        base_p, base_r = _zscore_baseline(features, labels)
        per_seed.append({
            "seed": seed, "scopes": scopes, "labels": len(labels),
            "targets": {t: {"mase": r.mase, "published": r.published, "interval_coverage": r.interval_coverage,
                            "covered_rows": r.covered_rows} for t, r in perf.backtest.targets.items()},
            "anomaly_precision": anom.metrics["precision"], "anomaly_recall": anom.metrics["recall"],
            "baseline_z_precision": base_p, "baseline_z_recall": base_r,
            "performance_train_s_per_1k": perf_train / scopes * 1000,
            "performance_score_s_per_1k": perf_score / scopes * 1000,
            "anomaly_train_s_per_1k": anom_train / scopes * 1000,
            "anomaly_score_s_per_1k": anom_score / scopes * 1000,
        })
        print(f"  {size['name']} seed {seed}: done", file=sys.stderr, flush=True)
    targets = {}
    for target in F.TARGETS:
        results = [s["targets"][target] for s in per_seed]
        rows = sum(r["covered_rows"] for r in results)
        targets[backtest.SHORT_NAMES[target]] = {
            "mase": float(np.mean([r["mase"] for r in results])),
            "mase_worst": float(max(r["mase"] for r in results)),
            "mase_per_seed": [round(r["mase"], 4) for r in results],
            "published": all(r["published"] for r in results),
            "published_seeds": sum(r["published"] for r in results),
            "interval_coverage": sum(r["interval_coverage"] * r["covered_rows"] for r in results) / rows,
            "interval_level": backtest.LEVEL,
        }
    return {
        "name": size["name"], "repos": size["repos"], "weeks": size["weeks"], "seeds": list(seeds),
        "anomaly_precision": min(s["anomaly_precision"] for s in per_seed),
        "anomaly_recall": min(s["anomaly_recall"] for s in per_seed),
        "baseline_z_precision": min(s["baseline_z_precision"] for s in per_seed),
        "baseline_z_recall": min(s["baseline_z_recall"] for s in per_seed),
        "targets": targets,
        **{key: float(np.mean([s[key] for s in per_seed])) for key in (
            "performance_train_s_per_1k", "performance_score_s_per_1k", "anomaly_train_s_per_1k",
            "anomaly_score_s_per_1k")},
        "per_seed": per_seed,
    }


def bench_scale(scopes: int) -> dict:
    frame, labels = synthetic.weekly_features(scopes=scopes, weeks=40, seed=0)
    perf, perf_train = _timed(lambda: performance.train(frame))
    _, perf_score = _timed(lambda: performance.predict_latest(perf.model, frame))
    anom, anom_train = _timed(lambda: anomaly.train(frame, labels=labels))
    _, anom_score = _timed(lambda: anomaly.score_frame(anom.model, frame, explain=True))
    per_k = scopes / 1000
    return {"scopes": scopes, "weeks": 40, "performance_train_s_per_1k": perf_train / per_k,
            "performance_score_s_per_1k": perf_score / per_k, "anomaly_train_s_per_1k": anom_train / per_k,
            "anomaly_score_s_per_1k": anom_score / per_k,
            "mase": {backtest.SHORT_NAMES[t]: r.mase for t, r in perf.backtest.targets.items()},
            "anomaly_precision": anom.metrics["precision"], "anomaly_recall": anom.metrics["recall"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, the demo size and 200 synthetic scopes")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    seeds = SEEDS[:1] if args.quick else SEEDS
    sizes = [bench_size(size, seeds) for size in (SIZES[:1] if args.quick else SIZES)]
    scale = [bench_scale(n) for n in ([200] if args.quick else [250, 1000])]

    print(f"{'size':22s} {'target':14s} {'MASE mean':>9s} {'worst':>6s} {'published':>10s} "
          f"{'coverage':>9s}   baseline: naive MASE 1.000")
    for size in sizes:
        label = f"{size['name']} {size['repos']}x{size['weeks']}"
        for target, t in size["targets"].items():
            print(f"{label:22s} {target:14s} {t['mase']:9.3f} {t['mase_worst']:6.3f} "
                  f"{t['published_seeds']:>4d} of {len(size['seeds'])} {t['interval_coverage']:8.0%}"
                  f"   (nominal {t['interval_level']:.0%})")
    print()
    print(f"{'size':22s} {'anomaly P':>9s} {'R':>5s}   baseline z>=3.5: {'P':>5s} {'R':>5s}   (worst seed)")
    for size in sizes:
        print(f"{size['name'] + ' ' + str(size['repos']) + 'x' + str(size['weeks']):22s} "
              f"{size['anomaly_precision']:9.2f} {size['anomaly_recall']:5.2f}"
              f"{'':18s}{size['baseline_z_precision']:5.2f} {size['baseline_z_recall']:5.2f}")
    print()
    print(f"{'data':28s} {'perf train/1k':>13s} {'score/1k':>9s} {'anom train/1k':>13s} {'score/1k':>9s}  (seconds)")
    for size in sizes:
        print(f"{'sandbox ' + size['name']:28s} {size['performance_train_s_per_1k']:13.1f} "
              f"{size['performance_score_s_per_1k']:9.1f} {size['anomaly_train_s_per_1k']:13.1f} "
              f"{size['anomaly_score_s_per_1k']:9.1f}")
    for row in scale:
        print(f"{'synthetic ' + str(row['scopes']) + ' scopes x 40 weeks':28s} {row['performance_train_s_per_1k']:13.1f} "
              f"{row['performance_score_s_per_1k']:9.1f} {row['anomaly_train_s_per_1k']:13.1f} "
              f"{row['anomaly_score_s_per_1k']:9.1f}")
    out = ROOT / "bench" / "results" / "ml.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"quick": args.quick, "python": platform.python_version(), "machine": platform.machine(),
                               "sizes": sizes, "synthetic": scale}, indent=2, default=float))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
