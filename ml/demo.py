"""What `ghmetrics demo` prints about the models: train on the sandbox's features, summarise."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ml import anomaly, data, registry, training
from ml.policy import TrainingPolicy


@dataclass
class DemoResult:
    performance: training.Outcome
    anomaly: training.Outcome
    anomalies_found: pd.DataFrame  # repository and user scope-weeks flagged by the champion
    text: str

    def __str__(self) -> str:
        return self.text


def train_and_summarise(features: pd.DataFrame, labels: pd.DataFrame | None = None, *,
                        store: training.Store, policy: TrainingPolicy | None = None,
                        run_id: str = "demo", max_rows: int = 12) -> DemoResult:
    """Trains both models if the policy says so, then summarises the champions.

    The summary gives what happened now, each champion's holdout metrics as logged in MLflow,
    and the anomalies the champion finds. With `labels` (the sandbox's injected anomalies) the
    anomaly model is trained and judged on them, the champion's precision and recall against
    them are printed, and each anomaly listed is marked injected or not.
    """
    policy = policy or TrainingPolicy()
    perf = training.train_performance(features, store, policy=policy, run_id=run_id)
    anom = training.train_anomaly(features, store, policy=policy, run_id=run_id, labels=labels)
    client = registry.client(store.tracking_uri)
    lines = ["Models (MLflow: " + store.tracking_uri + ")"]
    for outcome, headline in ((perf, _performance_line), (anom, _anomaly_line)):
        now = (f"trained version {outcome.version}, "
               f"{'promoted to champion' if outcome.promoted else 'kept as challenger'} ({outcome.promotion_reason})"
               if outcome.trained else f"not retrained ({outcome.decision.reason})")
        lines.append(f"  {outcome.model_name}: {now}")
        champ = registry.champion(client, outcome.model_name, registry.REQUIRED_TAGS[outcome.model_name])
        if champ is None:
            lines.append("    no champion yet")
            continue
        logged = client.get_run(champ.run_id).data.metrics if champ.run_id else {}
        source = (champ.tags or {}).get("label_source")
        judged = "rolling-origin backtest" if outcome.model_name == registry.PERFORMANCE else "holdout"
        lines.append(f"    champion version {champ.version}, {judged}: " + headline(logged)
                     + (f" (on {source} anomalies)" if source else ""))
        if outcome.live is not None and outcome.live.warning:
            lines.append(f"    warning: {outcome.live.warning}")
    found = pd.DataFrame()
    if anom.champion_version:
        model = registry.load(registry.ANOMALY, anom.champion_version)
        verdict = anomaly.score_frame(model, features, explain=True)
        found = verdict[verdict["is_anomaly"]].sort_values("anomaly_score", ascending=False)
        truth = anomaly.label_keys(labels) if labels is not None else set()
        repo_found = found[found["scope_type"] == "repository"]
        lines.append(f"Anomalies found: {len(repo_found)} repository-weeks, "
                     f"{int((found['scope_type'] == 'user').sum())} user-weeks (strongest first)")
        if not found.empty:
            lines.append(f"  z: the driving metric's robust z-score against the scope's own earlier weeks "
                         f"(|z| >= {model.z_threshold:g} flags; 4 is a week that comes about once in 16,000); "
                         "expected: the range its earlier weeks make usual")
        if labels is not None and not labels.empty:
            judged = anomaly.evaluate(model, features, labels)
            lines.append(f"  against the sandbox's injected anomalies: {_anomaly_line(judged)}")
        for row in repo_found.head(max_rows).itertuples():
            mark = ""
            if labels is not None:
                mark = "  [injected]" if (row.scope, row.week_start) in truth else "  [not injected]"
            lines.append(f"  {row.scope:20s} week of {row.week_start.date()}  {row.anomaly_metric:30s} "
                         f"z {row.anomaly_z:+5.1f}  {_value(row.anomaly_observed)} (expected "
                         f"{_value(row.anomaly_expected_low)}-{_value(row.anomaly_expected_high)}){mark}")
    return DemoResult(perf, anom, found, "\n".join(lines))


def describe_models_and_anomalies(database_url: str, store: training.Store,
                                  labels: pd.DataFrame | None = None) -> list[str]:
    """For `ghmetrics demo`: the summary above, from marts.ml_weekly_features, as lines."""
    return train_and_summarise(data.load_features(database_url), labels=labels, store=store).text.splitlines()


def _value(value: float) -> str:
    return "-" if value is None or value != value else f"{value:.3g}"


def _published(m: dict, short: str) -> str:
    if short == "lead_time" and "published_lead_time" not in m:
        return ""
    return " published" if m.get(f"published_{short}") == 1.0 else " withheld: no better than naive"


def _performance_line(m: dict) -> str:
    coverage = ""
    if "interval_coverage_lead_time" in m:
        coverage = (f"; {m.get('interval_level', 0.8):.0%} intervals covered lead time "
                    f"{m['interval_coverage_lead_time']:.0%}, overall score {m.get('interval_coverage_overall_score', float('nan')):.0%}")
    return (f"MASE {m.get('mase', float('nan')):.3f} (lead time {m.get('mase_lead_time', float('nan')):.3f}"
            f"{_published(m, 'lead_time')}, overall score {m.get('mase_overall_score', float('nan')):.3f}"
            f"{_published(m, 'overall_score')}){coverage}; MAE lead time "
            f"{m.get('mae_lead_time', float('nan')):.1f} h vs naive {m.get('mae_naive_lead_time', float('nan')):.1f} h, "
            f"overall score {m.get('mae_overall_score', float('nan')):.2f} vs naive "
            f"{m.get('mae_naive_overall_score', float('nan')):.2f} (of 10)")


def _anomaly_line(m: dict) -> str:
    return (f"precision {m.get('precision', float('nan')):.2f}, recall {m.get('recall', float('nan')):.2f}, "
            f"F1 {m.get('f1', float('nan')):.2f} over {int(m.get('judged_weeks', 0))} repository-weeks")
