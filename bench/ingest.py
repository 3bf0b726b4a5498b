"""Ingestion benchmark: ghmetrics' sync against a naive PyGithub baseline, same sandbox data.

    .venv/bin/python bench/ingest.py [--quick]

The sandbox serves a sample organisation (default 8 repositories x 250 PRs = 2,000 PRs with
3 reviews and 5 commits each) with 100 ms latency per request. Measured, in one process:

- ours, pull-request stream, full load (fresh database): requests, GraphQL points, REST
  rate-limit units, wall time;
- ours, all streams: full load, refresh with nothing changed, refresh after touching 1% of PRs;
- baseline: PyGithub listing PRs then reviews and commits per PR, sequentially (a naive
  client has no incremental mode: its refresh is another full load).

Rate-limit units = REST requests that count (not 304) + GraphQL points, cross-checked with the
sandbox's own per-token accounting. Prints a table and writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from ghmetrics_dagster import sync, warehouse  # noqa: E402
from ghmetrics_dagster.core.settings import Settings  # noqa: E402
from ghmetrics_dagster.github.client import GitHubClient  # noqa: E402
from ghmetrics_dagster.sandbox import generator, sample_org, server  # noqa: E402


def server_url() -> str:
    return os.environ.get("GHMETRICS_TEST_DATABASE_URL") or warehouse.database_url(Settings.from_env())


def sandbox_units(sb) -> int:
    """Rate-limit units the sandbox charged, summed over tokens."""
    total = 0
    for value in sb.stats().values():
        if isinstance(value, dict) and "rest_used" in value:
            total += value["rest_used"] + value["graphql_used"]
    return total


def measure_ours(sb, url, names, streams, label):
    client = GitHubClient(sb.rest_url, sb.graphql_url, list(sb.tokens), timeout=30)
    sb.reset_limits()
    charged_before = sandbox_units(sb)
    started = time.perf_counter()
    report = sync.sync_repositories(url, client, names, streams=streams)
    wall = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"{label}: sync failed: {report.metadata()['errors']}")
    stats = report.stats
    pr_units = sum(
        r.streams["pull_requests"].stats.units for r in report.repositories if "pull_requests" in r.streams
    )
    return {
        "label": label,
        "requests": stats.requests,
        "graphql_points": stats.graphql_points,
        "rest_units": stats.rest_units,
        "units": stats.units,
        "not_modified": stats.not_modified,
        "pull_request_stream_units": pr_units,
        "sandbox_units": sandbox_units(sb) - charged_before,
        "rows": sum(report.rows_upserted().values()),
        "pull_requests_upserted": report.rows_upserted()["pull_requests"],
        "wall_s": round(wall, 3),
    }


def measure_baseline(sb, names):
    from github import Auth, Github

    sb.reset_limits()
    charged_before = sandbox_units(sb)
    client = Github(auth=Auth.Token(sb.tokens[0]), base_url=sb.rest_url, per_page=100,
                    seconds_between_requests=None, retry=None, timeout=60)
    requests = 0
    counts = {"prs": 0, "reviews": 0, "commits": 0}
    started = time.perf_counter()
    for name in names:
        repo = client.get_repo(name)
        requests += 1
        for pr in repo.get_pulls(state="all"):
            counts["prs"] += 1
            counts["reviews"] += sum(1 for _ in pr.get_reviews())
            counts["commits"] += sum(1 for _ in pr.get_commits())
    wall = time.perf_counter() - started
    units = sandbox_units(sb) - charged_before
    return {"label": "baseline PyGithub, full load", "units": units, "requests": units, "graphql_points": 0,
            "rest_units": units, "wall_s": round(wall, 3), **counts}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run (2 x 40 PRs, 20 ms latency)")
    parser.add_argument("--latency-ms", type=int, default=None)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ingest.json"))
    args = parser.parse_args(argv)
    repos, prs_per_repo, latency = (2, 40, 20) if args.quick else (8, 250, 100)
    if args.latency_ms is not None:
        latency = args.latency_ms
    org = sample_org.sample_organization(seed=1, repos=repos, prs_per_repo=prs_per_repo, reviews_per_pr=3, commits_per_pr=5)
    names = [r.full_name for r in org.repositories]
    prs = sum(len(r.pull_requests) for r in org.repositories)
    base = server_url()
    rows = []
    with contextlib.ExitStack() as stack:
        sb = stack.enter_context(server.run_sandbox(org, latency_ms=latency, tokens=["ghp_" + "b" * 36, "ghp_" + "c" * 36]))
        pr_url = stack.enter_context(warehouse.scratch_database(base, prefix="ghm_bench"))
        ours_pr = measure_ours(sb, pr_url, names, ["repositories", "pull_requests"], "ours, PR stream, full load")
        rows.append(ours_pr)
        all_url = stack.enter_context(warehouse.scratch_database(base, prefix="ghm_bench"))
        full = measure_ours(sb, all_url, names, sync.ALL_STREAMS, "ours, all streams, full load")
        rows.append(full)
        unchanged = measure_ours(sb, all_url, names, sync.ALL_STREAMS, "ours, refresh, nothing changed")
        rows.append(unchanged)
        touched = generator.touch_pull_requests(org, 0.01, seed=1)
        changed = measure_ours(sb, all_url, names, sync.ALL_STREAMS, f"ours, refresh, {len(touched)} PRs (1%) changed")
        changed["touched"] = len(touched)
        rows.append(changed)
        baseline = measure_baseline(sb, names)
        rows.append(baseline)

    per_1000 = lambda units: round(units * 1000 / prs, 1)  # noqa: E731
    result = {
        "prs": prs,
        "repositories": repos,
        "latency_ms": latency,
        "units_per_1000_prs": per_1000(ours_pr["pull_request_stream_units"]),
        "units_per_1000_prs_incl_repository_lookup": per_1000(ours_pr["units"]),
        "baseline_units_per_1000_prs": per_1000(baseline["units"]),
        "wall_s": ours_pr["wall_s"],
        "baseline_wall_s": baseline["wall_s"],
        "speedup": round(baseline["wall_s"] / ours_pr["wall_s"], 1) if ours_pr["wall_s"] else math.inf,
        "full_load_all_streams_units": full["units"],
        "full_load_all_streams_wall_s": full["wall_s"],
        "refresh_unchanged_units": unchanged["units"],
        "refresh_unchanged_rest_units": unchanged["rest_units"],
        "refresh_unchanged_graphql_points": unchanged["graphql_points"],
        "refresh_unchanged_wall_s": unchanged["wall_s"],
        "refresh_1pct_units": changed["units"],
        "refresh_1pct_prs_touched": changed["touched"],
        "refresh_1pct_prs_fetched": changed["pull_requests_upserted"],
        "refresh_1pct_wall_s": changed["wall_s"],
        "targets": {"units_per_1000_prs_max": 25, "speedup_min": 20},
        "runs": rows,
    }
    header = f"{'run':44} {'requests':>9} {'GQL pts':>8} {'REST units':>10} {'units':>7} {'sandbox':>8} {'wall s':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['label']:44} {row['requests']:>9} {row['graphql_points']:>8} {row['rest_units']:>10} "
              f"{row['units']:>7} {row.get('sandbox_units', row['units']):>8} {row['wall_s']:>8.2f}")
    print()
    print(f"{prs} PRs, {latency} ms latency: {result['units_per_1000_prs']} units per 1,000 PRs "
          f"(baseline {result['baseline_units_per_1000_prs']}), speedup {result['speedup']}x, "
          f"unchanged refresh {result['refresh_unchanged_units']} units")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
