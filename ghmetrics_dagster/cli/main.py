"""The `ghmetrics` command line.

Every command turns known failures into one line on stderr and a non-zero exit; `--verbose`
(or `--debug`, or GHMETRICS_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata

import click

from ghmetrics_dagster.core.settings import Settings

REPO_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$")


class GhmetricsGroup(click.Group):
    """Turns exceptions into a single `error:` line unless debugging."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.UsageError, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except click.ClickException as exc:  # `fail` and the subcommands' errors: one style, `error:`
            from ghmetrics_dagster.core.redact import redact

            click.echo(f"error: {redact(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - the one place that formats every failure
            if (ctx.obj or {}).get("debug"):
                raise
            from ghmetrics_dagster.core.redact import redact

            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            click.echo(f"error: {redact(message)}", err=True)
            sys.exit(1)


def fail(message: str) -> None:
    """Stops the command with one clear line."""
    raise click.ClickException(message)


@click.group(cls=GhmetricsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", "--debug", "debug", is_flag=True,
              help="Show tracebacks instead of one-line errors, and Dagster's, dbt's and MLflow's own output "
                   "instead of sending it to the run log.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """ghmetrics: DORA metrics, cycle times, forecasts and summaries from GitHub."""
    state = ctx.ensure_object(dict)
    loaded = Settings.from_env()
    state["debug"] = debug or loaded.debug
    # --verbose: the processes the pipeline starts keep the terminal too.
    state["settings"] = loaded.replace(verbose=True) if debug else loaded


def current_settings() -> Settings:
    """The settings `main` loaded for this command (with the home's sandbox, once chosen); a
    subcommand invoked on its own (embedded, or in a test) loads them here."""
    root = click.get_current_context().find_root()
    root.ensure_object(dict).setdefault("settings", Settings.from_env())
    return root.obj["settings"]


def _use_settings(settings: Settings) -> None:
    click.get_current_context().find_root().obj["settings"] = settings


# --- warehouse -----------------------------------------------------------------------------


@main.command()
def init() -> None:
    """Create or upgrade the warehouse schema and the dbt views (safe to repeat)."""
    from ghmetrics_dagster import warehouse
    from ghmetrics_dagster.cli import pipeline

    settings = current_settings()
    applied = warehouse.migrate(warehouse.database_url(settings))
    if applied:
        click.echo(f"applied migrations: {', '.join(applied)}")
    else:
        click.echo("warehouse schema is up to date")
    pipeline.deploy_views(settings)
    click.echo("dbt views built")


@main.group()
def db() -> None:
    """The warehouse database."""


@db.command("url")
def db_url() -> None:
    """Print a URL that psql accepts for the current warehouse."""
    from ghmetrics_dagster import warehouse

    click.echo(warehouse.database_url(current_settings()))


# --- users ---------------------------------------------------------------------------------


def _migrated_url() -> str:
    from ghmetrics_dagster import warehouse

    url = warehouse.database_url(current_settings())
    warehouse.migrate(url)
    return url


@main.group()
def users() -> None:
    """People whose metrics ghmetrics computes."""


@users.command("add")
@click.argument("login")
@click.option("--repo", "repos", multiple=True, metavar="OWNER/NAME", help="A repository of the user (repeatable).")
@click.option("--display-name", default=None, help="Name shown in reports.")
@click.option("--token-stdin", is_flag=True, help="Read the user's GitHub token from standard input.")
def users_add(login: str, repos: tuple[str, ...], display_name: str | None, token_stdin: bool) -> None:
    """Add a user (or update their repositories and token)."""
    from ghmetrics_dagster import warehouse
    from ghmetrics_dagster.core import secrets
    from ghmetrics_dagster.warehouse import app_data

    if not LOGIN.match(login):
        fail(f"'{login}' is not a valid GitHub login")
    for repo in repos:
        if not REPO_NAME.match(repo):
            fail(f"'{repo}' is not a repository name; use OWNER/NAME, e.g. octocat/hello-world")
    token = None
    if token_stdin:
        token = sys.stdin.readline().strip()
        if not token:
            fail("--token-stdin was given but standard input had no token")
    url = _migrated_url()
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        # The cursor lets encrypt refuse to create a new key while tokens are stored under another.
        ciphertext = secrets.keyring(current_settings()).encrypt(token, cur) if token else None
        app_data.save_user(cur, login, display_name, ciphertext)
        app_data.add_user_repositories(cur, login, repos)
    what = f" with {len(repos)} repositories" if repos else ""
    click.echo(f"user {login} saved{what}" + (" (token stored encrypted)" if ciphertext else ""))


@users.command("list")
def users_list() -> None:
    """List users, their repositories and last login."""
    from ghmetrics_dagster import warehouse
    from ghmetrics_dagster.warehouse import app_data

    url = _migrated_url()
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        rows = app_data.users_overview(cur)
    if not rows:
        click.echo("no users yet; add one with `ghmetrics users add LOGIN --repo OWNER/NAME`")
        return
    click.echo(f"{'login':<24} {'name':<20} {'token':<6} {'repos':>5}  last login")
    for login, name, has_token, repo_count, last_login in rows:
        last = last_login.strftime("%Y-%m-%d %H:%M UTC") if last_login else "never"
        click.echo(f"{login:<24} {fit(name, 20)} {'yes' if has_token else 'no':<6} {repo_count:>5}  {last}")


def display_width(text: str) -> int:
    """Terminal columns: wide characters (CJK, fullwidth) take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def fit(text: str, width: int) -> str:
    """`text` cut and padded to exactly `width` terminal columns."""
    out, used = "", 0
    for ch in text:
        w = display_width(ch)
        if used + w > width:
            break
        out, used = out + ch, used + w
    return out + " " * (width - used)


def _require_user(cur, login: str) -> None:
    from ghmetrics_dagster.warehouse import app_data

    if not app_data.user_exists(cur, login):
        fail(f"unknown user '{login}'; add it first with `ghmetrics users add {login} --repo OWNER/NAME`")


@main.command()
@click.argument("login")
def login(login: str) -> None:
    """Record that LOGIN signed in (what a web front end does); the login sensor refreshes them."""
    import datetime as dt

    import dagster as dg

    from ghmetrics_dagster import warehouse
    from ghmetrics_dagster.cli import pipeline
    from ghmetrics_dagster.defs.users import login_outcome
    from ghmetrics_dagster.warehouse import app_data

    url = _migrated_url()
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        _require_user(cur, login)
    _github_of_this_home()
    settings = current_settings()
    pipeline.export_for_dagster(settings)
    with dg.DagsterInstance.get() as instance:
        # Decided before the row exists, as the sensor will decide when it reads it.
        outcome = login_outcome(instance, url, login, settings.refresh_ttl_minutes,
                                dt.timedelta(minutes=settings.orphan_after_minutes))
        daemon = pipeline.daemon_is_running(instance)
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        login_id, at = app_data.record_login(cur, login)
    click.echo(f"login {login_id} recorded for {login} at {at:%Y-%m-%d %H:%M:%S} UTC: {outcome}")
    if not daemon and outcome.startswith("refreshed now"):
        click.echo("note: no Dagster daemon is running, so nothing reads logins; start one with "
                   f"`ghmetrics ui`, or refresh now with `ghmetrics run --user {login}`")


# --- pipeline ------------------------------------------------------------------------------


@main.command()
@click.option("--user", "login", required=True, help="The user whose pipeline to run.")
def run(login: str) -> None:
    """Materialise LOGIN's pipeline (ingestion, marts, insights, summary) as a Dagster run."""
    from ghmetrics_dagster import warehouse
    from ghmetrics_dagster.cli import pipeline

    url = _migrated_url()
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        _require_user(cur, login)
    _github_of_this_home()
    result = pipeline.refresh_users(current_settings(), [login], progress=True)
    if not result.success:
        fail(f"run {result.run_id} failed for {login}: {result.failure}; the Dagster UI (`ghmetrics ui`) has its logs")
    click.echo(f"run {result.run_id} succeeded for {login}")


@main.command()
@click.option("--seed", default=7, show_default=True, help="Seed of the synthetic organisation.")
@click.option("--repos", default=6, show_default=True, help="Repositories in the synthetic organisation.")
@click.option("--prs", default=80, show_default=True, help="Pull requests per repository.")
@click.option("--no-ui", is_flag=True, help="Stop after printing instead of serving the dashboard and the Dagster UI.")
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--web-port", default=8000, show_default=True, help="Port of the dashboard.")
def demo(seed: int, repos: int, prs: int, no_ui: bool, port: int, web_port: int) -> None:
    """Run the whole pipeline against the sandbox, print the results, serve the dashboard and the Dagster UI."""
    from ghmetrics_dagster.cli import demo as demo_module

    demo_module.run_demo(current_settings(), seed=seed, repos=repos, prs=prs, serve_ui=not no_ui, port=port,
                         web_port=web_port)


@main.command()
@click.option("--port", default=3000, show_default=True)
def ui(port: int) -> None:
    """Serve the Dagster UI (and daemon) on the embedded defaults."""
    from ghmetrics_dagster.cli import pipeline

    _migrated_url()
    _github_of_this_home()
    pipeline.serve_ui(current_settings(), port)


@main.command()
def stop() -> None:
    """Stop what keeps running between commands: the embedded Postgres and the home's sandbox."""
    from ghmetrics_dagster import warehouse
    from ghmetrics_dagster.cli import home_sandbox

    settings = current_settings()
    if home_sandbox.stop(settings.home()):
        click.echo("stopped the sandbox organisation of this home")
    if settings.database_url:
        click.echo("the warehouse is GHMETRICS_DATABASE_URL's server: not ours to stop")
    elif warehouse.stop_embedded(settings.home()):
        click.echo(f"stopped the embedded Postgres in {settings.home() / 'pg'}")
    else:
        click.echo("the embedded Postgres was not running")


def _github_of_this_home():
    """After `ghmetrics demo`, with no GitHub configured: the demo's sandbox organisation (or None)."""
    from ghmetrics_dagster.cli import home_sandbox

    try:
        sandbox, settings = home_sandbox.use_if_recorded(current_settings())
    except RuntimeError as exc:
        fail(str(exc))
    _use_settings(settings)
    if sandbox is not None:
        click.echo(f"GitHub: this home's sandbox organisation at {sandbox.rest_url} (seed {sandbox.seed}, "
                   "from `ghmetrics demo`; set GITHUB_TOKEN to use GitHub)")
    return sandbox


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a container).")
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Server processes (one per core).")
def web(host: str, port: int, workers: int) -> None:
    """Serve the dashboard: sign in with GitHub, see your metrics (GHMETRICS_OAUTH_CLIENT_ID/SECRET)."""
    from ghmetrics_dagster.web import server
    from ghmetrics_dagster.web.config import WebConfig, WebConfigError

    settings = current_settings()
    if settings.instance and not settings.secret_keys:
        fail("GHMETRICS_SECRET_KEY is not set: in a deployment the dashboard must share the key with the code "
             "server, which decrypts the tokens the dashboard stores; set the same key on both")
    url = _migrated_url()
    if not settings.web.oauth_client_id:
        _sign_in_through_this_homes_sandbox()
    try:
        # fail here, in one line, rather than in each worker
        WebConfig.from_settings(current_settings(), database_url=url)
    except WebConfigError as exc:
        fail(str(exc))
    click.echo(f"dashboard: http://{host}:{port}  (Ctrl-C to stop)")
    # The workers are processes of their own: they load these settings from the environment.
    os.environ.update(current_settings().child_environ(os.environ))
    server.serve(host, port, workers)


def _sign_in_through_this_homes_sandbox() -> None:
    """After `ghmetrics demo`: sign-in through the sandbox's OAuth app."""
    import dataclasses

    from ghmetrics_dagster.sandbox.oauth import DEFAULT_CLIENT_ID, default_client_secret

    sandbox = _github_of_this_home()
    if sandbox is not None:
        settings = current_settings()
        _use_settings(settings.replace(web=dataclasses.replace(
            settings.web, oauth_client_id=DEFAULT_CLIENT_ID, oauth_client_secret=default_client_secret(),
            oauth_url=sandbox.rest_url)))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.argument("dagster_args", nargs=-1, type=click.UNPROCESSED)
def dagster(dagster_args: tuple[str, ...]) -> None:
    """Run a `dagster` command on the ghmetrics instance, e.g. `ghmetrics dagster definitions validate -w workspace.yaml`."""
    from ghmetrics_dagster.cli import pipeline

    _migrated_url()
    sys.exit(pipeline.run_dagster_command(current_settings(), list(dagster_args)))


@main.command("mlflow-ui")
@click.option("--port", default=5000, show_default=True)
def mlflow_ui(port: int) -> None:
    """Serve the MLflow UI over the configured tracking store."""
    import subprocess

    settings = current_settings()
    uri = settings.mlflow_tracking_uri()
    command = [os.path.join(os.path.dirname(sys.executable), "mlflow"), "ui", "--backend-store-uri", uri,
               "--host", "127.0.0.1", "--port", str(port)]
    if uri.startswith("sqlite:"):
        command += ["--default-artifact-root", settings.mlflow_artifact_root()]
    click.echo(f"MLflow UI: http://127.0.0.1:{port}  (Ctrl-C to stop)")
    try:
        subprocess.run(command, check=False)
    except KeyboardInterrupt:
        pass


@main.command()
def doctor() -> None:
    """Check configuration and connectivity; exit non-zero when something is wrong."""
    from ghmetrics_dagster.cli import doctor as doctor_module

    problems = doctor_module.run_checks(current_settings(), click.echo)
    if problems:
        click.echo(f"{problems} problem(s) found", err=True)
        sys.exit(1)
    click.echo("all checks passed")


@main.group()
def repos() -> None:
    """Per-repository metric rules."""


def _attach_commands() -> None:
    """Commands that live beside their library."""
    from ghmetrics_dagster.cli.benchmarks import benchmark_group
    from ghmetrics_dagster.cli.models import models
    from ghmetrics_dagster.cli.repos import repos_set
    from ghmetrics_dagster.cli.secrets import secrets_group

    repos.add_command(repos_set)
    main.add_command(secrets_group)
    main.add_command(benchmark_group)
    main.add_command(models)
    try:  # the sandbox comes with the `demo` extra; the production image leaves it out
        from ghmetrics_dagster.cli.sandbox import sandbox
    except ImportError:
        return
    main.add_command(sandbox)


_attach_commands()


if __name__ == "__main__":
    main()
