"""Benchmark: the dashboard under 200 concurrent signed-in clients.

    .venv/bin/python bench/web.py [--quick] [--users 1000] [--clients 200] [--seconds 60] [--workers 2]

Data: a sandbox organisation (30 repositories x 80 pull requests, 26 weeks) ingested by the
real GitHub client, 1,000 users each registered for 2 to 6 of its repositories, the marts built
by `dbt build` (1,000 user scopes in fct_dora_weekly), and a rule-based summary per user.
Server: `ghmetrics web --workers 2`, as deployed. Clients: an asyncio load generator in this
process (keep-alive connections, one per client), each client signed in as a different user
(its session cookie signed with the server's session secret, as the sign-in would set it),
requesting pages and API endpoints in a fixed mix for the duration. Baseline, in the same
process and with the same clients: `/healthz` (no database, no template) for 10 s: the floor
that the server and the load generator reach on this machine together.

Prints a table per endpoint and writes bench/results/web.json (users, clients, requests,
p50_ms, p95_ms, p99_ms, errors, throughput_rps, per_endpoint, baseline, targets).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from base64 import b64encode
from pathlib import Path

import itsdangerous
import requests

ROOT = Path(__file__).resolve().parent.parent
# bench/dbt.py would shadow the dbt package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from ghmetrics_dagster import sync, warehouse  # noqa: E402
from ghmetrics_dagster.core.settings import Settings  # noqa: E402
from ghmetrics_dagster.github.client import GitHubClient  # noqa: E402
from ghmetrics_dagster.sandbox import generator  # noqa: E402
from ghmetrics_dagster.sandbox.server import run_sandbox  # noqa: E402
from ghmetrics_dagster.summaries import rules  # noqa: E402
from ghmetrics_dagster.summaries.aggregates import load_summary_input  # noqa: E402
from ghmetrics_dagster.warehouse import app_data, dbt_env  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SESSION_SECRET = "bench-session-secret-" + "x" * 32
# (name, path template, weight): what a dashboard visit asks for, pages and the JSON behind them.
MIX = [
    ("page /", "/", 25),
    ("page /repos/{repo}", "/repos/{repo}", 15),
    ("page /team", "/team", 10),
    ("api /api/metrics", "/api/metrics", 15),
    ("api /api/repos/{repo}", "/api/repos/{repo}", 10),
    ("api /api/repos", "/api/repos", 10),
    ("api /api/status", "/api/status", 15),
]
TARGETS = {"api_p95_ms": 500, "page_p95_ms": 2000, "errors": 0}


def say(text: str) -> None:
    print(text, flush=True)


def build_data(url: str, org, users: int, seed: int, sandbox) -> dict[str, list[str]]:
    rng = random.Random(seed)
    names = [repo.full_name for repo in org.repositories]
    scopes = {f"user{n:04d}": sorted(rng.sample(names, rng.randint(2, 6))) for n in range(users)}
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        for login, repos in scopes.items():
            app_data.save_user(cur, login, None, None)
            app_data.add_user_repositories(cur, login, repos)
    started = time.monotonic()
    client = GitHubClient(sandbox.rest_url, sandbox.graphql_url, list(sandbox.tokens))
    report = sync.sync_repositories(url, client, names)
    assert report.ok, report.metadata()
    say(f"  ingested {len(names)} repositories in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    env = {**os.environ, **dbt_env.dbt_env(url, threads=2), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    target = Path(tempfile.mkdtemp(prefix="ghm-bench-web-dbt-"))
    for args in (["run", "--selector", "views"], ["build", "--selector", "wave"]):
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("dbt")), *args, "--project-dir", str(dbt_env.DBT_PROJECT_DIR),
             "--profiles-dir", str(dbt_env.DBT_PROJECT_DIR), "--target-path", str(target)],
            env={**env, "DBT_LOG_PATH": str(target / "logs")}, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"dbt {' '.join(args)} failed:\n{proc.stdout[-3000:]}")
    say(f"  built the marts for {users} users in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        for login in scopes:
            text = rules.write_summary(load_summary_input(conn, login))
            app_data.save_summary(cur, {"login": login, "provider": "rules", "text": text, "grounded": True})
    say(f"  wrote {users} summaries in {time.monotonic() - started:.0f} s")
    return scopes


def session_cookie(login: str) -> str:
    """The cookie a sign-in sets (Starlette's SessionMiddleware format), for this user."""
    data = b64encode(json.dumps({"login": login, "csrf": "bench"}).encode())
    return itsdangerous.TimestampSigner(SESSION_SECRET).sign(data).decode()


async def fetch(reader, writer, host: str, path: str, cookie: str) -> int:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: ghmetrics_session={cookie}\r\n"
                 "Accept: */*\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def load(port: int, mix, scopes: dict[str, list[str]], clients: int, seconds: float, seed: int) -> dict:
    logins = list(scopes)
    samples: dict[str, list[float]] = {name: [] for name, _, _ in mix}
    errors: dict[str, int] = {name: 0 for name, _, _ in mix}
    names, weights = [m[0] for m in mix], [m[2] for m in mix]
    paths = {m[0]: m[1] for m in mix}
    deadline = time.monotonic() + seconds

    async def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        login = logins[index % len(logins)]
        cookie = session_cookie(login)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                name = rng.choices(names, weights)[0]
                path = paths[name].format(repo=rng.choice(scopes[login]))
                started = time.perf_counter()
                try:
                    status = await fetch(reader, writer, f"127.0.0.1:{port}", path, cookie)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    errors[name] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                samples[name].append((time.perf_counter() - started) * 1000)
                if status != 200:
                    errors[name] += 1
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.monotonic() - started
    return {"elapsed_s": elapsed, "samples": samples, "errors": errors}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def summarise(values: list[float], errors: int, elapsed: float) -> dict:
    return {"requests": len(values), "throughput_rps": round(len(values) / elapsed, 1),
            "p50_ms": _round(percentile(values, 50)), "p95_ms": _round(percentile(values, 95)),
            "p99_ms": _round(percentile(values, 99)), "errors": errors}


def _round(value):
    return None if value is None else round(value, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repos", type=int, default=30)
    parser.add_argument("--prs", type=int, default=80)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="100 users, 50 clients, 15 s")
    args = parser.parse_args()
    if args.quick:
        args.users, args.clients, args.seconds, args.repos, args.prs = 100, 50, 15, 8, 40

    server_url = os.environ.get("GHMETRICS_TEST_DATABASE_URL") or warehouse.database_url(Settings.from_env())
    org = generator.generate(args.seed, repos=args.repos, prs_per_repo=args.prs, weeks=26, users=14)
    home = Path(tempfile.mkdtemp(prefix="ghm-bench-web-"))
    with warehouse.scratch_database(server_url, prefix="ghm_bench_web") as url, run_sandbox(org=org) as sandbox:
        warehouse.migrate(url)
        say(f"data: {args.repos} repositories x {args.prs} pull requests, {args.users} users")
        scopes = build_data(url, org, args.users, args.seed, sandbox)
        port = 18000 + os.getpid() % 1000
        env = {**os.environ, "GHMETRICS_HOME": str(home), "GHMETRICS_DATABASE_URL": url,
               "GHMETRICS_OAUTH_CLIENT_ID": "bench", "GHMETRICS_OAUTH_CLIENT_SECRET": "bench-secret",
               "GHMETRICS_WEB_SESSION_SECRET": SESSION_SECRET}
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("ghmetrics")), "web", "--port", str(port), "--workers", str(args.workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=open(home / "web.log", "w"),
        )
        try:
            for _ in range(100):
                try:
                    if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.3)
            else:
                raise SystemExit(f"the dashboard did not start; see {home / 'web.log'}")
            say(f"server: ghmetrics web --workers {args.workers}; load: {args.clients} clients")
            # Warm-up: every worker opens its connections and loads its templates.
            asyncio.run(load(port, MIX, scopes, args.clients, 3, args.seed + 1))
            say("baseline: /healthz for 10 s ...")
            base = asyncio.run(load(port, [("baseline /healthz", "/healthz", 1)], scopes, args.clients, 10, args.seed))
            say(f"mixed load for {args.seconds:g} s ...")
            run = asyncio.run(load(port, MIX, scopes, args.clients, args.seconds, args.seed))
        finally:
            server.terminate()
            server.wait(timeout=30)

    per_endpoint = {name: summarise(run["samples"][name], run["errors"][name], run["elapsed_s"]) for name, _, _ in MIX}
    every = [v for values in run["samples"].values() for v in values]
    pages = [v for name, values in run["samples"].items() if name.startswith("page") for v in values]
    apis = [v for name, values in run["samples"].items() if name.startswith("api") for v in values]
    total = summarise(every, sum(run["errors"].values()), run["elapsed_s"])
    baseline = summarise(base["samples"]["baseline /healthz"], base["errors"]["baseline /healthz"], base["elapsed_s"])
    result = {
        "users": args.users, "clients": args.clients, "seconds": args.seconds, "workers": args.workers,
        **total,
        "page_p95_ms": _round(percentile(pages, 95)), "api_p95_ms": _round(percentile(apis, 95)),
        "per_endpoint": per_endpoint, "baseline": baseline,
    }
    result["targets"] = {
        "api_p95_under_500_ms": result["api_p95_ms"] is not None and result["api_p95_ms"] < TARGETS["api_p95_ms"],
        "page_p95_under_2_s": result["page_p95_ms"] is not None and result["page_p95_ms"] < TARGETS["page_p95_ms"],
        "no_errors": result["errors"] == 0,
    }

    say("")
    say(f"{'endpoint':<24} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}")
    rows = [*per_endpoint.items(), ("all (mixed)", total), ("baseline /healthz", baseline)]
    for name, row in rows:
        say(f"{name:<24} {row['requests']:>8} {row['throughput_rps']:>7} {row['p50_ms']!s:>8} {row['p95_ms']!s:>8} "
            f"{row['p99_ms']!s:>8} {row['errors']:>6}")
    say(f"pages p95 {result['page_p95_ms']} ms (target < 2000), API p95 {result['api_p95_ms']} ms (target < 500), "
        f"errors {result['errors']} (target 0)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "web.json").write_text(json.dumps(result, indent=2) + "\n")
    say(f"wrote {RESULTS / 'web.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
