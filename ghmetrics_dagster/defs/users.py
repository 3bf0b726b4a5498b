"""Refreshing users: the job over a user's partition, the login sensor, the nightly schedule."""

import datetime as dt
import os

import dagster as dg

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.defs.partitions import users_partitions

USER_TAG = "ghmetrics/user"
# The asset whose latest materialisation for a user says when that user was last refreshed.
FRESHNESS_ASSET = dg.AssetKey(["raw", "pull_requests"])

# One run holds the user's ingestion partitions, the unpartitioned marts and the user's
# insights and summary (DESIGN.md section 6), so a login ends with everything fresh.
user_refresh_job = dg.define_asset_job(
    "user_refresh",
    selection=dg.AssetSelection.all(),
    partitions_def=users_partitions,
    description="Refresh one user: ingest their repositories, rebuild the marts, score and summarise.",
)


def refresh_ttl_minutes() -> float:
    return float(os.environ.get("GHMETRICS_REFRESH_TTL_MINUTES", "60"))


def _new_logins(after_id: int) -> list[tuple[int, str, dt.datetime]]:
    with warehouse.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "select id, login, logged_in_at from app.user_logins where id > %s order by id limit 1000",
            (after_id,),
        )
        return cur.fetchall()


def _last_refresh(instance: dg.DagsterInstance, login: str) -> dt.datetime | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=FRESHNESS_ASSET, asset_partitions=[login]), limit=1
    ).records
    if not records:
        return None
    return dt.datetime.fromtimestamp(records[0].timestamp, tz=dt.timezone.utc)


def _has_active_run(instance: dg.DagsterInstance, login: str) -> bool:
    active = instance.get_runs(
        filters=dg.RunsFilter(
            tags={USER_TAG: login},
            statuses=[
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.NOT_STARTED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
            ],
        ),
        limit=1,
    )
    return bool(active)


@dg.sensor(
    job=user_refresh_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Refreshes a user's partition when they log in (rows of app.user_logins), "
    "unless they were refreshed within GHMETRICS_REFRESH_TTL_MINUTES (default 60).",
)
def user_login_sensor(context: dg.SensorEvaluationContext):
    after_id = int(context.cursor or 0)
    rows = _new_logins(after_id)
    if not rows:
        return dg.SkipReason(f"no new logins after id {after_id}")

    # The newest login of each user decides; older rows in the same batch add nothing.
    latest: dict[str, int] = {}
    for login_id, login, _ in rows:
        latest[login] = login_id
    new_cursor = str(rows[-1][0])

    known = set(context.instance.get_dynamic_partitions(users_partitions.name))
    unseen = [login for login in latest if login not in known]
    ttl = refresh_ttl_minutes()
    now = dt.datetime.now(dt.timezone.utc)
    run_requests, reasons = [], []
    for login, login_id in latest.items():
        if login in known:
            if _has_active_run(context.instance, login):
                reasons.append(f"{login}: a refresh is already running")
                continue
            last = _last_refresh(context.instance, login)
            if last is not None and now - last < dt.timedelta(minutes=ttl):
                age = (now - last).total_seconds() / 60
                reasons.append(f"{login}: refreshed {age:.0f} min ago (TTL {ttl:g} min)")
                continue
        run_requests.append(
            dg.RunRequest(
                run_key=f"login-{login_id}",
                partition_key=login,
                tags={USER_TAG: login, "ghmetrics/trigger": "login", "ghmetrics/login_id": str(login_id)},
            )
        )
    for reason in reasons:
        context.log.info(f"skipped {reason}")
    return dg.SensorResult(
        run_requests=run_requests,
        skip_reason=None if run_requests else "; ".join(reasons),
        dynamic_partitions_requests=[users_partitions.build_add_request(unseen)] if unseen else [],
        cursor=new_cursor,
    )


@dg.schedule(
    job=user_refresh_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refreshes every user nightly, so metrics stay fresh for people who do not log in.",
)
def nightly_refresh_schedule(context: dg.ScheduleEvaluationContext):
    logins = context.instance.get_dynamic_partitions(users_partitions.name)
    if not logins:
        return dg.SkipReason("no users yet")
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [
        dg.RunRequest(run_key=f"nightly-{day}-{login}", partition_key=login, tags={USER_TAG: login, "ghmetrics/trigger": "nightly"})
        for login in logins
    ]


JOBS = [user_refresh_job]
SENSORS = [user_login_sensor]
SCHEDULES = [nightly_refresh_schedule]
