"""How fast the GitHub sandbox serves GraphQL pull-request pages.

Serves pages of 50 pull requests, each with 3 reviews and 5 commits nested (the ingestion
client's page shape), over real HTTP on 127.0.0.1, walking the repository by cursor.
Two configurations in this one process:

- cached (what the server does): each distinct query text is parsed, validated and compiled
  once;
- baseline (naive): the same server re-parses and re-validates every request (no cache).

The server's cost per page is the serving thread's CPU time (from the request log), so the
figure is "pages per second on one core" even on a busy machine; wall-clock pages per second
(client included) are reported beside it. Target: >= 50 pages/s on one core.

    .venv/bin/python bench/sandbox.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ghmetrics_dagster.github import queries  # noqa: E402
from ghmetrics_dagster.sandbox.graphql_api import github_schema  # noqa: E402
from ghmetrics_dagster.sandbox.sample_org import sample_organization  # noqa: E402
from ghmetrics_dagster.sandbox.server import run_sandbox  # noqa: E402

TARGET_PAGES_PER_SECOND = 50
PAGE_SIZE = 50

# The ingestion client's own page query; the page size is its $first variable.
QUERY = queries.PULL_REQUESTS


def measure(org, pages: int, cache_size: int) -> dict:
    with run_sandbox(org, query_cache_size=cache_size, graphql_limit=10**9) as sandbox:
        s = requests.Session()
        s.headers["Authorization"] = f"bearer {sandbox.tokens[0]}"
        repo = org.repositories[0]
        s.post(sandbox.graphql_url, json={"query": QUERY, "variables": {"owner": repo.owner, "name": repo.name,
                                                                         "first": PAGE_SIZE}})  # warm-up
        skip = len(sandbox.requests())
        after, nodes, started, cpu_started = None, 0, time.perf_counter(), time.process_time()
        for _ in range(pages):
            response = s.post(sandbox.graphql_url, json={"query": QUERY, "variables": {
                "owner": repo.owner, "name": repo.name, "first": PAGE_SIZE, "after": after}})
            body = response.json()
            connection = body["data"]["repository"]["pullRequests"]
            nodes += len(connection["nodes"])
            page_info = connection["pageInfo"]
            after = page_info["endCursor"] if page_info["hasNextPage"] else None
        wall = time.perf_counter() - started
        process_cpu = time.process_time() - cpu_started
        log = sandbox.requests()[skip:]
    assert all(e["status"] == 200 for e in log) and len(log) == pages
    cpu = [e["cpu_ms"] for e in log]
    return {
        "pages": pages,
        "prs_per_page": nodes / pages,
        "server_cpu_ms_per_page_median": statistics.median(cpu),
        "server_cpu_ms_per_page_mean": statistics.fmean(cpu),
        "server_pages_per_second_one_core": 1000 / statistics.fmean(cpu),
        "wall_pages_per_second_with_client": pages / wall,
        # Server and client share this process: pages per CPU-second of both together.
        "pages_per_cpu_second_with_client": pages / process_cpu,
        "response_kib": len(response.content) / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pages (a smoke run)")
    args = parser.parse_args()
    pages = 20 if args.quick else 150

    started = time.perf_counter()
    github_schema()
    schema_seconds = time.perf_counter() - started
    # 500 pull requests = 10 pages of 50; the walk wraps round to the first page.
    org = sample_organization(seed=1, repos=1, prs_per_repo=500, reviews_per_pr=3, commits_per_pr=5)
    cached = measure(org, pages, cache_size=256)
    naive = measure(org, max(10, pages // 3), cache_size=0)

    speedup = cached["server_pages_per_second_one_core"] / naive["server_pages_per_second_one_core"]
    meets = cached["server_pages_per_second_one_core"] >= TARGET_PAGES_PER_SECOND
    rows = [("cached (parse+validate once)", cached), ("baseline: parse+validate every request", naive)]
    print(f"GraphQL pages of {PAGE_SIZE} PRs (3 reviews, 5 commits each); schema load {schema_seconds:.2f} s")
    print(f"{'configuration':40} {'pages':>6} {'server ms/page':>15} {'pages/s 1 core':>15} "
          f"{'+client pages/cpu-s':>20} {'wall pages/s':>13}")
    for name, r in rows:
        print(f"{name:40} {r['pages']:>6} {r['server_cpu_ms_per_page_mean']:>15.2f} "
              f"{r['server_pages_per_second_one_core']:>15.1f} {r['pages_per_cpu_second_with_client']:>20.1f} "
              f"{r['wall_pages_per_second_with_client']:>13.1f}")
    print("server ms/page: CPU time of the serving thread; wall pages/s depends on the machine's load")
    print(f"speed-up over the baseline: {speedup:.2f}x; target >= {TARGET_PAGES_PER_SECOND} pages/s on one core: "
          f"{'met' if meets else 'NOT met'}")

    results = {
        "benchmark": "sandbox",
        "quick": args.quick,
        "python": platform.python_version(),
        "schema_load_seconds": schema_seconds,
        "page_size": PAGE_SIZE,
        "cached": cached,
        "baseline_no_query_cache": naive,
        "speedup_vs_baseline": speedup,
        "target_pages_per_second": TARGET_PAGES_PER_SECOND,
        "meets_target": meets,
    }
    out = ROOT / "bench" / "results" / "sandbox.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
