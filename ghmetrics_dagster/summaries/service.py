"""One user's summary end to end: aggregates from Postgres -> router -> app.summaries -> report.

The Dagster asset and `ghmetrics demo` both call `summarise_user`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.summaries.aggregates import SummaryInput, load_summary_input
from ghmetrics_dagster.summaries.report import write_report
from ghmetrics_dagster.summaries.router import Router, SummaryResult
from ghmetrics_dagster.warehouse import app_data


@dataclasses.dataclass
class UserSummary:
    data: SummaryInput
    result: SummaryResult
    summary_id: int
    html_path: Path
    json_path: Path


def save_summary(conn, result: SummaryResult, run_id: str | None = None) -> tuple[int, dt.datetime]:
    with conn.cursor() as cur:
        return app_data.save_summary(cur, {
            "login": result.login,
            "provider": result.provider,
            "model": result.model,
            "text": result.text,
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "cost_usd": result.cost_usd,
            "latency_ms": result.latency_ms,
            "cache_hit": result.cache_hit,
            "grounded": result.grounded,
            "run_id": run_id,
        })


def summarise_user(
    login: str,
    url: str,
    router: Router,
    reports_dir: str | Path,
    run_id: str | None = None,
) -> UserSummary:
    """Writes a fresh summary for `login` into app.summaries and its report under reports_dir."""
    with warehouse.connect(url) as conn:
        data = load_summary_input(conn, login)
    result = router.summarise(data)
    # The row is committed only once its report is written: a failed write leaves neither.
    written: list[Path] = []
    try:
        with warehouse.connect(url) as conn:
            summary_id, generated_at = save_summary(conn, result, run_id)
            summary = result.to_dict() | {"id": summary_id, "generated_at": generated_at.isoformat(timespec="seconds")}
            written = list(write_report(data, summary, reports_dir))
    except BaseException:
        for path in written:  # the commit failed after the write
            path.unlink(missing_ok=True)
        raise
    html_path, json_path = written
    return UserSummary(data, result, summary_id, html_path, json_path)


def demo_summary(url: str, router: Router, reports_dir: str | Path, login: str | None = None) -> tuple[str, Path]:
    """For `ghmetrics demo`: summarise one user (the given one, else the first with weekly rows,
    else the first user) and return the summary text and the HTML report's path."""
    if login is None:
        with warehouse.connect(url) as conn, conn.cursor() as cur:
            cur.execute("select to_regclass('marts.fct_dora_weekly')")
            has_marts = cur.fetchone()[0] is not None
            login = app_data.first_user(cur, with_weekly_rows=True) if has_marts else None
            if login is None:
                login = app_data.first_user(cur, with_weekly_rows=False)
        if login is None:
            raise ValueError("no users in app.users: add a user first (see `ghmetrics --help`), then run the demo again")
    outcome = summarise_user(login, url, router, reports_dir)
    return outcome.result.text, outcome.html_path
