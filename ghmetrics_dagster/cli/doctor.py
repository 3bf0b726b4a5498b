"""`ghmetrics doctor`: configuration and connectivity checks, secrets shown masked."""

from __future__ import annotations

from collections.abc import Callable

import requests

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.core.redact import mask, redact
from ghmetrics_dagster.core.settings import Settings

OK, WARN, FAIL = "ok  ", "note", "FAIL"


def _check_warehouse(settings: Settings, say) -> bool:
    url = warehouse.database_url(settings)
    where = "external" if settings.database_url else "embedded"
    applied = warehouse.migrate(url)
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select max(version) from public.ghmetrics_schema_migrations")
        version = cur.fetchone()[0]
    extra = f", applied {', '.join(applied)}" if applied else ""
    say(OK, f"warehouse ({where}): {warehouse.display_url(url)} schema {version}{extra}")
    return True


def _check_github(settings: Settings, say) -> bool:
    tokens = settings.github_tokens
    api = settings.github_api_url
    if not tokens:
        say(WARN, f"GitHub: GITHUB_TOKEN not set; `ghmetrics demo` uses the sandbox ({api} unused)")
        return True
    healthy = True
    for token in tokens:
        try:
            response = requests.get(
                f"{api}/rate_limit", headers={"Authorization": f"bearer {token}"}, timeout=10
            )
        except requests.RequestException as exc:
            say(FAIL, f"GitHub: {api} unreachable ({redact(type(exc).__name__, [token])}); check GHMETRICS_GITHUB_API_URL")
            return False
        if response.status_code == 401:
            say(FAIL, f"GitHub: token {mask(token)} is invalid or revoked; create a new one")
            healthy = False
            continue
        if response.status_code != 200:
            say(FAIL, f"GitHub: {api}/rate_limit answered HTTP {response.status_code}")
            healthy = False
            continue
        core = response.json().get("resources", {}).get("core", {})
        say(OK, f"GitHub: token {mask(token)} works, {core.get('remaining', '?')}/{core.get('limit', '?')} REST calls left")
    return healthy


def _check_mlflow(settings: Settings, say) -> bool:
    uri = settings.mlflow_tracking_uri()
    try:
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure means the store is unusable
        say(FAIL, f"MLflow: {redact(uri)} not usable ({redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}); check MLFLOW_TRACKING_URI")
        return False
    say(OK, f"MLflow: {redact(uri)}")
    return True


def _check_llm(settings: Settings, say) -> bool:
    configured = False
    llm = settings.llm
    for name, key, base in (
        ("OpenAI", llm.openai_api_key, llm.openai_base_url),
        ("Anthropic", llm.anthropic_api_key, llm.anthropic_base_url),
    ):
        if key:
            configured = True
            say(OK, f"LLM: {name} key {mask(key)} ({base or 'default endpoint'})")
    if not configured:
        say(WARN, "LLM: no provider key set; summaries use the rule-based writer")
    return True


def run_checks(settings: Settings, echo: Callable[[str], None]) -> int:
    """Runs every check, printing one line each; returns the number of problems."""

    def say(level: str, message: str) -> None:
        echo(f"[{level}] {message}")

    problems = 0
    for check in (_check_warehouse, _check_github, _check_mlflow, _check_llm):
        try:
            healthy = check(settings, say)
        except Exception as exc:  # noqa: BLE001 - report and continue with the next check
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            say(FAIL, redact(first, list(settings.github_tokens)))
            healthy = False
        problems += 0 if healthy else 1
    return problems
