"""Refresh waves: the job, the login sensor that coalesces logins into waves, the nightly wave.

A wave is one `user_refresh` run over a contiguous range of the `users` partitions: it syncs
the users' repositories (each repository once), builds the marts once, takes the training
decisions once, then scores and summarises every user of the range. Why one run and not a
run per user: a run costs a process that loads the definitions (seconds of CPU), and the
marts must be built once per wave anyway; with a run per user, 100 logins on 2 cores spent
most of their time starting processes and queueing behind each other's `dbt build`.

Waves never overlap: the run queue admits one run tagged `ghmetrics/wave` at a time
(dagster.yaml), and inside any run the dbt build and each training hold a pool slot of a
pool limited to one. The sensor launches the next wave when the previous one has ended, so a
burst of logins coalesces into a few waves.

The sensor keeps its state in its cursor (JSON): the last login row read, the users waiting
for a refresh, the waves it launched, and the failures of each user (retried with backoff).
A user is fresh once `app.summaries` holds a summary generated after their login.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable

import dagster as dg

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.defs.partitions import users_partitions
from ghmetrics_dagster.defs.resources import RefreshPolicyResource, WarehouseResource
from ghmetrics_dagster.refresh import waves
from ghmetrics_dagster.refresh.waves import JOB_NAME, RANGE_END_TAG, RANGE_START_TAG, WAVE_TAG, wave_tags
from ghmetrics_dagster.warehouse import app_data

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

user_refresh_job = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.all(),  # partitioned by `users`, as its partitioned assets are
    # The steps form a chain and the machine may have 2 cores: one process per wave instead of
    # one per step saves a Dagster import and definitions load (about 5 s of CPU) per step.
    executor_def=dg.in_process_executor,
    description="A refresh wave for one user or a range of users: sync their repositories, build "
    "the marts once, take the training decisions, then score and summarise each user.",
)




def run_users(run: dg.DagsterRun, ordered_users: list[str]) -> list[str]:
    """The users a `user_refresh` run covers (its partition, or its partition range)."""
    tags = run.tags
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start in ordered_users and end in ordered_users:
        return ordered_users[ordered_users.index(start) : ordered_users.index(end) + 1]
    return []


def last_summaries(url: str, logins: Iterable[str]) -> dict[str, dt.datetime]:
    """When each user's newest summary was generated: what "fresh" means to a user."""
    logins = list(logins)
    if not logins:
        return {}
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        return app_data.last_summaries(cur, logins)


def _process_gone(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """For runs launched on this machine: the run worker's pid (from its engine event) is dead."""
    if type(instance.run_launcher).__name__ != "DefaultRunLauncher":
        return False
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=5
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        pid = getattr(event.event_specific_data, "metadata", {}).get("pid") if event else None
        if pid is not None:
            # The launcher starts run workers with multiprocessing, so their command line does
            # not name dagster; a pid that no longer exists is the evidence.
            return not os.path.exists(f"/proc/{int(pid.value)}")
    return False


def orphan_reason(instance: dg.DagsterInstance, run: dg.DagsterRun, now: dt.datetime,
                  orphan_after: dt.timedelta) -> str | None:
    """Why an in-progress run is in fact dead (its process is gone, or it wrote nothing for too
    long), or None while it is alive. Queued runs are never orphans: the queue owns them."""
    if run.status not in (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED):
        return None
    if _process_gone(instance, run):
        return "its process is gone"
    records = instance.get_records_for_run(run.run_id, ascending=False, limit=1).records
    if records:
        last = dt.datetime.fromtimestamp(records[0].event_log_entry.timestamp, tz=dt.UTC)
        if now - last > orphan_after:
            return f"no event for {waves.describe_age((now - last).total_seconds())}"
    return None


def active_waves(instance: dg.DagsterInstance, now: dt.datetime, orphan_after: dt.timedelta,
                 log=None) -> list[dg.DagsterRun]:
    """In-progress `user_refresh` runs; an orphaned one is marked failed (with the reason) and left out."""
    alive = []
    for run in instance.get_runs(filters=dg.RunsFilter(job_name=JOB_NAME, statuses=IN_PROGRESS)):
        reason = orphan_reason(instance, run, now, orphan_after)
        if reason:
            instance.report_run_failed(run, f"orphaned refresh: {reason}; its users are refreshed again")
            if log:
                log.warning(f"run {run.run_id} marked failed: {reason}")
            continue
        alive.append(run)
    return alive


def _new_logins(url: str, after_id: int) -> list[tuple[int, str, dt.datetime]]:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        return app_data.logins_after(cur, after_id)


def _load_state(cursor: str | None) -> dict:
    if cursor and cursor.startswith("{"):
        state = json.loads(cursor)
    else:  # the cursor of earlier versions: the last login id
        state = {"login_id": int(cursor or 0)}
    for key in ("pending", "failures", "waves"):
        state.setdefault(key, {})
    return state


def _ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _publish_failures(url: str, failures: dict, base_seconds: float) -> None:
    """Mirrors the users waiting for a retry into app.refresh_failures (the dashboard reads it)."""
    rows = [
        (login, count, _ts(failed_at), _ts(failed_at) + waves.retry_delay(count, base_seconds), why[:300])
        for login, (count, failed_at, why) in failures.items()
    ]
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        app_data.publish_refresh_failures(cur, rows)


def _settle_waves(instance: dg.DagsterInstance, url: str, state: dict, now: dt.datetime,
                  orphan_after: dt.timedelta, log) -> list[dg.DagsterRun]:
    """Folds finished waves into the state (fresh users leave `pending`, the others count a
    failure); returns the waves still running."""
    running = {run.tags.get(WAVE_TAG): run for run in active_waves(instance, now, orphan_after, log)}
    for wave_id, wave in list(state["waves"].items()):
        if wave_id in running:
            continue
        runs = instance.get_runs(filters=dg.RunsFilter(tags={WAVE_TAG: wave_id}), limit=1)
        if not runs and now - _ts(wave["at"]) < dt.timedelta(minutes=5):
            continue  # requested but not created yet
        reason = "the run was never created"
        if runs:
            reason = f"run {runs[0].run_id} ended {runs[0].status.value.lower()}"
        fresh = last_summaries(url, wave["users"])
        for login in wave["users"]:
            since = state["pending"].get(login)
            if since is None:
                continue
            if login in fresh and fresh[login] >= _ts(since):
                state["pending"].pop(login)
                state["failures"].pop(login, None)
            else:
                count = state["failures"].get(login, [0])[0] + 1
                state["failures"][login] = [count, now.isoformat(), reason]
        del state["waves"][wave_id]
    return list(running.values())


@dg.sensor(
    job=user_refresh_job,
    # The daemon visits sensors every 5 s; asking for 4 keeps a tick on every visit.
    minimum_interval_seconds=4,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Turns logins (rows of app.user_logins) into refresh waves: one wave at a time, "
    "covering every user who logged in since the last one, unless refreshed within "
    "GHMETRICS_REFRESH_TTL_MINUTES (default 60). Users of a failed wave are retried with backoff.",
)
def user_login_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource,
                      refresh_policy: RefreshPolicyResource):
    now = dt.datetime.now(dt.UTC)
    url = warehouse.url()
    orphan_after = dt.timedelta(minutes=refresh_policy.orphan_after_minutes)
    state = _load_state(context.cursor)
    instance = context.instance
    known = list(instance.get_dynamic_partitions(users_partitions.name))
    rows = _new_logins(url, state["login_id"])
    unseen: list[str] = []
    reasons: list[str] = []
    before_failures = json.loads(json.dumps(state["failures"]))
    running = _settle_waves(instance, url, state, now, orphan_after, context.log)
    in_flight = {login for run in running for login in run_users(run, known)}

    if rows:
        state["login_id"] = rows[-1][0]
        latest: dict[str, dt.datetime] = {}
        for _, login, at in rows:
            latest[login] = at
        fresh = last_summaries(url, latest)
        ttl = dt.timedelta(minutes=refresh_policy.ttl_minutes)
        for login, at in latest.items():
            if login not in known and login not in unseen:
                unseen.append(login)
            if login in state["pending"]:
                continue
            if login in in_flight:
                reasons.append(f"{login}: a refresh is already running")
            elif login in fresh and now - fresh[login] < ttl:
                age = waves.describe_age((now - fresh[login]).total_seconds())
                reasons.append(f"{login}: refreshed {age} ago (TTL {ttl.total_seconds() / 60:g} min)")
            else:
                state["pending"][login] = at.isoformat()
    ordered = known + unseen

    eligible = set()
    for login in state["pending"]:
        count, failed_at, why = state["failures"].get(login, [0, None, ""])
        wait_until = _ts(failed_at) + waves.retry_delay(count, refresh_policy.retry_base_seconds) if failed_at else now
        if wait_until > now:
            reasons.append(f"{login}: retry {count + 1} in {waves.describe_age((wait_until - now).total_seconds())} "
                           f"(last try: {why})")
        else:
            eligible.add(login)

    if state["failures"] != before_failures:
        _publish_failures(url, state["failures"], refresh_policy.retry_base_seconds)

    plan = None
    if not running and eligible:
        hold = waves.hold_for_more_logins([_ts(state["pending"][login]) for login in eligible], now,
                                          refresh_policy.settle_seconds)
        if hold:
            reasons.append(hold)
        else:
            plan = waves.plan_wave(ordered, eligible)
    if running:
        waiting = [login for login in state["pending"] if login not in in_flight]
        reasons.append(f"wave {running[0].run_id[:8]} is refreshing {len(in_flight)} user(s)"
                       + (f"; {len(waiting)} wait for the next" if waiting else ""))
    run_requests = []
    if plan:
        wave_id = waves.new_wave_id()
        state["waves"][wave_id] = {"users": list(plan.users), "at": now.isoformat()}
        run_requests.append(dg.RunRequest(
            run_key=f"wave-{wave_id}",
            partition_key=plan.first if len(plan.users) == 1 else None,
            tags=wave_tags(plan.users, "login", wave_id),
        ))
        context.log.info(f"wave {wave_id}: {len(plan.users)} user(s) from {plan.first} to {plan.last}, "
                         f"{len(plan.pending)} of them logged in")
    for reason in reasons:
        context.log.info(f"skipped {reason}")
    return dg.SensorResult(
        run_requests=run_requests,
        skip_reason=None if run_requests else ("; ".join(reasons) or "no new logins"),
        dynamic_partitions_requests=[users_partitions.build_add_request(unseen)] if unseen else [],
        cursor=json.dumps(state, sort_keys=True),
    )


@dg.schedule(
    job=user_refresh_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="The nightly wave: every user's repositories once, a full refresh of the marts "
    "(late corrections to old weeks land within a day), one training decision, every user scored.",
)
def nightly_refresh_schedule(context: dg.ScheduleEvaluationContext):
    logins = context.instance.get_dynamic_partitions(users_partitions.name)
    if not logins:
        return dg.SkipReason("no users yet")
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return dg.RunRequest(
        run_key=f"nightly-{day}",
        tags=wave_tags(logins, "nightly", f"nightly-{day}"),
        run_config=full_refresh_run_config(),
    )


def full_refresh_run_config() -> dict:
    from ghmetrics_dagster.defs.transform import DBT_ASSETS_NAME

    return {"ops": {DBT_ASSETS_NAME: {"config": {"full_refresh": True}}}}


def login_outcome(instance: dg.DagsterInstance, url: str, login: str, ttl: float, orphan_after: dt.timedelta,
                  now: dt.datetime | None = None) -> str:
    """What a login of `login` will lead to, in words (for `ghmetrics login`); `ttl` in minutes."""
    now = now or dt.datetime.now(dt.UTC)
    known = list(instance.get_dynamic_partitions(users_partitions.name))
    for run in active_waves(instance, now, orphan_after):
        if login in run_users(run, known):
            return f"a refresh is already running (run {run.run_id[:8]})"
    fresh = last_summaries(url, [login]).get(login)
    if fresh is not None and now - fresh < dt.timedelta(minutes=ttl):
        age = waves.describe_age((now - fresh).total_seconds())
        return f"skipped: refreshed {age} ago (TTL {ttl:g} min); cached metrics are current"
    return "refreshed now: the login sensor starts a wave within seconds"


defs = dg.Definitions(jobs=[user_refresh_job], sensors=[user_login_sensor], schedules=[nightly_refresh_schedule])
