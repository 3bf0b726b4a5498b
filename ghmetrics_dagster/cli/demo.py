"""`ghmetrics demo`: the whole pipeline on the embedded defaults against the sandbox."""

from __future__ import annotations

import dataclasses
import time

import click

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.cli import home_sandbox, pipeline
from ghmetrics_dagster.core.settings import Settings
from ghmetrics_dagster.warehouse import app_data

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
            app_data.add_user_if_missing(cur, login, org.users[login].name)
            app_data.add_user_repositories(cur, login, repos)
            app_data.record_login(cur, login)


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


def _print_dora(url: str, users: list[tuple[str, list[str]]]) -> None:
    """Two tables, so no row mixes windows: DORA's five metrics over the trailing 12 weeks with
    their Quick Check scores (docs/dora.md) and the overall score against the benchmark, then
    the latest week alone."""
    from ghmetrics_dagster.summaries.aggregates import load_summary_input

    # Each repository through one of its users, as that user's dashboard shows it.
    through = {repo: login for login, repos in reversed(users) for repo in repos}
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select repo_full_name, deployment_source from marts.dim_repositories")
        sources = dict(cur.fetchall())
        views = [(repo, load_summary_input(conn, through[repo], repository=repo)) for repo in sorted(through)]
    for line in dora_lines(views, sources):
        _say(line)


def dora_lines(views: list, sources: dict[str, str]) -> list[str]:
    """The two tables of `_print_dora` for (repository, SummaryInput) pairs, as lines."""
    views = [(repo, data) for repo, data in views if data.has_data]
    if not views:
        return ["no repository has weekly data yet"]

    def fmt(value, pattern="{:.1f}"):
        return "-" if value is None else pattern.format(float(value))

    def scored(value, score, pattern="{:.1f}"):
        return f"{fmt(value, pattern)} ({fmt(score).removesuffix('.0')})"

    lines = ["", click.style("DORA's five metrics per repository, trailing 12 weeks (figure and Quick Check score "
                             "0-10)", bold=True)]
    lines.append(f"  {'repository':<22} {'source':<19} {'deploy days/wk':<15} {'lead time h':<13} {'recovery h':<12} "
                 f"{'fail rate':<11} {'rework':<11} {'overall':>7}")
    for repo, data in views:
        d = data.latest
        lines.append(
            f"  {repo:<22} {sources.get(repo) or '-':<19} "
            f"{scored(d.get('deployment_days_per_week_12w'), d.get('deployment_frequency_score')):<15} "
            f"{scored(d.get('lead_time_hours_12w'), d.get('lead_time_score')):<13} "
            f"{scored(d.get('recovery_hours_12w'), d.get('recovery_score')):<12} "
            f"{scored(d.get('change_failure_rate_12w'), d.get('change_fail_score'), '{:.0%}'):<11} "
            f"{scored(d.get('rework_rate_12w'), d.get('rework_score'), '{:.0%}'):<11} "
            f"{fmt(d.get('overall_score')):>7}")
    benchmarks, segment = views[0][1].benchmarks, views[0][1].benchmark_segment
    if benchmarks.get("overall") is not None:
        lines.append(f"  overall = mean of the five scores; DORA 2025 benchmark ({segment or 'all industries'}): "
                     f"overall {fmt(benchmarks.get('overall'))}, throughput {fmt(benchmarks.get('throughput'))}, "
                     f"stability {fmt(benchmarks.get('stability'))}")
    lines.append("  DORA's metrics describe a team's or a service's delivery, not a person.")
    week = views[0][1].week_start
    lines += ["", click.style(f"Latest week only (starting {week}; a week without incidents has no restore time)",
                              bold=True)]
    lines.append(f"  {'repository':<22} {'deploys':>7} {'lead time h':>11} {'fail rate':>9} {'rework':>7} "
                 f"{'recovery h':>10} {'restore h':>9}")
    for repo, data in views:
        latest = data.latest
        lines.append(
            f"  {repo:<22} {fmt(latest.get('deployments'), '{:.0f}'):>7} "
            f"{fmt(latest.get('median_lead_time_hours')):>11} {fmt(latest.get('change_failure_rate'), '{:.0%}'):>9} "
            f"{fmt(latest.get('rework_rate'), '{:.0%}'):>7} {fmt(latest.get('median_recovery_hours')):>10} "
            f"{fmt(latest.get('median_time_to_restore_hours')):>9}")
    return lines


def _print_models(settings: Settings, url: str, org) -> None:
    import pandas as pd

    from ml import demo as ml_demo
    from ml.training import store_for

    # The sandbox knows which weeks it made anomalous: the champion is judged against them and
    # each week listed is marked injected or not.
    labels = pd.DataFrame([{"scope_type": a.scope_type, "scope": a.scope, "week_start": a.week_start,
                            "metric": a.metric, "factor": a.factor} for a in org.anomalies],
                          columns=["scope_type", "scope", "week_start", "metric", "factor"])
    _heading("Models (MLflow backtests) and anomalies found")
    for line in ml_demo.describe_models_and_anomalies(url, store_for(settings), labels=labels):
        _say(f"  {line}")


def _print_summary(settings: Settings, url: str, login: str) -> None:
    from ghmetrics_dagster.summaries import service
    from ghmetrics_dagster.summaries.router import Router

    router = Router.from_settings(settings.llm, url)
    text, report_path = service.demo_summary(url, router, settings.reports_dir(), login=login)
    _heading(f"Summary for {login}")
    for line in text.splitlines():
        _say(f"  {line}")
    _say(f"  report: {report_path}")


def _serve_dashboard(settings: Settings, url: str, sandbox, port: int):
    """The dashboard in this process, signing people in through the sandbox's OAuth pages."""
    from ghmetrics_dagster.web import server
    from ghmetrics_dagster.web.config import WebConfig

    config = WebConfig.from_settings(
        settings, database_url=url, client_id=sandbox.oauth_client_id, client_secret=sandbox.oauth_client_secret,
        oauth_url=sandbox.rest_url,
    )
    return server.start_in_thread(config, port=port)


def run_demo(settings: Settings, seed: int, repos: int, prs: int, serve_ui: bool, port: int,
             web_port: int = 8000) -> None:
    from ghmetrics_dagster.sandbox import generator
    from ghmetrics_dagster.sandbox.server import run_sandbox

    started = time.monotonic()
    url = warehouse.database_url(settings)
    applied = warehouse.migrate(url)
    _say(f"warehouse: {warehouse.display_url(url)}" + (f" (applied {', '.join(applied)})" if applied else ""))
    pipeline.deploy_views(settings)
    org = generator.generate(seed=seed, repos=repos, prs_per_repo=prs)
    # Later commands in this home (`make ui`, `ghmetrics run`, `login`, `web`) serve it again.
    home = settings.home()
    home_sandbox.remember(home, seed, repos, prs)
    with run_sandbox(org=org, issued_tokens_path=str(home_sandbox.issued_tokens_path(home))) as sandbox:
        # The pipeline reaches GitHub through the settings, as in production.
        settings = dataclasses.replace(settings, github_api_url=sandbox.rest_url,
                                       github_graphql_url=sandbox.graphql_url, github_tokens=(sandbox.tokens[0],))
        _say(f"sandbox: GitHub-compatible API at {sandbox.rest_url} serving {org.login} "
             f"({len(org.repositories)} repositories, seed {seed})")
        _say(f"  its clock is its own: its history ends on {org.now:%Y-%m-%d}, so the latest week below is "
             "that week, not this one")
        users = _demo_users(org)
        _register(url, users, org)
        _say(f"refreshing {', '.join(login for login, _ in users)} in one wave "
             f"({len({repo for _, repos in users for repo in repos})} repositories) ...")
        outcome = pipeline.refresh_users(settings, [login for login, _ in users], progress=True, trigger="demo")
        if not outcome.success:
            raise click.ClickException(f"the refresh failed: {outcome.failure}; open the Dagster UI (make ui) "
                                       f"and look at run {outcome.run_id}")
        stats = sandbox.stats(sandbox.tokens[0])
        _print_counts(url)
        _say(f"  GitHub cost: {stats['rest_used']} REST units, {stats['graphql_used']} GraphQL points, "
             f"{stats['not_modified']} not-modified answers")
        _print_dora(url, users)
        _print_models(settings, url, org)
        _print_summary(settings, url, users[0][0])
        _say()
        _say(f"done in {time.monotonic() - started:.0f} s.")
        _say(f"Afterwards, in this home: `make ui`, `ghmetrics run --user {users[0][0]}`, `ghmetrics login "
             f"{users[0][0]}` and `make web` use this organisation again (started when needed); "
             "`ghmetrics stop` stops it and the embedded Postgres.")
        if not serve_ui:
            _say("Dagster UI: `make ui` (http://127.0.0.1:3000); MLflow UI: `make mlflow-ui` (http://127.0.0.1:5000).")
            return
        dashboard = _serve_dashboard(settings, url, sandbox, web_port)
        _heading("Dashboard")
        _say(f"  {dashboard.url}  sign in with GitHub: the sandbox's consent page lets you pick a person;")
        _say(f"  {users[0][0]} sees {len(users[0][1])} repositories. Signing in refreshes them in the background.")
        try:
            pipeline.serve_ui(settings, port)
        finally:
            dashboard.stop()
