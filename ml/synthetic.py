"""Synthetic ml_weekly_features frames, for benchmarks and unit tests of the models.

Not a substitute for the sandbox (which derives the marts from GitHub-shaped events); this only
produces plausible weekly series quickly at any scale, with known injected anomalies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.features import METRIC_COLUMNS

# DORA 2025 Quick Check means, all industries, on the score scale (docs/dora.md).
_BENCHMARK = {"overall": 4.3, "throughput": 6.0, "stability": 7.9}


def _hours_band(hours: float) -> int | None:
    if hours is None or np.isnan(hours):
        return None
    for lower, band in ((4380.0, 1), (720.0, 2), (168.0, 3), (24.0, 4), (1.0, 5)):
        if hours >= lower:
            return band
    return 6


def _mean(values) -> float:
    present = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(present)) if present else np.nan


def _dora_columns(window: list[dict]) -> dict:
    """docs/dora.md's 12-week values, bands, scores and benchmark deltas of the window's rows
    (medians of weekly medians where the contract pools items: close enough for benchmarks)."""
    deploys = sum(r["deployments"] for r in window)
    days = sum(r["deployment_days"] for r in window)
    failed = sum(r["failed_changes"] for r in window)
    rework = sum(r["rework_deployments"] for r in window)
    leads = [r["median_lead_time_hours"] for r in window if not np.isnan(r["median_lead_time_hours"])]
    recoveries = [r["median_recovery_hours"] for r in window if not np.isnan(r["median_recovery_hours"])]
    d, m = days / len(window), (deploys - failed) / days if days else np.nan
    lead = float(np.median(leads)) if leads else np.nan
    recovery = float(np.median(recoveries)) if recoveries else np.nan
    cfr = failed / deploys if deploys else np.nan
    rework_rate = rework / deploys if deploys else np.nan
    frequency = 6 if d >= 5 and m >= 2 else 5 if d >= 5 else 4 if d >= 1 else 3 if d >= 12 / 52 else 2 if days else 1
    lead_band, recovery_band = _hours_band(lead), _hours_band(recovery)
    scores = {
        "lead_time_score": np.nan if lead_band is None else (lead_band - 1) * 2.0,
        "deployment_frequency_score": (frequency - 1) * 2.0,
        "recovery_score": np.nan if recovery_band is None else (recovery_band - 1) * 2.0,
        "change_fail_score": 10 - 10 * cfr,
        "rework_score": 10 - 10 * rework_rate,
    }
    scores["throughput_score"] = _mean([scores["lead_time_score"], scores["deployment_frequency_score"],
                                        scores["recovery_score"]])
    scores["stability_score"] = _mean([scores["change_fail_score"], scores["rework_score"]])
    scores["overall_score"] = _mean([scores[k] for k in list(scores)[:5]])
    return {
        "lead_time_hours_12w": lead, "deployment_days_per_week_12w": d, "deployments_per_deployment_day_12w": m,
        "change_failure_rate_12w": cfr, "recovery_hours_12w": recovery, "rework_rate_12w": rework_rate,
        "lead_time_band": np.nan if lead_band is None else float(lead_band),
        "deployment_frequency_band": float(frequency),
        "recovery_band": np.nan if recovery_band is None else float(recovery_band),
        **scores,
        **{f"{name}_vs_benchmark": scores[f"{name}_score"] - mean for name, mean in _BENCHMARK.items()},
    }


def weekly_features(
    scopes: int = 20,
    weeks: int = 40,
    seed: int = 0,
    anomaly_rate: float = 0.1,
    first_week: str = "2026-01-05",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns (features, anomalies) for `scopes` repositories over `weeks` weeks.

    Each scope has its own level per metric and an AR(1) drift; anomalies multiply one metric of
    one scope-week by a factor in [2.5, 5] with probability `anomaly_rate` per scope-week.
    """
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(first_week)
    rows, labels = [], []
    for s in range(scopes):
        name = f"synthetic/repo-{s:05d}"
        level_lead = rng.uniform(8, 200)
        level_prs = rng.uniform(2, 25)
        level_deploys = rng.uniform(1, 10)
        coverage = rng.uniform(0.5, 1.0)
        drift = 0.0
        history = []
        for w in range(weeks):
            drift = 0.7 * drift + rng.normal(0, 0.1)
            prs = rng.poisson(level_prs * np.exp(drift))
            deploys = rng.poisson(level_deploys)
            failed = rng.binomial(deploys, 0.08) if deploys else 0
            rework = rng.binomial(deploys - failed, 0.05) if deploys > failed else 0
            lead = level_lead * np.exp(drift + rng.normal(0, 0.25)) if prs else np.nan
            row = {
                "deployments": float(deploys),
                "deployment_days": float(min(deploys, 5)),
                "median_lead_time_hours": lead,
                "change_failure_rate": failed / deploys if deploys else np.nan,
                "failed_changes": float(failed),
                "incidents": float(rng.poisson(0.3)),
                "median_time_to_restore_hours": float(rng.lognormal(1.5, 0.5)),
                "merged_prs": float(prs),
                "review_coverage": float(np.clip(coverage + rng.normal(0, 0.05), 0, 1)) if prs else np.nan,
                "median_pr_size": float(rng.lognormal(4.5, 0.2)),
                "p90_pr_size": float(rng.lognormal(6.0, 0.2)),
                "median_coding_hours": float(rng.lognormal(2.5, 0.25)),
                "median_pickup_hours": float(rng.lognormal(1.5, 0.25)),
                "median_review_hours": float(rng.lognormal(2.0, 0.25)),
                "median_deploy_hours": float(rng.lognormal(1.0, 0.25)),
                "rework_deployments": float(rework),
                "rework_rate": rework / deploys if deploys else np.nan,
                "recovered_deployments": float(failed),
                "median_recovery_hours": float(rng.lognormal(2.0, 0.8)) if failed else np.nan,
            }
            if w >= 8 and rng.random() < anomaly_rate:
                metric = rng.choice(["median_lead_time_hours", "merged_prs", "median_pr_size", "median_review_hours"])
                factor = float(rng.uniform(2.5, 5))
                if not np.isnan(row[metric]) and row[metric] > 0:
                    row[metric] *= factor
                    labels.append(
                        {"scope_type": "repository", "scope": name, "week_start": start + pd.Timedelta(weeks=w),
                         "metric": metric, "factor": factor}
                    )
            history.append(row)
            window = history[-12:]
            dd = np.median([r["deployment_days"] for r in window])
            leads = [r["median_lead_time_hours"] for r in window if not np.isnan(r["median_lead_time_hours"])]
            lead_points = 100 if leads and np.median(leads) < 24 else 75 if leads and np.median(leads) < 168 else 50
            freq_points = 100 if dd >= 5 else 75 if dd >= 1 else 50
            cov = np.nanmean([r["review_coverage"] for r in window])
            row["review_coverage_12w"] = float(cov)
            row["legacy_performance_score"] = float(
                0.25 * freq_points + 0.25 * lead_points + 0.2 * 75 + 0.15 * 75 + 0.15 * 100 * cov)
            row.update(_dora_columns(window))
            deploys26 = sum(r["deployments"] for r in history[-26:])
            row["rework_rate_26w"] = (sum(r["rework_deployments"] for r in history[-26:]) / deploys26
                                      if deploys26 else np.nan)
            rows.append({"scope_type": "repository", "scope": name, "week_start": start + pd.Timedelta(weeks=w), **row})
    frame = pd.DataFrame(rows).reindex(columns=["scope_type", "scope", "week_start", *METRIC_COLUMNS])
    anomalies = pd.DataFrame(labels, columns=["scope_type", "scope", "week_start", "metric", "factor"])
    return frame, anomalies
