"""Refresh waves: logins coalesce into serialized waves, failures heal, the UI sees every run.

Real things throughout: the sandbox over HTTP, Postgres for the warehouse and for Dagster's
storage (configured by the repository's own dagster.yaml), real dbt, runs launched from the
code location by Dagster's run launcher, and, for the login storm, the Dagster daemon.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
from conftest import env_defs, env_resources, env_settings

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.cli import pipeline
from ghmetrics_dagster.defs.partitions import users_partitions
from ghmetrics_dagster.defs.users import user_login_sensor
from ghmetrics_dagster.refresh import waves
from ghmetrics_dagster.refresh.waves import JOB_NAME, WAVE_TAG, wave_tags
from ghmetrics_dagster.sandbox import generator, truth
from ghmetrics_dagster.sandbox.server import run_sandbox

ROOT = Path(__file__).resolve().parent.parent
DBT_STEP = "ghmetrics_dbt_models"


# --- pure rules ------------------------------------------------------------------------------


def test_a_wave_covers_a_range_where_most_users_asked():
    users = list("abcdefghij")
    assert waves.plan_wave(users, set()) is None
    plan = waves.plan_wave(users, {"c"})
    assert (plan.first, plan.last, plan.pending) == ("c", "c", ("c",))
    # b, d and e asked; c in between is refreshed too (3 of 4 asked)
    assert waves.plan_wave(users, {"b", "d", "e"}).users == ("b", "c", "d", "e")
    # j is too far away: it waits for the next wave
    plan = waves.plan_wave(users, {"a", "b", "j"})
    assert plan.users == ("a", "b") and plan.pending == ("a", "b")
    # everyone asked: one wave for everyone
    assert waves.plan_wave(users, set(users)).users == tuple(users)
    assert len(waves.plan_wave(users, set(users), max_users=4).users) == 4


def test_a_burst_of_logins_is_held_briefly_to_share_one_wave():
    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    ago = lambda s: now - dt.timedelta(seconds=s)  # noqa: E731
    assert "waiting for more logins" in waves.hold_for_more_logins([ago(5), ago(1.5), ago(1)], now)
    assert waves.hold_for_more_logins([ago(0.5)], now) is None  # a lone login never waits
    assert waves.hold_for_more_logins([ago(5), ago(3), ago(2.5)], now) is None  # the burst has settled
    assert waves.hold_for_more_logins([ago(12), ago(1), ago(0.5)], now) is None  # nobody waits over 10 s


@pytest.fixture(autouse=True)
def no_settling(monkeypatch):
    """The sensor tests tick right after the logins; a burst's short hold is tested above."""
    monkeypatch.setenv("GHMETRICS_WAVE_SETTLE_SECONDS", "0")


def test_retry_waits_double_up_to_an_hour():
    assert waves.retry_delay(0) == dt.timedelta(0)
    assert [waves.retry_delay(n, 60).total_seconds() for n in (1, 2, 3)] == [60, 120, 240]
    assert waves.retry_delay(20, 60) == dt.timedelta(hours=1)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def dagster_instance(dagster_storage):
    """The repository's dagster.yaml (run queue, pools, run monitoring) on a scratch database."""
    with dg.DagsterInstance.get() as instance:
        yield instance


@pytest.fixture
def organisation():
    return generator.generate(seed=11, repos=4, prs_per_repo=30, weeks=12, users=12)


@pytest.fixture
def sandbox(organisation, monkeypatch):
    with run_sandbox(org=organisation) as handle:
        monkeypatch.setenv("GHMETRICS_GITHUB_API_URL", handle.rest_url)
        monkeypatch.setenv("GHMETRICS_GITHUB_GRAPHQL_URL", handle.graphql_url)
        monkeypatch.setenv("GITHUB_TOKEN", handle.tokens[0])
        yield handle


def _people(org, count: int) -> list[str]:
    people = sorted(login for login, repos in org.memberships.items() if repos and not org.users[login].is_bot)
    assert len(people) >= count, f"the organisation has only {len(people)} people with repositories"
    return people[:count]


def _register(url: str, org, logins: list[str]) -> None:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        for login in logins:
            cur.execute("insert into app.users (login) values (%s) on conflict do nothing", (login,))
            for repo in org.memberships[login]:
                cur.execute("insert into app.user_repositories values (%s, %s) on conflict do nothing", (login, repo))


def _login(url: str, logins: list[str]) -> None:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.executemany("insert into app.user_logins (login) values (%s)", [(login,) for login in logins])


def _fresh_users(url: str, since: dt.datetime) -> set[str]:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select distinct login from app.summaries where generated_at >= %s", (since,))
        return {row[0] for row in cur.fetchall()}


def _now(url: str) -> dt.datetime:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select now()")
        return cur.fetchone()[0]


def _dbt_intervals(instance, run_ids) -> list[tuple[float, float]]:
    spans = []
    for run_id in run_ids:
        for stats in instance.get_run_step_stats(run_id):
            if stats.step_key == DBT_STEP and stats.start_time and stats.end_time:
                spans.append((stats.start_time, stats.end_time))
    return sorted(spans)


def _assert_no_overlap(spans) -> None:
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, f"two dbt builds overlapped: {spans}"


def _wait_finished(instance, run_ids, timeout_s: float) -> list:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = [instance.get_run_by_id(run_id) for run_id in run_ids]
        if all(run.is_finished for run in runs):
            return runs
        time.sleep(1)
    raise AssertionError(f"runs did not finish within {timeout_s} s: {[r.status for r in runs]}")


# --- runs ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_waves_launched_together_never_run_dbt_at_once(dagster_instance, sandbox, database_url):
    """Both runs bypass the run queue (launched directly): the `dbt` pool alone keeps their dbt
    builds apart, and both succeed."""
    org = sandbox.org
    first, second = _people(org, 2)
    _register(database_url, org, [first, second])
    instance = pipeline.prepare_instance(env_settings())
    pipeline.ensure_user_partitions(instance, [first, second])
    with pipeline.code_location(instance, env_settings()) as served:
        runs = [pipeline.create_wave_run(instance, served, [login], "test") for login in (first, second)]
        for run in runs:
            instance.launch_run(run.run_id, served[0])
        finished = _wait_finished(instance, [run.run_id for run in runs], timeout_s=420)
    assert [run.status for run in finished] == [dg.DagsterRunStatus.SUCCESS] * 2
    spans = _dbt_intervals(instance, [run.run_id for run in runs])
    assert len(spans) == 2
    _assert_no_overlap(spans)
    assert _fresh_users(database_url, dt.datetime.fromtimestamp(0, dt.UTC)) == {first, second}


@pytest.mark.slow
def test_a_cli_run_is_listed_under_the_job_with_its_origin(dagster_instance, sandbox, database_url):
    from click.testing import CliRunner
    from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

    from ghmetrics_dagster.cli import main

    org = sandbox.org
    (login,) = _people(org, 1)
    _register(database_url, org, [login])
    result = CliRunner().invoke(main, ["run", "--user", login])
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if line.strip()]  # the bar is on stderr
    assert line.startswith("run ") and line.endswith(f"succeeded for {login}")
    run_id = line.split()[1]
    run = dagster_instance.get_run_by_id(run_id)
    origin = run.remote_job_origin
    assert origin is not None and origin.job_name == JOB_NAME
    assert origin.repository_origin.code_location_origin.location_name == "ghmetrics_dagster.definitions"
    # What the job's Runs tab asks for: the job name and the repository label.
    label = f"{origin.repository_origin.repository_name}@{origin.repository_origin.code_location_origin.location_name}"
    listed = dagster_instance.get_runs(filters=dg.RunsFilter(job_name=JOB_NAME, tags={REPOSITORY_LABEL_TAG: label}))
    assert [r.run_id for r in listed] == [run_id]
    assert run.tags["dagster/partition"] == login and run.tags["ghmetrics/trigger"] == "cli"


@pytest.mark.slow
def test_a_failed_cli_run_is_one_line_naming_the_step(dagster_instance, sandbox, database_url):
    from click.testing import CliRunner

    from ghmetrics_dagster.cli import main

    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("insert into app.users (login) values ('nobody-here')")
        cur.execute("insert into app.user_repositories values ('nobody-here', 'acme/does-not-exist')")
    result = CliRunner().invoke(main, ["run", "--user", "nobody-here"])
    assert result.exit_code == 1
    (line,) = [line for line in result.stderr.replace("\r", "\n").splitlines() if "rror" in line]
    assert line.lower().startswith("error: run ") and "failed for nobody-here: github_raw_tables:" in line
    assert "acme/does-not-exist" in line and "Traceback" not in result.output


@pytest.mark.slow
def test_a_transient_failure_is_retried_and_the_user_becomes_fresh(sandbox, database_url, tmp_path):
    """GitHub answers 5xx to everything at first: the ingestion step fails, its RetryPolicy
    retries it once GitHub is back, and the run ends with the user's summary."""
    from dagster._core.utils import make_new_run_id

    from ghmetrics_dagster.defs.transform import prepare_dbt_project

    prepare_dbt_project()
    defs = env_defs()

    org = sandbox.org
    (login,) = _people(org, 1)
    _register(database_url, org, [login])
    sandbox.set_faults(rate_5xx=1.0)
    run_id = make_new_run_id()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions(users_partitions.name, [login])

        def heal_after_first_failure():
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY).records
                if records:
                    sandbox.set_faults(rate_5xx=0.0)
                    return
                time.sleep(0.5)

        healer = threading.Thread(target=heal_after_first_failure, daemon=True)
        healer.start()
        result = defs.resolve_job_def(JOB_NAME).execute_in_process(
            instance=instance, partition_key=login, run_id=run_id, raise_on_error=False
        )
        healer.join(timeout=1)
        retries = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY).records
    assert result.success
    assert [r.event_log_entry.step_key for r in retries] == ["github_raw_tables"]
    assert login in _fresh_users(database_url, dt.datetime.fromtimestamp(0, dt.UTC))


def test_a_failed_wave_is_retried_by_the_sensor_with_backoff(database_url, tmp_path, monkeypatch):
    from dagster._core.test_utils import create_run_for_test

    _register_plain(database_url, ["ada"])
    _login(database_url, ["ada"])
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        with dg.build_sensor_context(resources=env_resources(), instance=instance) as context:
            first = user_login_sensor(context)
        (request,) = first.run_requests
        instance.add_dynamic_partitions(users_partitions.name, ["ada"])
        # The wave's run fails (as a run whose dbt build hit a lost database would).
        create_run_for_test(instance, job_name=JOB_NAME, tags=request.tags, status=dg.DagsterRunStatus.FAILURE)

        with dg.build_sensor_context(resources=env_resources(), instance=instance, cursor=first.cursor) as context:
            second = user_login_sensor(context)
        assert second.run_requests == []
        reason = second.skip_reason.skip_message
        assert "ada: retry 2 in 1 min" in reason and "ended failure" in reason
        # The dashboard learns why ada's figures are not fresh yet.
        with warehouse.connect(database_url) as conn, conn.cursor() as cur:
            cur.execute("select attempts, retry_at - failed_at, reason from app.refresh_failures where login = 'ada'")
            assert cur.fetchone() == (1, dt.timedelta(seconds=60), f"run {request_run_id(instance)} ended failure")

        # Once the backoff has passed, the same user is refreshed again without a new login.
        monkeypatch.setenv("GHMETRICS_RETRY_BASE_SECONDS", "0")
        with dg.build_sensor_context(resources=env_resources(), instance=instance, cursor=second.cursor) as context:
            third = user_login_sensor(context)
        (retry,) = third.run_requests
        assert retry.partition_key == "ada" and retry.tags[WAVE_TAG] != request.tags[WAVE_TAG]


def request_run_id(instance) -> str:
    (run,) = instance.get_runs(filters=dg.RunsFilter(job_name=JOB_NAME))
    return run.run_id


def test_a_run_orphaned_by_a_killed_process_does_not_block_the_next_login(database_url, tmp_path):
    from dagster._core.events import EngineEventData
    from dagster._core.test_utils import create_run_for_test

    _register_plain(database_url, ["ada"])
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions(users_partitions.name, ["ada"])
        # A wave whose run worker was killed: STARTED in storage, its process gone.
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        orphan = create_run_for_test(instance, job_name=JOB_NAME, tags=wave_tags(["ada"], "login"),
                                     status=dg.DagsterRunStatus.STARTED)
        instance.report_engine_event(f"Started process for run (pid: {worker.pid}).", orphan,
                                     EngineEventData.in_process(worker.pid))
        worker.kill()
        worker.wait()

        _login(database_url, ["ada"])
        with dg.build_sensor_context(resources=env_resources(), instance=instance) as context:
            result = user_login_sensor(context)
        (request,) = result.run_requests
        assert request.partition_key == "ada"
        assert instance.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_live_run_blocks_its_user_and_the_login_command_says_so(database_url, tmp_path):
    from dagster._core.events import EngineEventData
    from dagster._core.test_utils import create_run_for_test

    from ghmetrics_dagster.defs.users import login_outcome

    _register_plain(database_url, ["ada", "bo"])
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions(users_partitions.name, ["ada", "bo"])
        assert login_outcome(instance, database_url, "ada", 60, dt.timedelta(minutes=15)).startswith("refreshed now")
        # A live worker: its command line names dagster, as `dagster api execute_run`'s does.
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "dagster"])
        try:
            run = create_run_for_test(instance, job_name=JOB_NAME, tags=wave_tags(["ada"], "login"),
                                      status=dg.DagsterRunStatus.STARTED)
            instance.report_engine_event(f"Started process for run (pid: {worker.pid}).", run,
                                         EngineEventData.in_process(worker.pid))
            assert login_outcome(instance, database_url, "ada", 60, dt.timedelta(minutes=15)).startswith("a refresh is already running")
            _login(database_url, ["ada"])
            with dg.build_sensor_context(resources=env_resources(), instance=instance) as context:
                result = user_login_sensor(context)
            assert result.run_requests == []
            assert "ada: a refresh is already running" in result.skip_reason.skip_message
        finally:
            worker.kill()
            worker.wait()
        # A summary inside the TTL: the login is answered from cache.
        with warehouse.connect(database_url) as conn, conn.cursor() as cur:
            cur.execute("insert into app.summaries (login, provider, text, grounded) values ('bo', 'rules', 'x', true)")
        assert login_outcome(instance, database_url, "bo", 60, dt.timedelta(minutes=15)).startswith("skipped: refreshed 0 s ago (TTL 60 min)")


def _register_plain(url: str, logins: list[str]) -> None:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        for login in logins:
            cur.execute("insert into app.users (login) values (%s) on conflict do nothing", (login,))


@pytest.mark.slow
def test_a_login_storm_through_the_run_queue_leaves_everyone_fresh(dagster_instance, sandbox, database_url, organisation):
    """Ten logins at once with the real daemon: the sensor coalesces them into waves through the
    queued run coordinator; no run fails, dbt never runs twice at once, every user ends fresh,
    and the marts equal the sandbox's ground truth."""
    from test_dbt_models import load_users
    from test_dbt_truth import MART_KEYS, compare_mart, read_marts

    people = _people(organisation, 10)
    load_users(database_url, organisation)  # everyone is registered (as the truth assumes); ten log in
    pipeline.prepare_instance(env_settings())  # manifest and MLflow store ready, as `ghmetrics ui` does
    env = {**os.environ, "GHMETRICS_DATABASE_URL": database_url}
    log = open(Path(os.environ["DAGSTER_HOME"]) / "daemon.log", "w")
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        since = _now(database_url)
        _login(database_url, people)
        deadline = time.monotonic() + 480
        while time.monotonic() < deadline and _fresh_users(database_url, since) != set(people):
            assert daemon.poll() is None, "the daemon stopped"
            time.sleep(2)
        assert _fresh_users(database_url, since) == set(people)
        # A wave writes its last summary just before its step ends: stopping the daemon (and
        # its run workers) now would interrupt it. Let the waves finish first.
        waves_run = dagster_instance.get_runs(filters=dg.RunsFilter(job_name=JOB_NAME))
        _wait_finished(dagster_instance, [run.run_id for run in waves_run], 120)
    finally:
        os.killpg(daemon.pid, 15)
        daemon.wait(timeout=60)
        log.close()

    instance = dagster_instance
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=JOB_NAME))
    failures = [pipeline.failure_reason(instance, run.run_id) for run in runs if run.status != dg.DagsterRunStatus.SUCCESS]
    assert runs and not failures, failures
    assert all(run.tags.get("ghmetrics/trigger") == "login" for run in runs)
    assert len(runs) <= 3, f"{len(runs)} waves for one burst"
    _assert_no_overlap(_dbt_intervals(instance, [run.run_id for run in runs]))

    expected = truth.compute(organisation)
    actual = read_marts(database_url)
    problems = [line for name in MART_KEYS for line in compare_mart(name, expected[name], actual[name])]
    assert not problems, "\n".join(problems[:20])
