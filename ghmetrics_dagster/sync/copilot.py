"""GitHub Copilot usage metrics reports -> raw.copilot_org_days and raw.copilot_user_days.

Per organisation (docs/contracts.md, "Copilot usage metrics"): the 28-day reports
(`organization-28-day/latest`, `users-28-day/latest`) cover the recent window in one call each;
the days between the last stored day and that window are read with the 1-day reports
(`?day=`). The first run reads `first_run_days` days back. Each report answers with signed
`download_links` to NDJSON files, downloaded without the API token (`GitHubClient.download`).
A day's rows are replaced in one transaction whenever a report covers it, so a run repeated
stores the same rows.

An organisation whose reports answer 403 (no permission) or 404 (Copilot not enabled, its
usage-metrics policy off, or no report yet) gets a one-line reason in its result; the other
organisations continue.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable

import psycopg2.extras

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.github import errors
from ghmetrics_dagster.github.client import GitHubClient

REPORTS_PATH = "orgs/{org}/copilot/metrics/reports/"
FIRST_RUN_DAYS = 90
MAX_GAP_DAYS = 365  # GitHub keeps a year of reports

NOT_ENABLED = ("Copilot usage metrics are not available (404): Copilot is not enabled for the organisation, "
               "its 'Copilot usage metrics' policy is off, or no report exists yet")
NO_PERMISSION = ("Copilot usage metrics are not available (403): the token needs the 'manage_billing:copilot' or "
                 "'read:org' scope (classic), or the 'Organization Copilot metrics' read permission (fine-grained), "
                 "of an organisation owner or billing manager")


@dataclasses.dataclass
class OrganizationResult:
    org: str
    status: str = "ok"  # ok | unavailable (403/404) | failed
    message: str | None = None  # one line when not ok
    org_days: int = 0  # organisation-days written
    user_days: int = 0  # user-day rows written
    days_fetched_one_by_one: int = 0  # gap days read with the 1-day reports
    first_day: str | None = None
    last_day: str | None = None

    def summary(self) -> str:
        if self.status != "ok":
            return f"{self.org}: {self.message}"
        span = f" ({self.first_day} to {self.last_day})" if self.first_day else ""
        return (f"{self.org}: {self.org_days} organisation-days and {self.user_days} user-days of Copilot usage{span}, "
                f"{self.days_fetched_one_by_one} read one day at a time")


def _parse_ndjson(body: bytes, where: str) -> list[dict]:
    records = []
    for number, line in enumerate(body.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise errors.MalformedResponse(f"{where}: line {number} of a report file is not JSON") from None
        if not isinstance(record, dict):
            raise errors.MalformedResponse(f"{where}: line {number} of a report file is not an object")
        records.append(record)
    return records


def _report(client: GitHubClient, org: str, report: str, day: dt.date | None = None) -> tuple[dict, list[dict]]:
    """(the API's answer, the records of its files)."""
    params = {"day": day.isoformat()} if day else None
    answer = client.rest(REPORTS_PATH.format(org=org) + report, params).data
    if not isinstance(answer, dict) or not isinstance(answer.get("download_links"), list):
        raise errors.MalformedResponse(f"{org}: the {report} report answer has no download_links")
    records = []
    for link in answer["download_links"]:
        records += _parse_ndjson(client.download(link), f"{org} {report}")
    return answer, records


def _org_days(records: list[dict]) -> dict[dt.date, dict]:
    """Organisation records by day: a 28-day file's records hold `day_totals`; a 1-day file's
    record is the day itself."""
    days = {}
    for record in records:
        for total in record["day_totals"] if "day_totals" in record else [record]:
            days[dt.date.fromisoformat(total["day"])] = total
    return days


def _user_days(records: list[dict]) -> dict[dt.date, list[dict]]:
    days: dict[dt.date, list[dict]] = {}
    for record in records:
        days.setdefault(dt.date.fromisoformat(record["day"]), []).append(record)
    return days


def _store(url: str, org: str, days: list[dt.date], org_days: dict[dt.date, dict],
           user_days: dict[dt.date, list[dict]]) -> tuple[int, int]:
    """Replaces the rows of `days` (every day the reports cover, active or not)."""
    if not days:
        return 0, 0
    org_rows = [(org, day, psycopg2.extras.Json(org_days[day])) for day in days if day in org_days]
    user_rows = {(org, day, r["user_login"]): psycopg2.extras.Json(r) for day in days for r in user_days.get(day, [])}
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("delete from raw.copilot_user_days where org = %s and day = any(%s)", (org, days))
        warehouse.upsert(cur, "raw.copilot_org_days", ["org", "day", "data"], ["org", "day"], org_rows)
        warehouse.upsert(cur, "raw.copilot_user_days", ["org", "day", "user_login", "data"],
                         ["org", "day", "user_login"], [(*key, data) for key, data in user_rows.items()])
    return len(org_rows), len(user_rows)


def last_stored_day(url: str, org: str) -> dt.date | None:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select max(day) from raw.copilot_org_days where org = %s", (org,))
        return cur.fetchone()[0]


def ingest_organization(url: str, client: GitHubClient, org: str, *, first_run_days: int = FIRST_RUN_DAYS,
                        progress: Callable[[str], None] | None = None) -> OrganizationResult:
    """Fetches and stores the organisation's Copilot usage reports; never raises for one
    organisation's refusal or failure (the result says what happened)."""
    result = OrganizationResult(org)
    try:
        _ingest(url, client, org, first_run_days, result, progress)
    except errors.NotFound:
        result.status, result.message = "unavailable", NOT_ENABLED
    except errors.Forbidden:
        result.status, result.message = "unavailable", NO_PERMISSION
    except (errors.GitHubError, ValueError, KeyError) as exc:
        result.status = "failed"
        result.message = "Copilot usage metrics failed: " + " ".join(client.redact(str(exc)).split())[:300]
    return result


def _ingest(url: str, client: GitHubClient, org: str, first_run_days: int, result: OrganizationResult,
            progress: Callable[[str], None] | None) -> None:
    window, org_records = _report(client, org, "organization-28-day/latest")
    _, user_records = _report(client, org, "users-28-day/latest")
    start = dt.date.fromisoformat(window["report_start_day"])
    end = dt.date.fromisoformat(window["report_end_day"])
    last = last_stored_day(url, org)
    gap_from = last + dt.timedelta(days=1) if last else start - dt.timedelta(days=max(0, first_run_days - 28))
    gap_from = max(gap_from, start - dt.timedelta(days=MAX_GAP_DAYS))
    day = gap_from
    while day < start:
        try:
            _, day_org = _report(client, org, "organization-1-day", day)
            _, day_users = _report(client, org, "users-1-day", day)
        except errors.NotFound:  # no report for that day (before the organisation's first)
            day += dt.timedelta(days=1)
            continue
        written = _store(url, org, [day], _org_days(day_org), _user_days(day_users))
        result.org_days += written[0]
        result.user_days += written[1]
        result.days_fetched_one_by_one += 1
        result.first_day = result.first_day or day.isoformat()
        day += dt.timedelta(days=1)
    if progress and result.days_fetched_one_by_one:
        progress(f"{org}: {result.days_fetched_one_by_one} days before the 28-day window read one by one")
    org_days = _org_days(org_records)
    window_days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    covered = [d for d in window_days if d in org_days]
    written = _store(url, org, covered, org_days, _user_days(user_records))
    result.org_days += written[0]
    result.user_days += written[1]
    if covered:
        result.first_day = result.first_day or covered[0].isoformat()
        result.last_day = covered[-1].isoformat()


def ingest_organizations(url: str, client_for: Callable[[str], GitHubClient], orgs: list[str], *,
                         first_run_days: int = FIRST_RUN_DAYS,
                         progress: Callable[[str], None] | None = None) -> list[OrganizationResult]:
    """`ingest_organization` for each organisation, with the client `client_for(org)` gives."""
    results = []
    for org in orgs:
        result = ingest_organization(url, client_for(org), org, first_run_days=first_run_days, progress=progress)
        if progress:
            progress(result.summary())
        results.append(result)
    return results
