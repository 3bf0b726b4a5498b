"""Runs a user's pipeline through the shared Dagster instance, and serves the UI.

Used by the CLI (`ghmetrics run`, `ghmetrics demo`, `ghmetrics ui`); the Dagster definitions
themselves live in `definitions.py`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.cli import dagster_home
from ghmetrics_dagster.core.settings import Settings, project_file


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    steps: int
    failure: str = ""  # the first failed step and its error, in one line


def failure_reason(instance, run_id: str) -> str:
    """The first failed step of a run and the innermost error, in one line."""
    from dagster import DagsterEventType

    from ghmetrics_dagster.defs.alerts import root_cause

    for event_type in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
        records = instance.get_records_for_run(run_id, of_type=event_type, limit=1).records
        if records:
            entry = records[0].event_log_entry
            error = getattr(entry.dagster_event.event_specific_data, "error", None) if entry.dagster_event else None
            message = root_cause(error) or (entry.user_message or "").strip()
            return f"{entry.step_key or 'run'}: {message.splitlines()[0] if message else 'failed'}"
    return ""


def ensure_user_partitions(instance, logins: list[str]) -> list[str]:
    """Adds missing `users` partitions; returns every partition in order."""
    from ghmetrics_dagster.defs.partitions import users_partitions

    known = list(instance.get_dynamic_partitions(users_partitions.name))
    missing = [login for login in dict.fromkeys(logins) if login not in known]
    if missing:
        instance.add_dynamic_partitions(users_partitions.name, missing)
    return known + missing


def daemon_is_running(instance, within_s: float = 60.0) -> bool:
    """A Dagster daemon (from `ghmetrics ui`) dequeues runs: its heartbeat is recent."""
    heartbeats = instance.get_daemon_heartbeats()
    beat = heartbeats.get("QUEUED_RUN_COORDINATOR")
    return beat is not None and time.time() - beat.timestamp < within_s


@contextlib.contextmanager
def code_location(instance, settings: Settings):
    """The project's code location, served by a code server this process starts (as
    `dagster job launch` does); yields (workspace, location, repository)."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    target = WorkspaceFileTarget(paths=[str(project_file("workspace.yaml"))])
    with _output_to(dagster_home.run_log_path(settings), settings.verbose), WorkspaceProcessContext(
        instance, target, code_server_log_level="ERROR"
    ) as process_context:
        _restore_output()
        workspace = process_context.create_request_context()
        (location_name,) = workspace.code_location_names
        if workspace.has_code_location_error(location_name):
            raise RuntimeError(f"the Dagster code location failed to load: {workspace.get_code_location_error(location_name)}")
        location = workspace.get_code_location(location_name)
        (repository,) = location.get_repositories().values()
        yield workspace, location, repository


def create_wave_run(instance, served, users: list[str], trigger: str, run_config: dict | None = None):
    """A `user_refresh` run over `users` (a contiguous range of partitions) with the code
    location's origin, as the sensor's runs have; not yet launched."""
    from dagster._cli.job import _create_run  # what `dagster job launch` uses to create a run

    from ghmetrics_dagster.refresh.waves import JOB_NAME, wave_tags

    _, location, repository = served
    return _create_run(
        instance=instance, code_location=location, remote_repo=repository,
        remote_job=repository.get_full_job(JOB_NAME), run_config=run_config or {},
        tags=wave_tags(users, trigger), op_selection=None, run_id=None,
    )


def export_for_dagster(settings: Settings) -> None:
    """Writes what `settings` change (the demo's sandbox, `--verbose`), and the local instance's
    home and storage unless DAGSTER_HOME names one, into this process's environment: Dagster
    starts the code server, the daemon and the run workers from it and takes no other channel;
    they load the same settings back with `Settings.from_env`."""
    values = settings.child_environ(os.environ)
    if not (os.environ.get("DAGSTER_HOME") and os.environ.get(dagster_home.STORAGE_URL_VAR)):
        values.update(dagster_home.local_instance(settings, warehouse.database_url(settings)))
    os.environ.update(values)


def _prepare_dagster_processes(settings: Settings) -> None:
    """What every Dagster process started from here needs: the settings and the shared instance,
    the dbt manifest, and the MLflow store created once (before any run uses it)."""
    from ghmetrics_dagster.defs import transform
    from ml import registry

    export_for_dagster(settings)
    # The code server builds the definitions from the manifest.
    transform.prepare_dbt_project(warehouse.database_url(settings), settings.dbt_project_dir)
    registry.ensure_store(settings.mlflow_tracking_uri())


def prepare_instance(settings: Settings):
    """The shared Dagster instance, with the dbt manifest and the MLflow store ready for runs."""
    import dagster as dg

    _prepare_dagster_processes(settings)
    return dg.DagsterInstance.get()


def refresh_users(
    settings: Settings,
    logins: list[str],
    progress: bool = False,
    trigger: str = "cli",
    run_config: dict | None = None,
) -> RunOutcome:
    """Runs a refresh wave over `logins` as a run of the code location (listed under the job in
    the UI, like the sensor's runs) and waits for it.

    With a Dagster daemon running the run goes through the run queue (so it waits for a wave
    already running); without one it is launched directly. Either way it executes in its own
    process from the workspace's code server, not in this one.
    """
    import dagster as dg

    instance = prepare_instance(settings)
    ordered = ensure_user_partitions(instance, logins)
    positions = sorted(ordered.index(login) for login in logins)
    users = ordered[positions[0] : positions[-1] + 1]
    if progress:  # the terminal shows the bar; the run's events stay in the UI and its logs
        run_config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    with code_location(instance, settings) as served:
        run = create_wave_run(instance, served, users, trigger, run_config)
        if daemon_is_running(instance):
            instance.submit_run(run.run_id, served[0])
        else:
            instance.launch_run(run.run_id, served[0])
        steps = len(run.step_keys_to_execute or []) or 1
        label = f"refresh {users[0]}" if len(users) == 1 else f"refresh {len(users)} users"
        _follow(instance, run.run_id, steps, label, progress)
        finished = instance.get_run_by_id(run.run_id)
    success = finished.status == dg.DagsterRunStatus.SUCCESS
    return RunOutcome(run_id=run.run_id, success=success, steps=steps,
                      failure="" if success else failure_reason(instance, run.run_id))


_saved_fds: list[int] = []


@contextlib.contextmanager
def _output_to(path, verbose: bool):
    """Points this process's stdout and stderr at `path` while the code server starts, so that
    it and the runs it launches write Dagster's and dbt's output there (and to the run's logs in
    the UI) instead of the terminal; `_restore_output` gives the terminal back to this process."""
    if verbose:  # `ghmetrics --verbose`: everything on the terminal
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    with open(path, "a") as log:
        _saved_fds[:] = [os.dup(1), os.dup(2)]
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            _restore_output()


def _restore_output() -> None:
    if _saved_fds:
        out, err = _saved_fds
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        _saved_fds.clear()


def step_line(step: str, seconds: float | None, outcome: str) -> str:
    """The line a finished step leaves above the progress bar."""
    mark = {"succeeded": "✓", "failed": "✗", "skipped": "-"}[outcome]
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    return f"  {mark} {step} {outcome}{took}"


def _follow(instance, run_id: str, total_steps: int, label: str, progress: bool) -> None:
    """Waits for the run; with `progress`, a bar over its steps that names the running ones,
    and a line per finished step above it."""
    from dagster import DagsterEventType
    from tqdm import tqdm

    outcomes = {DagsterEventType.STEP_SUCCESS: "succeeded", DagsterEventType.STEP_FAILURE: "failed",
                DagsterEventType.STEP_SKIPPED: "skipped"}
    running: list[str] = []
    started: dict[str, float] = {}
    done: set[str] = set()
    cursor = None
    bar = tqdm(total=total_steps, desc=label, unit="step", file=sys.stderr, disable=not progress)
    try:
        while True:
            finished = instance.get_run_by_id(run_id).is_finished
            connection = instance.get_records_for_run(run_id, cursor=cursor)
            cursor = connection.cursor
            for record in connection.records:
                event = record.event_log_entry.dagster_event
                if event is None or event.step_key is None:
                    continue
                step = event.step_key
                if event.event_type == DagsterEventType.STEP_START and step not in running:
                    running.append(step)
                    started.setdefault(step, record.event_log_entry.timestamp)
                elif event.event_type in outcomes and step not in done:
                    done.add(step)
                    if step in running:
                        running.remove(step)
                    if progress:
                        seconds = record.event_log_entry.timestamp - started[step] if step in started else None
                        bar.write(step_line(step, seconds, outcomes[event.event_type]), file=sys.stderr)
                    bar.update(1)
                bar.set_postfix_str(", ".join(s[-40:] for s in running) or "waiting")
            if finished:
                break
            time.sleep(0.5)
    finally:
        bar.close()


def run_dagster_command(settings: Settings, args: list[str]) -> int:
    """Runs the `dagster` CLI on the shared instance, with the dbt manifest prepared."""
    _prepare_dagster_processes(settings)
    command = [os.path.join(os.path.dirname(sys.executable), "dagster"), *args]
    try:
        return subprocess.run(command, cwd=project_file("workspace.yaml").parent, check=False).returncode
    except KeyboardInterrupt:
        return 130


def deploy_views(settings: Settings) -> None:
    """Builds the dbt views (they change only with the code) before waves read them."""
    from ghmetrics_dagster.defs import transform

    url = warehouse.database_url(settings)
    transform.prepare_dbt_project(url, settings.dbt_project_dir)
    # dbt's output to the log, not the terminal
    with _output_to(dagster_home.run_log_path(settings), settings.verbose):
        transform.build_views(transform.dbt_resource(settings.dbt_project_dir), url, settings.dbt_statement_timeout)


STOP_GRACE_S = 8.0  # Ctrl-C stops everything within 10 s: SIGTERM, then SIGKILL after this


def serve_ui(settings: Settings, port: int) -> None:
    """The Dagster webserver and daemon (sensors, schedules, run queue) on the shared instance.

    Started as `dagster-webserver` and `dagster-daemon run`, what `dagster dev` starts, each in
    a process group of its own with its output in the run log: the terminal stays quiet, and
    Ctrl-C stops both and the code servers they started (SIGTERM, then SIGKILL after
    STOP_GRACE_S) instead of waiting on `dagster dev`'s shutdown.
    """
    deploy_views(settings)
    _prepare_dagster_processes(settings)
    bin_dir = os.path.dirname(sys.executable)
    workspace = str(project_file("workspace.yaml"))
    commands = [
        [os.path.join(bin_dir, "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p", str(port)],
        [os.path.join(bin_dir, "dagster-daemon"), "run", "-w", workspace],
    ]
    log_path = dagster_home.run_log_path(settings)
    processes = []
    with open(log_path, "ab") as log:
        try:
            for command in commands:
                # cwd: the instance's folder, so Dagster finds no other dagster.yaml beside it
                verbose = settings.verbose  # `ghmetrics --verbose`: on the terminal
                processes.append(subprocess.Popen(command, cwd=os.environ["DAGSTER_HOME"],
                                                  stdout=None if verbose else log,
                                                  stderr=None if verbose else subprocess.STDOUT,
                                                  stdin=subprocess.DEVNULL, start_new_session=True))
            print(f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C stops it; its output: {log_path})", flush=True)
            while all(process.poll() is None for process in processes):
                time.sleep(0.5)
            stopped = next(p for p in processes if p.poll() is not None)
            print(f"error: {os.path.basename(stopped.args[0])} stopped (exit {stopped.returncode}); "
                  f"see {log_path}", file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            print("stopping the Dagster UI and daemon ...", flush=True)
        finally:
            stop_process_groups(processes, STOP_GRACE_S)


def stop_process_groups(processes: list[subprocess.Popen], grace_s: float) -> None:
    """SIGTERM to each process's group, SIGKILL to what is left after `grace_s`."""
    import signal

    def signal_groups(signum) -> list[int]:
        alive = []
        for process in processes:
            try:
                os.killpg(process.pid, signum)
                alive.append(process.pid)
            except ProcessLookupError:
                pass
        return alive

    signal_groups(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        for process in processes:
            process.poll()  # reap the leaders, so that an empty group reads as gone
        if not signal_groups(0):
            return
        time.sleep(0.2)
    signal_groups(signal.SIGKILL)
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(2)
