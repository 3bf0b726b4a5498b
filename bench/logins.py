"""Benchmark: a login storm through the real run queue and daemon.

    .venv/bin/python bench/logins.py [--quick] [--users 100] [--repos 20] [--prs 300]

A sandbox organisation (20 repositories x 300 pull requests), 100 people each registered with
2 to 6 overlapping repositories, the repository's dagster.yaml on a scratch Dagster database,
and `dagster-daemon` serving the login sensor. All 100 people log in within 10 seconds; the
benchmark waits until each has a summary generated after their login, then measures one login
on the quiet system. The baseline, in the same process: syncing each repository exactly once
(a fresh client on a fresh database), for the GitHub units a perfect de-duplication would spend.

Prints a table and writes bench/results/logins.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/dbt.py would shadow the dbt package that dagster-dbt imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from ghmetrics_dagster import warehouse  # noqa: E402
from ghmetrics_dagster.cli import dagster_home  # noqa: E402
from ghmetrics_dagster.core.settings import Settings  # noqa: E402
from ghmetrics_dagster.refresh import waves  # noqa: E402
from ghmetrics_dagster.sandbox import generator, truth  # noqa: E402
from ghmetrics_dagster.sandbox.server import run_sandbox  # noqa: E402
from ghmetrics_dagster.warehouse import app_data  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DBT_STEP = "ghmetrics_dbt_models"


def say(text: str) -> None:
    print(text, flush=True)


def assign_repositories(org, users: int, seed: int) -> dict[str, list[str]]:
    """`users` people, each registered with 2 to 6 of the organisation's repositories."""
    rng = random.Random(seed)
    names = [repo.full_name for repo in org.repositories]
    humans = sorted(login for login, user in org.users.items() if not user.is_bot)
    logins = (humans + [f"dev-{n:03d}" for n in range(users)])[:users]
    return {login: sorted(rng.sample(names, rng.randint(2, min(6, len(names))))) for login in logins}


def register(url: str, org) -> None:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        for login, repos in org.memberships.items():
            user = org.users.get(login)
            app_data.save_user(cur, login, user.name if user else login, None)
            app_data.add_user_repositories(cur, login, repos)


def units(sandbox) -> int:
    return sum(s["rest_used"] + s["graphql_used"] for s in sandbox.stats().values())


def units_syncing_each_repository_once(org, server_url: str) -> int:
    """The baseline: every repository synced once, by one client, into a fresh database."""
    from ghmetrics_dagster.github.client import GitHubClient
    from ghmetrics_dagster.sync import sync_repositories

    with run_sandbox(org=org) as sandbox, warehouse.scratch_database(server_url, prefix="ghm_bench") as url:
        client = GitHubClient(sandbox.rest_url, sandbox.graphql_url, [sandbox.tokens[0]])
        report = sync_repositories(url, client, [repo.full_name for repo in org.repositories])
        assert report.ok, report.summary()
        return units(sandbox)


def fresh_since(url: str, logins_at: dict[str, dt.datetime]) -> dict[str, dt.datetime]:
    """For each user, when their first summary generated after their login was written."""
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        done: dict[str, dt.datetime] = {}
        for login, at in app_data.summary_times(cur):
            if login in logins_at and login not in done and at >= logins_at[login]:
                done[login] = at
        return done


def log_in(url: str, login: str) -> dt.datetime:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        return app_data.record_login(cur, login)[1]


def wait_fresh(url: str, logins_at: dict[str, dt.datetime], timeout_s: float, daemon) -> dict[str, dt.datetime]:
    deadline = time.monotonic() + timeout_s
    last = -1
    while time.monotonic() < deadline:
        done = fresh_since(url, logins_at)
        if len(done) != last:
            say(f"  {len(done):>3}/{len(logins_at)} users fresh")
            last = len(done)
        if len(done) == len(logins_at):
            return done
        if daemon.poll() is not None:
            raise SystemExit("the Dagster daemon stopped; see its log")
        time.sleep(1)
    return fresh_since(url, logins_at)


def marts_equal_truth(url: str, org) -> bool:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_dbt_truth import MART_KEYS, compare_mart, read_marts

    expected, actual = truth.compute(org), read_marts(url)
    problems = [line for name in MART_KEYS for line in compare_mart(name, expected[name], actual[name])]
    for line in problems[:5]:
        say(f"  truth differs: {line}")
    return not problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--repos", type=int, default=20)
    parser.add_argument("--prs", type=int, default=300)
    parser.add_argument("--burst-seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20 users, 6 repositories x 60 pull requests")
    args = parser.parse_args()
    if args.quick:
        args.users, args.repos, args.prs = 20, 6, 60

    server = os.environ.get("GHMETRICS_TEST_DATABASE_URL") or warehouse.database_url(Settings.from_env())
    org = generator.generate(args.seed, repos=args.repos, prs_per_repo=args.prs, weeks=26, users=14)
    org.memberships = assign_repositories(org, args.users, args.seed)
    say(f"organisation: {args.repos} repositories x {args.prs} pull requests, {len(org.memberships)} users")
    baseline_units = units_syncing_each_repository_once(org, server)
    say(f"baseline: syncing each repository once costs {baseline_units} rate-limit units")

    home = Path(tempfile.mkdtemp(prefix="ghm-bench-logins-"))
    with warehouse.scratch_database(server, prefix="ghm_bench") as url, \
            warehouse.scratch_database(server, prefix="ghm_bench_dagster") as dagster_url, \
            run_sandbox(org=org) as sandbox:
        (home / "dagster").mkdir()
        dagster_home.write_instance(home / "dagster")
        os.environ.update({
            "GHMETRICS_HOME": str(home),
            "GHMETRICS_DATABASE_URL": url,
            "DAGSTER_HOME": str(home / "dagster"),
            "GHMETRICS_DAGSTER_PG_URL": warehouse.sqlalchemy_url(dagster_url),
            "GHMETRICS_GITHUB_API_URL": sandbox.rest_url,
            "GHMETRICS_GITHUB_GRAPHQL_URL": sandbox.graphql_url,
            "GITHUB_TOKEN": sandbox.tokens[0],
            "GHMETRICS_REFRESH_TTL_MINUTES": "0",  # the quiet login after the storm is refreshed too
        })
        from ghmetrics_dagster.cli import pipeline

        register(url, org)
        instance = pipeline.prepare_instance(Settings.from_env())
        log = open(home / "daemon.log", "w")
        daemon = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            while not pipeline.daemon_is_running(instance):
                time.sleep(1)
            start_units = units(sandbox)
            say(f"storm: {len(org.memberships)} logins within {args.burst_seconds:g} s")
            logins = list(org.memberships)
            random.Random(args.seed).shuffle(logins)
            started = time.monotonic()
            logins_at = {}
            for n, login in enumerate(logins):
                time.sleep(max(0.0, started + n * args.burst_seconds / len(logins) - time.monotonic()))
                logins_at[login] = log_in(url, login)
            done = wait_fresh(url, logins_at, timeout_s=1200, daemon=daemon)
            first_login = min(logins_at.values())
            all_fresh_s = (max(done.values()) - first_login).total_seconds() if len(done) == len(logins) else None
            storm_units = units(sandbox) - start_units
            latencies = sorted((done[u] - logins_at[u]).total_seconds() for u in done)

            import dagster as dg

            from ghmetrics_dagster.defs.users import IN_PROGRESS

            while instance.get_runs(filters=dg.RunsFilter(job_name=waves.JOB_NAME, statuses=IN_PROGRESS)):
                time.sleep(1)  # the last wave is writing its last events
            runs = instance.get_runs(filters=dg.RunsFilter(job_name=waves.JOB_NAME))
            for run in reversed(runs):
                steps = ", ".join(f"{s.step_key} {s.end_time - s.start_time:.1f}s"
                                  for s in instance.get_run_step_stats(run.run_id) if s.end_time and s.start_time)
                say(f"  run {run.run_id[:8]} {run.status.value.lower()}: {steps}")
                if run.status != dg.DagsterRunStatus.SUCCESS:
                    say(f"    {pipeline.failure_reason(instance, run.run_id)}")
            storm_runs = len(runs)
            runs_failed = sum(1 for run in runs if run.status != dg.DagsterRunStatus.SUCCESS)
            dbt_builds = sum(1 for run in runs for s in instance.get_run_step_stats(run.run_id) if s.step_key == DBT_STEP)
            equal = marts_equal_truth(url, org)

            say("quiet system: one more login")
            quiet_user = logins[0]
            single = {quiet_user: log_in(url, quiet_user)}
            single_done = wait_fresh(url, single, timeout_s=300, daemon=daemon)
            single_s = (single_done[quiet_user] - single[quiet_user]).total_seconds() if single_done else None
            quiet_run = instance.get_runs(filters=dg.RunsFilter(job_name=waves.JOB_NAME), limit=1)[0]
            stats = instance.get_run_stats(quiet_run.run_id)
            say(f"  quiet wave: queued {stats.enqueued_time - single[quiet_user].timestamp():.1f} s after the login, "
                f"launched +{stats.launch_time - stats.enqueued_time:.1f} s, started +{stats.start_time - stats.launch_time:.1f} s; "
                + ", ".join(f"{s.step_key} {s.end_time - s.start_time:.1f}s" for s in instance.get_run_step_stats(quiet_run.run_id)
                            if s.end_time and s.start_time))
        finally:
            os.killpg(daemon.pid, 15)
            daemon.wait(timeout=60)
            log.close()

    result = {
        "users": len(logins),
        "repositories": args.repos,
        "pull_requests_per_repository": args.prs,
        "burst_seconds": args.burst_seconds,
        "all_fresh_s": round(all_fresh_s, 1) if all_fresh_s is not None else None,
        "users_fresh": len(done),
        "p50_login_to_fresh_s": round(statistics.median(latencies), 1),
        "p95_login_to_fresh_s": round(latencies[max(0, int(len(latencies) * 0.95) - 1)], 1),
        "max_login_to_fresh_s": round(latencies[-1], 1),
        "runs_launched": storm_runs,
        "runs_failed": runs_failed,
        "dbt_builds": dbt_builds,
        "github_units": storm_units,
        "github_units_once_per_repo": baseline_units,
        "github_units_ratio": round(storm_units / baseline_units, 3),
        "marts_equal_truth": equal,
        "single_login_to_fresh_s": round(single_s, 1) if single_s is not None else None,
    }
    rows = [
        ("users fresh", f"{result['users_fresh']}/{result['users']}", "all"),
        ("every user fresh after the first login", f"{result['all_fresh_s']} s", "<= 300 s"),
        ("login to fresh p50 / p95 / max",
         f"{result['p50_login_to_fresh_s']} / {result['p95_login_to_fresh_s']} / {result['max_login_to_fresh_s']} s", ""),
        ("runs launched / failed", f"{storm_runs} / {runs_failed}", "failed 0"),
        ("dbt builds", str(dbt_builds), "<= 5"),
        ("GitHub units (storm / each repo once)", f"{storm_units} / {baseline_units} = {result['github_units_ratio']}",
         "<= 1.1"),
        ("marts equal the ground truth", str(equal), "True"),
        ("one quiet login to fresh", f"{result['single_login_to_fresh_s']} s", "<= 30 s"),
    ]
    say("")
    say(f"{'measure':<40} {'result':<28} target")
    for name, value, target in rows:
        say(f"{name:<40} {value:<28} {target}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "logins.json").write_text(json.dumps(result, indent=2) + "\n")
    say(f"wrote {RESULTS / 'logins.json'}")
    return 0 if runs_failed == 0 and len(done) == len(logins) else 1


if __name__ == "__main__":
    sys.exit(main())
