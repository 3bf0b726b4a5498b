"""`ghmetrics demo`: the whole pipeline on the embedded defaults against the sandbox."""

from __future__ import annotations

import os
import time

import click

from ghmetrics_dagster import pipeline, warehouse

DEMO_USERS = 3


def _say(text: str = "") -> None:
    click.echo(text)


def _heading(text: str) -> None:
    _say()
    _say(click.style(text, bold=True))


def _demo_users(org) -> list[tuple[str, list[str]]]:
    """The users with the most repositories: they show the user scope pooling repositories."""
    people = [(login, repos) for login, repos in org.memberships.items() if repos and not org.users[login].is_bot]
    people.sort(key=lambda item: (-len(item[1]), item[0]))
    return people[:DEMO_USERS]


def _register(url: str, users: list[tuple[str, list[str]]], org) -> None:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        for login, repos in users:
            cur.execute(
                "insert into app.users (login, display_name) values (%s, %s) on conflict (login) do nothing",
                (login, org.users[login].name),
            )
            cur.executemany(
                "insert into app.user_repositories (login, repo_full_name) values (%s, %s) on conflict do nothing",
                [(login, repo) for repo in repos],
            )
            cur.execute("insert into app.user_logins (login) values (%s)", (login,))


def _print_counts(url: str) -> None:
    tables = ["repositories", "pull_requests", "pull_request_reviews", "pull_request_commits",
              "deployments", "releases", "workflow_runs", "issues"]
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        counts = []
        for table in tables:
            cur.execute(f"select count(*) from raw.{table}")
            counts.append((table, cur.fetchone()[0]))
    _heading("Ingested into raw (rows)")
    for table, count in counts:
        _say(f"  {table:<22} {count:>7}")


def _print_dora(url: str) -> None:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            """select d.repo_full_name, d.deployment_source, d.deployment_frequency_grade, d.lead_time_grade,
                      d.change_failure_rate_grade, d.time_to_restore_grade, d.performance_score,
                      w.deployments, w.median_lead_time_hours, w.change_failure_rate, w.median_time_to_restore_hours
               from marts.dim_repositories d
               left join marts.fct_dora_weekly w
                 on w.scope_type = 'repository' and w.scope = d.repo_full_name and w.week_start = d.last_week
               order by d.repo_full_name"""
        )
        rows = cur.fetchall()
    _heading("DORA per repository (grades over the trailing 12 weeks; figures of the latest week)")
    _say(f"  {'repository':<26} {'source':<19} {'deploy freq':<11} {'lead time':<9} {'fail rate':<9} "
         f"{'restore':<8} {'score':>5}  {'deploys':>7} {'lead h':>7} {'CFR':>5} {'MTTR h':>7}")

    def fmt(value, pattern="{:.1f}"):
        return "-" if value is None else pattern.format(float(value))

    for repo, source, df, lt, cfr, mttr, score, deploys, lead, rate, restore in rows:
        _say(f"  {repo:<26} {source or '-':<19} {df or '-':<11} {lt or '-':<9} {cfr or '-':<9} {mttr or '-':<8} "
             f"{fmt(score, '{:.0f}'):>5}  {deploys if deploys is not None else '-':>7} {fmt(lead):>7} "
             f"{fmt(rate, '{:.0%}'):>5} {fmt(restore):>7}")


def _print_models(url: str) -> None:
    from ml import demo as ml_demo

    _heading("Models (MLflow holdout metrics) and anomalies found")
    for line in ml_demo.describe_models_and_anomalies(url):
        _say(f"  {line}")


def _print_summary(url: str, login: str) -> None:
    from ghmetrics_dagster.llm import service

    text, report_path = service.demo_summary(login=login, database_url=url)
    _heading(f"Summary for {login}")
    for line in text.splitlines():
        _say(f"  {line}")
    _say(f"  report: {report_path}")


def _serve_dashboard(url: str, sandbox, port: int):
    """The dashboard in this process, signing people in through the sandbox's OAuth pages."""
    from ghmetrics_dagster.web import server
    from ghmetrics_dagster.web.config import WebConfig

    config = WebConfig.from_env(
        database_url=url, client_id=sandbox.oauth_client_id, client_secret=sandbox.oauth_client_secret,
        oauth_url=sandbox.rest_url,
    )
    return server.start_in_thread(config, port=port)


def run_demo(seed: int, repos: int, prs: int, serve_ui: bool, port: int, web_port: int = 8000) -> None:
    from ghmetrics_dagster.sandbox import generator
    from ghmetrics_dagster.sandbox.server import run_sandbox

    started = time.monotonic()
    url = warehouse.database_url()
    applied = warehouse.migrate(url)
    _say(f"warehouse: {warehouse.display_url(url)}" + (f" (applied {', '.join(applied)})" if applied else ""))
    pipeline.deploy_views()
    org = generator.generate(seed=seed, repos=repos, prs_per_repo=prs)
    with run_sandbox(org=org) as sandbox:
        # The pipeline reads GitHub's location and tokens from the environment, as in production.
        os.environ["GHMETRICS_GITHUB_API_URL"] = sandbox.rest_url
        os.environ["GHMETRICS_GITHUB_GRAPHQL_URL"] = sandbox.graphql_url
        os.environ["GITHUB_TOKEN"] = sandbox.tokens[0]
        _say(f"sandbox: GitHub-compatible API at {sandbox.rest_url} serving {org.login} "
             f"({len(org.repositories)} repositories, seed {seed})")
        users = _demo_users(org)
        _register(url, users, org)
        _say(f"refreshing {', '.join(login for login, _ in users)} in one wave "
             f"({len({repo for _, repos in users for repo in repos})} repositories) ...")
        outcome = pipeline.refresh_users([login for login, _ in users], progress=True, trigger="demo")
        if not outcome.success:
            raise click.ClickException(f"the refresh failed: {outcome.failure}; open the Dagster UI (make ui) "
                                       f"and look at run {outcome.run_id}")
        stats = sandbox.stats(sandbox.tokens[0])
        _print_counts(url)
        _say(f"  GitHub cost: {stats['rest_used']} REST units, {stats['graphql_used']} GraphQL points, "
             f"{stats['not_modified']} not-modified answers")
        _print_dora(url)
        _print_models(url)
        _print_summary(url, users[0][0])
        _say()
        _say(f"done in {time.monotonic() - started:.0f} s.")
        if not serve_ui:
            _say("Dagster UI: `make ui` (http://127.0.0.1:3000); MLflow UI: `make mlflow-ui` (http://127.0.0.1:5000).")
            return
        dashboard = _serve_dashboard(url, sandbox, web_port)
        _heading("Dashboard")
        _say(f"  {dashboard.url}  sign in with GitHub: the sandbox's consent page lets you pick a person;")
        _say(f"  {users[0][0]} sees {len(users[0][1])} repositories. Signing in refreshes them in the background.")
        try:
            pipeline.serve_ui(port)
        finally:
            dashboard.stop()
