"""Benchmark: grounded summaries for many users against fake providers with injected faults.

    .venv/bin/python bench/summaries.py [--quick] [--users N] [--fault-rate 0.05]

Runs, in one process and on a fresh temporary database:
  baseline  the rule-based writer for every user (no provider, no database),
  cold      the router with an empty cache (fake OpenAI and Anthropic over HTTP, each failing
            --fault-rate of calls with 429, 500, 529/503 or a timeout),
  warm      the same requests again with a new router: every answer should come from the cache.
Every summary is written to app.summaries. Prints a table and writes bench/results/summaries.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_llm_servers import FakeAnthropic, FakeOpenAI  # noqa: E402

from ghmetrics_dagster import warehouse  # noqa: E402
from ghmetrics_dagster.core.settings import Settings  # noqa: E402
from ghmetrics_dagster.summaries import rules  # noqa: E402
from ghmetrics_dagster.summaries.aggregates import Anomaly, RepositoryAggregate, SummaryInput  # noqa: E402
from ghmetrics_dagster.summaries.budget import Budget, PostgresLedger  # noqa: E402
from ghmetrics_dagster.summaries.cache import PostgresCache  # noqa: E402
from ghmetrics_dagster.summaries.providers import AnthropicProvider, OpenAIProvider  # noqa: E402
from ghmetrics_dagster.summaries.router import Router, RouterConfig  # noqa: E402
from ghmetrics_dagster.summaries.service import save_summary  # noqa: E402

BENCHMARKS = {"overall": 4.3, "throughput": 6.0, "stability": 7.9, "lead_time": 5.5, "deployment_frequency": 5.9,
              "recovery": 6.6, "change_fail": 7.4, "rework": 7.8}


def _quick_check(rng: random.Random) -> tuple[dict, dict]:
    """DORA's five metrics over 12 weeks with their bands and scores (docs/dora.md)."""
    bands = {f: rng.randint(2, 6) for f in ("lead_time_band", "deployment_frequency_band", "recovery_band")}
    cfr, rework = round(rng.random() * 0.3, 4), round(rng.random() * 0.2, 4)
    scores = {
        "lead_time_score": (bands["lead_time_band"] - 1) * 2,
        "deployment_frequency_score": (bands["deployment_frequency_band"] - 1) * 2,
        "recovery_score": (bands["recovery_band"] - 1) * 2,
        "change_fail_score": round(10 - 10 * cfr, 4),
        "rework_score": round(10 - 10 * rework, 4),
    }
    scores["throughput_score"] = round(sum(list(scores.values())[:3]) / 3, 4)
    scores["stability_score"] = round((scores["change_fail_score"] + scores["rework_score"]) / 2, 4)
    scores["overall_score"] = round(sum(list(scores.values())[:5]) / 5, 4)
    values = {
        "lead_time_hours_12w": round(rng.uniform(2, 200), 3),
        "deployment_days_per_week_12w": round(rng.uniform(0, 5), 3),
        "deployments_per_deployment_day_12w": round(rng.uniform(1, 3), 3),
        "recovery_hours_12w": round(rng.uniform(0.5, 72), 2),
        "change_failure_rate_12w": cfr,
        "rework_rate_12w": rework,
        **scores,
        **{f"{k}_vs_benchmark": round(scores[f"{k}_score"] - BENCHMARKS[k], 4)
           for k in ("overall", "throughput", "stability")},
    }
    return values, bands


def synthetic_users(count: int, seed: int = 7) -> list[SummaryInput]:
    rng = random.Random(seed)
    users = []
    for n in range(count):
        dora, bands = _quick_check(rng)
        previous = dict(bands)
        if rng.random() < 0.1:
            previous["lead_time_band"] = rng.randint(2, 6)
        deployments = rng.randint(0, 12)
        users.append(
            SummaryInput(
                login=f"dev-{n:04d}",
                week_start="2026-05-04",
                latest={
                    "deployments": deployments,
                    "deployment_days": min(deployments, 5),
                    "median_lead_time_hours": round(rng.uniform(2, 200), 3),
                    "change_failure_rate": round(rng.random() * 0.3, 4) if deployments else None,
                    "incidents": rng.randint(0, 2),
                    "median_time_to_restore_hours": round(rng.uniform(0.2, 48), 2) if rng.random() < 0.5 else None,
                    "merged_prs": rng.randint(0, 25),
                    "review_coverage": round(rng.uniform(0.4, 1), 4),
                    **dora,
                },
                trailing={
                    "deployments": deployments * 12 + rng.randint(0, 9),
                    "median_weekly_deployment_days": rng.randint(0, 5),
                    "median_lead_time_hours": round(rng.uniform(2, 200), 3),
                    "change_failure_rate": round(rng.random() * 0.3, 4),
                    "incidents": rng.randint(0, 8),
                    "merged_prs": rng.randint(10, 200),
                    "review_coverage": round(rng.uniform(0.4, 1), 4),
                },
                bands=bands,
                previous_bands=previous,
                benchmarks=dict(BENCHMARKS),
                benchmark_segment="All industries",
                cycle_medians_12w={s: round(rng.uniform(0.5, 72), 2) for s in ("coding", "pickup", "review", "deploy")},
                repositories=[
                    RepositoryAggregate(f"org{n % 17}/service-{rng.randint(1, 300)}", rng.randint(0, 60), round(rng.uniform(1, 100), 1), round(rng.uniform(0, 10), 1))
                    for _ in range(rng.randint(1, 3))
                ],
                anomalies=[Anomaly("2026-04-27", "median_lead_time_hours", round(rng.uniform(0.6, 1), 3))]
                if rng.random() < 0.1
                else [],
                predictions={"predicted_lead_time_hours": round(rng.uniform(2, 200), 2),
                             "predicted_overall_score": round(rng.uniform(0, 10), 2)},
            )
        )
    return users


def run(router: Router, users: list[SummaryInput], url: str, run_id: str) -> dict:
    started = time.perf_counter()
    results = []
    conn = psycopg2.connect(url)
    try:
        for data in users:
            result = router.summarise(data)
            with conn:
                save_summary(conn, result, run_id)
            results.append(result)
    finally:
        conn.close()
    wall = time.perf_counter() - started
    providers: dict[str, int] = {}
    for r in results:
        providers[r.provider] = providers.get(r.provider, 0) + 1
    return {
        "wall_s": wall,
        "cost_usd": sum(r.cost_usd for r in results),
        "grounded_share": sum(r.grounded for r in results) / len(results),
        "cache_hit_share": sum(r.cache_hit for r in results) / len(results),
        "failed_calls": sum(a.outcome == "failed" for r in results for a in r.attempts),
        "rejected_answers": sum(a.outcome == "rejected" for r in results for a in r.attempts),
        "providers": providers,
        "strong_tier": sum(r.tier == "strong" for r in results),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 users instead of 1,000")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=0.5, help="provider timeout in seconds")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "summaries.json"))
    args = parser.parse_args()
    count = args.users or (100 if args.quick else 1000)

    server = os.environ.get("GHMETRICS_TEST_DATABASE_URL") or warehouse.database_url(Settings.from_env())
    with warehouse.scratch_database(server, prefix="ghm_bench") as url:
        users = synthetic_users(count)

        started = time.perf_counter()
        baseline_text = [rules.write_summary(u) for u in users]
        baseline_wall = time.perf_counter() - started
        assert len(baseline_text) == count

        with FakeOpenAI(fault_rate=args.fault_rate, seed=1, hang_s=args.timeout * 3) as fo, FakeAnthropic(
            fault_rate=args.fault_rate, seed=2, hang_s=args.timeout * 3
        ) as fa:

            def router(run_id: str) -> Router:
                providers = {
                    "openai": OpenAIProvider(fo.api_key, fo.base_url, timeout=args.timeout, strict=True),
                    "anthropic": AnthropicProvider(fa.api_key, fa.base_url, timeout=args.timeout, strict=True),
                }
                # A breaker that opens after 3 consecutive failures would rarely trip at 5%.
                return Router(
                    providers,
                    RouterConfig(backoff_base_s=0.2),
                    Budget(50.0, 500.0, PostgresLedger(url), run_id),
                    PostgresCache(url),
                )

            cold = run(router("bench-cold"), users, url, "bench-cold")
            calls_after_cold = len(fo.requests) + len(fa.requests)
            warm = run(router("bench-warm"), users, url, "bench-warm")
            warm_calls = len(fo.requests) + len(fa.requests) - calls_after_cold

    rows = [
        ("baseline: rule-based only", baseline_wall, 0.0, 1.0, 0.0, "-"),
        ("cold: router, empty cache", cold["wall_s"], cold["cost_usd"], cold["grounded_share"], cold["cache_hit_share"], cold["providers"]),
        ("warm: router, same requests", warm["wall_s"], warm["cost_usd"], warm["grounded_share"], warm["cache_hit_share"], warm["providers"]),
    ]
    print(f"{count} users, fault rate {args.fault_rate:.0%} per provider call, timeout {args.timeout}s")
    print(f"{'run':30} {'wall s':>8} {'cost USD':>10} {'grounded':>9} {'cache hit':>10}  providers")
    for label, wall, cost, grounded, hits, providers in rows:
        print(f"{label:30} {wall:8.2f} {cost:10.6f} {grounded:9.1%} {hits:10.1%}  {providers}")
    print(
        f"cold: {cold['failed_calls']} failed provider calls (faults) failed over, "
        f"{cold['rejected_answers']} ungrounded answers rejected, {cold['strong_tier']} strong-tier summaries; "
        f"warm: {warm_calls} provider calls"
    )

    grounded_share = min(cold["grounded_share"], warm["grounded_share"])
    report = {
        "users": count,
        "grounded_share": grounded_share,
        "cold_cost_usd": round(cold["cost_usd"], 6),
        "warm_cost_usd": round(warm["cost_usd"], 6),
        "warm_wall_s": round(warm["wall_s"], 3),
        "cold_wall_s": round(cold["wall_s"], 3),
        "baseline_rules_wall_s": round(baseline_wall, 3),
        "warm_cache_hit_share": warm["cache_hit_share"],
        "warm_provider_calls": warm_calls,
        "cold_failed_calls": cold["failed_calls"],
        "cold_providers": cold["providers"],
        "fault_rate": args.fault_rate,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if grounded_share == 1.0 and report["warm_cost_usd"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
