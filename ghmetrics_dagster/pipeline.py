"""Runs a user's pipeline through the shared Dagster instance, and serves the UI.

Used by the CLI (`ghmetrics run`, `ghmetrics demo`, `ghmetrics ui`); the Dagster definitions
themselves live in `definitions.py`.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from ghmetrics_dagster import dagster_home

USER_JOB = "user_refresh"


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    steps: int


def _definitions():
    from ghmetrics_dagster.defs import transform

    # dagster-dbt needs the manifest before the definitions are built (DESIGN.md section 6).
    transform.prepare_dbt_project()
    from ghmetrics_dagster.definitions import defs

    return defs


def ensure_user_partitions(instance, logins: list[str]) -> None:
    from ghmetrics_dagster.defs.partitions import users_partitions

    known = set(instance.get_dynamic_partitions(users_partitions.name))
    missing = [login for login in logins if login not in known]
    if missing:
        instance.add_dynamic_partitions(users_partitions.name, missing)


def run_user_pipeline(login: str, progress: bool = False, tags: dict[str, str] | None = None) -> RunOutcome:
    """Executes the `user_refresh` job for `login` in this process, recorded in the instance."""
    import dagster as dg
    from dagster._core.utils import make_new_run_id

    dagster_home.prepare()
    defs = _definitions()
    instance = dg.DagsterInstance.get()
    ensure_user_partitions(instance, [login])
    job = defs.resolve_job_def(USER_JOB)
    run_id = make_new_run_id()
    outcome: dict = {}

    # With a progress bar the console shows the bar and warnings only: every log line, and
    # dbt's output, stay in the run's event log and compute logs (the Dagster UI shows them).
    run_config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}} if progress else None

    def execute() -> None:
        try:
            with contextlib.redirect_stdout(io.StringIO()) if progress else contextlib.nullcontext():
                outcome["result"] = job.execute_in_process(
                    run_config=run_config,
                    instance=instance,
                    partition_key=login,
                    run_id=run_id,
                    raise_on_error=False,
                    tags={"ghmetrics/user": login, "ghmetrics/trigger": "cli", **(tags or {})},
                )
        except BaseException as exc:  # surfaced in the calling thread
            outcome["error"] = exc

    worker = threading.Thread(target=execute, name=f"run-{login}")
    worker.start()
    total_steps = len(job.graph.node_defs) or 1
    if progress:
        _show_progress(instance, run_id, worker, total_steps, login)
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    return RunOutcome(run_id=run_id, success=result.success, steps=total_steps)


def _show_progress(instance, run_id: str, worker: threading.Thread, total_steps: int, login: str) -> None:
    """A progress bar over finished steps, fed by the run's event log."""
    from dagster import DagsterEventType
    from tqdm import tqdm

    done: set[str] = set()
    cursor = None
    with tqdm(total=total_steps, desc=f"refresh {login}", unit="step", file=sys.stderr) as bar:
        while True:
            alive = worker.is_alive()
            try:
                connection = instance.get_records_for_run(run_id, cursor=cursor)
            except Exception:  # the run may not be stored yet
                connection = None
            records = connection.records if connection else []
            if records:
                cursor = connection.cursor
            for record in records:
                event = record.event_log_entry.dagster_event
                if event is None or event.step_key is None:
                    continue
                if event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_SKIPPED):
                    if event.step_key not in done:
                        done.add(event.step_key)
                        bar.set_postfix_str(event.step_key[-40:])
                        bar.update(1)
            if not alive:
                break
            time.sleep(0.3)


def run_dagster_command(args: list[str]) -> int:
    """Runs the `dagster` CLI on the shared instance, with the dbt manifest prepared."""
    from ghmetrics_dagster.defs import transform

    dagster_home.prepare()
    transform.prepare_dbt_project()
    command = [os.path.join(os.path.dirname(sys.executable), "dagster"), *args]
    try:
        return subprocess.run(command, cwd=dagster_home.PROJECT_ROOT, check=False).returncode
    except KeyboardInterrupt:
        return 130


def serve_ui(port: int) -> None:
    """`dagster dev` on the shared instance (webserver + daemon, so sensors run)."""
    print(f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C to stop)", flush=True)
    workspace = str(dagster_home.PROJECT_ROOT / "workspace.yaml")
    run_dagster_command(["dev", "-w", workspace, "--host", "127.0.0.1", "--port", str(port)])
