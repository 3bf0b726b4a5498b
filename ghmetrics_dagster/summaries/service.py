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


@dataclasses.dataclass
class UserSummary:
    data: SummaryInput
    result: SummaryResult
    summary_id: int
    html_path: Path
    json_path: Path


def save_summary(conn, result: SummaryResult, run_id: str | None = None) -> tuple[int, dt.datetime]:
    with conn.cursor() as cur:
        cur.execute(
            "insert into app.summaries (login, provider, model, text, input_tokens, output_tokens, cost_usd,"
            " latency_ms, cache_hit, grounded, run_id) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " returning id, generated_at",
            (
                result.login,
                result.provider,
                result.model,
                result.text,
                result.input_tokens,
                result.output_tokens,
                result.cost_usd,
                result.latency_ms,
                result.cache_hit,
                result.grounded,
                run_id,
            ),
        )
        return cur.fetchone()


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
            if cur.fetchone()[0] is not None:
                cur.execute(
                    "select u.login from app.users u where exists (select 1 from marts.fct_dora_weekly d"
                    " where d.scope_type = 'user' and d.scope = u.login) order by u.login limit 1"
                )
                row = cur.fetchone()
            else:
                row = None
            if row is None:
                cur.execute("select login from app.users order by login limit 1")
                row = cur.fetchone()
        if row is None:
            raise ValueError("no users in app.users: add a user first (see `ghmetrics --help`), then run the demo again")
        login = row[0]
    outcome = summarise_user(login, url, router, reports_dir)
    return outcome.result.text, outcome.html_path
