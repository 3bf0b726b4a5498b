"""Benchmark: the nightly full refresh of the marts against a refresh wave after 1% new rows.

Synthetic raw rows in the shapes of docs/contracts.md (1,000,000 pull requests and 100,000
deployments by default, with reviews, commits, issues and users) are loaded with COPY into a
fresh database; the views are prepared once (`dbt run --selector views`, untimed, as when the
project is deployed); then the nightly `dbt build --selector wave --full-refresh` is timed,
the database is vacuumed (untimed), 1% new rows (pull requests with their reviews and
commits, deployments, issues) are loaded, and a wave's `dbt build --selector wave` is timed.
Both builds run the wave's data and unit tests (dbt_project/selectors.yml).

dbt runs as Dagster runs it: a `dbt` subprocess that starts from the partial-parse file of a
`dbt parse` done beforehand. A build's time is the one dbt reports (run_results.json
elapsed_time); the subprocess's wall clock, which adds dbt's start-up (about 2 s of imports
and 1.5 s of loading the parsed project, whatever the data), is reported beside it as cli_*.

    .venv/bin/python bench/dbt.py [--quick] [--url postgresql://postgres@127.0.0.1:5432/postgres]

Prints a table and writes bench/results/dbt.json (prs, full_build_s, incremental_build_s,
ratio, cli_*, plus per-model seconds and the tests' total).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ghmetrics_dagster import warehouse  # noqa: E402
from ghmetrics_dagster.core.settings import Settings  # noqa: E402
from ghmetrics_dagster.warehouse import app_data  # noqa: E402
from ghmetrics_dagster.warehouse.dbt_env import DBT_PROJECT_DIR, dbt_env  # noqa: E402

PRS_PER_REPO = 1000
DEPLOYMENTS_PER_REPO = 100
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SPAN_HOURS = 104 * 7 * 24  # two years of history
HUMANS = [f"dev{i:03d}" for i in range(300)]
BOTS = ["dependabot", "renovate"]


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# Commit messages, with the trailers the AI rules parse (docs/ai.md): an AI co-author, a human
# one, a Made-with trailer, none. Written into COPY text, where a doubled backslash is one:
# JSON then reads \\n as a newline.
COMMIT_MESSAGES = [
    "Change the handler\\\\n\\\\nCo-authored-by: Copilot <175728472+Copilot@users.noreply.github.com>",
    "Fix the tests\\\\n\\\\nCo-authored-by: Claude Moreau <claude.moreau@example.com>",
    "Tidy up\\\\n\\\\nMade-with: Cursor",
    "Handle the empty case",
]


class Generator:
    """Deterministic synthetic rows as COPY text lines (tab-separated; the JSON holds no tabs,
    newlines or backslashes)."""

    def __init__(self, repos: int, seed: int = 7):
        self.repos = [f"bench/repo-{i:04d}" for i in range(repos)]
        self.rng = random.Random(seed)

    @staticmethod
    def sha(repo_index: int, number: int, commit: int) -> str:
        return f"{repo_index:06x}{number:08x}{commit:02x}".ljust(40, "0")

    def repositories(self) -> list[str]:
        lines = []
        for i, name in enumerate(self.repos):
            data = (f'{{"id": "R_{i}", "databaseId": {i}, "nameWithOwner": "{name}", "name": "{name.split("/")[1]}",'
                    f' "owner": {{"login": "bench"}}, "isArchived": false, "isPrivate": false, "isFork": false,'
                    f' "isEmpty": false, "createdAt": "2023-01-01T00:00:00Z", "updatedAt": "2023-01-01T00:00:00Z",'
                    f' "pushedAt": "2023-01-01T00:00:00Z", "defaultBranchRef": {{"name": "main"}}}}')
            lines.append(f"R_{i}\t{name}\t{data}\t2023-01-01T00:00:00Z\n")
        return lines

    def pull_requests(self, repo_index: int, numbers: range, start_hour: float, hours: float):
        """(pull request lines, review lines, commit lines) for `numbers` opened in the span."""
        rng, name = self.rng, self.repos[repo_index]
        prs, reviews, commits = [], [], []
        step = hours / max(1, len(numbers))
        for k, number in enumerate(numbers):
            created = START + dt.timedelta(hours=start_hour + k * step + rng.random() * step)
            pr_id = f"PR_{repo_index}_{number}"
            bot = rng.random() < 0.03
            author = rng.choice(BOTS) if bot else rng.choice(HUMANS)
            outcome = rng.random()
            merged = created + dt.timedelta(hours=rng.uniform(1, 96)) if outcome < 0.85 else None
            closed = merged or (created + dt.timedelta(hours=rng.uniform(1, 200)) if outcome < 0.9 else None)
            state = "MERGED" if merged else "CLOSED" if closed else "OPEN"
            ready = f'{{"createdAt": "{iso(created + dt.timedelta(hours=rng.uniform(0, 10)))}"}}' if rng.random() < 0.1 else "null"
            # Every 97th pull request reverts the one before it, by the SHA of its first commit.
            reverts = number % 97 == 0
            title = f"Revert change {number - 1}" if reverts else f"Change {number}"
            body = (f"This reverts commit {self.sha(repo_index, number - 1, 0)}." if reverts
                    else f"Body of change {number}.")
            data = (f'{{"id": "{pr_id}", "databaseId": {repo_index * 10_000_000 + number}, "number": {number},'
                    f' "title": "{title}", "body": "{body}", "url": "https://github.com/{name}/pull/{number}",'
                    f' "state": "{state}", "isDraft": false, "createdAt": "{iso(created)}", "updatedAt": "{iso(closed or created)}",'
                    f' "closedAt": {json.dumps(iso(closed)) if closed else "null"}, "mergedAt": {json.dumps(iso(merged)) if merged else "null"},'
                    f' "additions": {rng.randint(1, 500)}, "deletions": {rng.randint(0, 200)}, "changedFiles": {rng.randint(1, 30)},'
                    f' "baseRefName": "main", "headRefName": "feature/{number}",'
                    f' "author": {{"__typename": "{"Bot" if bot else "User"}", "login": "{author}"}}, "readyForReview": {ready}}}')
            prs.append(f"{pr_id}\t{name}\t{number}\t{data}\t{iso(closed or created)}\n")
            if rng.random() < 0.8:
                submitted = created + dt.timedelta(hours=rng.uniform(0.5, 30))
                review_id = f"PRR_{repo_index}_{number}"
                data = (f'{{"id": "{review_id}", "databaseId": {repo_index * 10_000_000 + number}, "state": "APPROVED",'
                        f' "submittedAt": "{iso(submitted)}", "createdAt": "{iso(submitted)}",'
                        f' "author": {{"__typename": "User", "login": "{rng.choice(HUMANS)}"}}}}')
                reviews.append(f"{review_id}\t{name}\t{pr_id}\t{number}\t{data}\t{iso(submitted)}\n")
            for c in range(2):
                authored = created - dt.timedelta(hours=rng.uniform(0, 48))
                sha = self.sha(repo_index, number, c)
                data = (f'{{"oid": "{sha}", "message": "{COMMIT_MESSAGES[(number + c) % len(COMMIT_MESSAGES)]}",'
                        f' "authoredDate": "{iso(authored)}", "committedDate": "{iso(authored)}",'
                        f' "additions": 10, "deletions": 2, "author": {{"name": "Dev", "email": "dev@example.com", "user": null}}}}')
                commits.append(f"{name}\t{number}\t{sha}\t{pr_id}\t{data}\t{iso(authored)}\n")
        return prs, reviews, commits

    def deployments(self, repo_index: int, first: int, count: int, start_hour: float, hours: float) -> list[str]:
        rng, name = self.rng, self.repos[repo_index]
        lines = []
        step = hours / max(1, count)
        for k in range(count):
            created = START + dt.timedelta(hours=start_hour + k * step + rng.random() * step * 0.5)
            done = created + dt.timedelta(minutes=rng.randint(2, 30))
            state = "FAILURE" if rng.random() < 0.05 else "SUCCESS"
            dep_id = f"DE_{repo_index}_{first + k}"
            data = (f'{{"id": "{dep_id}", "databaseId": {repo_index * 1_000_000 + first + k}, "environment": "production",'
                    f' "createdAt": "{iso(created)}", "updatedAt": "{iso(done)}", "commitOid": "{"a" * 40}",'
                    f' "ref": {{"name": "main"}}, "creator": {{"login": "{rng.choice(HUMANS)}"}},'
                    f' "statuses": [{{"id": "{dep_id}_1", "state": "IN_PROGRESS", "createdAt": "{iso(created)}"}},'
                    f' {{"id": "{dep_id}_2", "state": "{state}", "createdAt": "{iso(done)}"}}]}}')
            lines.append(f"{dep_id}\t{name}\t{data}\t{iso(done)}\n")
        return lines

    def issues(self, repo_index: int, first: int, count: int, start_hour: float, hours: float) -> list[str]:
        rng, name = self.rng, self.repos[repo_index]
        lines = []
        for k in range(count):
            created = START + dt.timedelta(hours=start_hour + rng.random() * hours)
            closed = created + dt.timedelta(hours=rng.uniform(0.2, 48))
            issue_id = f"I_{repo_index}_{first + k}"
            label = "incident" if k % 2 == 0 else "bug"
            data = (f'{{"id": "{issue_id}", "databaseId": {repo_index * 1_000_000 + first + k}, "number": {100_000 + first + k},'
                    f' "title": "Issue", "state": "CLOSED", "createdAt": "{iso(created)}", "updatedAt": "{iso(closed)}",'
                    f' "closedAt": "{iso(closed)}", "author": {{"login": "{rng.choice(HUMANS)}"}}, "labels": [{{"name": "{label}"}}]}}')
            lines.append(f"{issue_id}\t{name}\t{data}\t{iso(closed)}\n")
        return lines


COPY_COLUMNS = {
    "repositories": "id, repo_full_name, data, updated_at",
    "pull_requests": "id, repo_full_name, number, data, updated_at",
    "pull_request_reviews": "id, repo_full_name, pull_request_id, pull_request_number, data, updated_at",
    "pull_request_commits": "repo_full_name, pull_request_number, sha, pull_request_id, data, updated_at",
    "deployments": "id, repo_full_name, data, updated_at",
    "issues": "id, repo_full_name, data, updated_at",
}


def copy(cur, table: str, lines: list[str]) -> None:
    if lines:
        cur.copy_expert(f"copy raw.{table} ({COPY_COLUMNS[table]}) from stdin", io.StringIO("".join(lines)))


def load(url: str, gen: Generator, prs_per_repo: int, deployments_per_repo: int, *, increment: bool) -> dict[str, int]:
    """The history (increment=False) or 1% more of everything, after the history."""
    counts: dict[str, int] = {}
    pr_share = max(1, prs_per_repo // 100) if increment else prs_per_repo
    dep_share = max(1, deployments_per_repo // 100) if increment else deployments_per_repo
    issue_share = 1 if increment else 10
    # New activity happens in the week after the history ends.
    start_hour, hours = (SPAN_HOURS, 7 * 24) if increment else (0, SPAN_HOURS)
    first_number = prs_per_repo + 1 if increment else 1
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        if not increment:
            copy(cur, "repositories", gen.repositories())
            counts["repositories"] = len(gen.repos)
        for i in range(len(gen.repos)):
            prs, reviews, commits = gen.pull_requests(i, range(first_number, first_number + pr_share), start_hour, hours)
            deployments = gen.deployments(i, first_number, dep_share, start_hour, hours + 24)
            issues = gen.issues(i, first_number, issue_share, start_hour, hours)
            for table, lines in (("pull_requests", prs), ("pull_request_reviews", reviews),
                                 ("pull_request_commits", commits), ("deployments", deployments), ("issues", issues)):
                copy(cur, table, lines)
                counts[table] = counts.get(table, 0) + len(lines)
        if not increment:
            # 10% of the developers use ghmetrics, each seeing 10 repositories.
            rng = random.Random(3)
            for login in HUMANS[: len(HUMANS) // 10]:
                app_data.save_user(cur, login, login.title(), None)
                app_data.add_user_repositories(cur, login, rng.sample(gen.repos, min(10, len(gen.repos))))
        cur.execute("analyze")
    return counts


def run_dbt(url: str, target: Path, *args: str, parsed: Path | None = None) -> tuple[float, float, dict[str, float]]:
    """(wall-clock seconds, dbt's own build seconds, seconds per model) of one dbt command;
    `parsed` is a target folder whose partial_parse.msgpack the command starts from."""
    env = {**os.environ, **dbt_env(url, threads=2), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "DBT_LOG_PATH": str(target / "logs")}
    dbt = str(Path(sys.executable).with_name("dbt"))
    if parsed is not None:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(parsed / "partial_parse.msgpack", target / "partial_parse.msgpack")
    started = time.perf_counter()
    proc = subprocess.run([dbt, *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                           "--target-path", str(target)], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"dbt {' '.join(args)} failed:\n{proc.stdout[-4000:]}")
    if args[0] == "parse":
        return elapsed, elapsed, {}
    run_results = json.loads((target / "run_results.json").read_text())
    # Seconds per model, and the data and unit tests summed (they run beside the models).
    per_model = {r["unique_id"].split(".")[-1]: round(r["execution_time"], 2)
                 for r in run_results["results"] if r["unique_id"].startswith("model.")}
    per_model["(tests)"] = round(sum(r["execution_time"] for r in run_results["results"]
                                     if not r["unique_id"].startswith("model.")), 2)
    return elapsed, run_results["elapsed_time"], per_model


def settle(url: str) -> None:
    """Vacuums and analyzes the database, as autovacuum does after a large write."""
    conn = psycopg2.connect(warehouse.to_libpq_url(url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("vacuum (analyze)")
    conn.close()


def fresh_database(server_url: str, name: str) -> str:
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,))
        cur.execute(f'drop database if exists "{name}"')
        cur.execute(f'create database "{name}"')
    admin.close()
    parts = urlsplit(warehouse.to_libpq_url(server_url))
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    warehouse.migrate(url)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 pull requests instead of 1,000,000")
    parser.add_argument("--prs", type=int, help="pull requests in the history (a multiple of 1,000)")
    parser.add_argument("--url", help="Postgres server URL (default: GHMETRICS_TEST_DATABASE_URL or the warehouse)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    prs = args.prs or (20_000 if args.quick else 1_000_000)
    repos = max(1, prs // PRS_PER_REPO)
    server_url = args.url or os.environ.get("GHMETRICS_TEST_DATABASE_URL") or warehouse.database_url(Settings.from_env())
    # Its own database and folder, so that two runs on one server never drop each other's.
    name = f"ghm_bench_dbt_{os.getpid()}"
    url = fresh_database(server_url, name)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / name
    gen = Generator(repos)

    t = time.perf_counter()
    loaded = load(url, gen, PRS_PER_REPO, DEPLOYMENTS_PER_REPO, increment=False)
    load_s = time.perf_counter() - t
    shutil.rmtree(work, ignore_errors=True)
    run_dbt(url, work / "parse", "parse")
    # Views change only with the code: prepared once, as when the project is deployed.
    run_dbt(url, work / "views", "run", "--selector", "views", parsed=work / "parse")
    full_cli_s, full_s, full_models = run_dbt(
        url, work / "full", "build", "--selector", "wave", "--full-refresh", parsed=work / "parse")
    # The next refresh comes hours later, when autovacuum has long processed the new marts;
    # right after the build it would still be vacuuming them, beside the timed run.
    settle(url)
    t = time.perf_counter()
    added = load(url, gen, PRS_PER_REPO, DEPLOYMENTS_PER_REPO, increment=True)
    increment_load_s = time.perf_counter() - t
    incremental_cli_s, incremental_s, incremental_models = run_dbt(
        url, work / "incremental", "build", "--selector", "wave", parsed=work / "parse")

    result = {
        "prs": loaded["pull_requests"],
        "deployments": loaded["deployments"],
        "reviews": loaded["pull_request_reviews"],
        "commits": loaded["pull_request_commits"],
        "new_prs": added["pull_requests"],
        "new_deployments": added["deployments"],
        "load_s": round(load_s, 2),
        "increment_load_s": round(increment_load_s, 2),
        "full_build_s": round(full_s, 2),
        "incremental_build_s": round(incremental_s, 2),
        "ratio": round(incremental_s / full_s, 4),
        "target_ratio": 0.20,
        "cli_full_build_s": round(full_cli_s, 2),
        "cli_incremental_build_s": round(incremental_cli_s, 2),
        "cli_ratio": round(incremental_cli_s / full_cli_s, 4),
        "full_models_s": full_models,
        "incremental_models_s": incremental_models,
        "quick": bool(args.quick),
    }
    print(f"{'':34}{'full':>10}{'incremental':>14}{'ratio':>8}")
    for model in sorted(full_models, key=lambda m: -full_models[m]):
        print(f"{model:34}{full_models[model]:>10.2f}{incremental_models.get(model, 0):>14.2f}")
    print(f"{'build (as dbt reports it)':34}{full_s:>10.2f}{incremental_s:>14.2f}{result['ratio']:>8.1%}")
    print(f"{'dbt subprocess, wall clock':34}{full_cli_s:>10.2f}{incremental_cli_s:>14.2f}{result['cli_ratio']:>8.1%}")
    print(f"rows: {result['prs']:,} pull requests, {result['deployments']:,} deployments, "
          f"{result['reviews']:,} reviews, {result['commits']:,} commits (COPY in {load_s:.1f} s); "
          f"+{result['new_prs']:,} pull requests, +{result['new_deployments']:,} deployments")
    print(f"incremental / full = {result['ratio']:.3f} by dbt's time; "
          f"wall clock with dbt's start-up: {result['cli_ratio']:.3f} (target <= 0.20)")
    out = ROOT / "bench" / "results" / "dbt.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    if args.keep:
        print(f"kept database {name}")
    else:
        admin = psycopg2.connect(server_url)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}"')
        admin.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
