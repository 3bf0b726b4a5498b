"""Prepares the Dagster instance that the CLI and `make ui` share.

The instance lives in `$GHMETRICS_HOME/dagster` and stores runs and events in the warehouse's
Postgres server (database `dagster`), so a run started by `ghmetrics run` shows in the UI.
An explicitly set `DAGSTER_HOME` (production) is left alone.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import yaml

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.core.settings import Settings, private_dir, project_file

DAGSTER_DATABASE = "dagster"
STORAGE_URL_VAR = "GHMETRICS_DAGSTER_PG_URL"


def dagster_storage_url(database_url: str) -> str:
    """The `dagster` database on the warehouse's server (created when missing), as SQLAlchemy's URL."""
    admin = psycopg2.connect(database_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (DAGSTER_DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f"create database {DAGSTER_DATABASE}")
    finally:
        admin.close()
    parts = urlsplit(database_url)
    return warehouse.sqlalchemy_url(urlunsplit(parts._replace(path="/" + DAGSTER_DATABASE)))


def write_instance(dagster_home: Path) -> Path:
    """The repository's dagster.yaml (run queue, pools, run monitoring) in `dagster_home`, with
    its runs and events stored in Postgres at $GHMETRICS_DAGSTER_PG_URL (the file names the
    variable, never the URL, which may hold a password)."""
    config = yaml.safe_load(project_file("dagster.yaml").read_text())
    config["storage"] = {"postgres": {"postgres_url": {"env": STORAGE_URL_VAR}}}
    path = dagster_home / "dagster.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_log_path(settings: Settings) -> Path:
    """Where the code server started by the CLI, and the runs it launches, write their output."""
    logs = settings.home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs / "runs.log"


def local_instance(settings: Settings, database_url: str) -> dict[str, str]:
    """The local instance in the home (written each time, so an upgrade's dagster.yaml applies);
    returns DAGSTER_HOME and the storage URL, for the environment of the processes that use it."""
    dagster_home = settings.home() / "dagster"
    dagster_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_dir(dagster_home)  # compute logs and event logs live below it
    write_instance(dagster_home)
    return {"DAGSTER_HOME": str(dagster_home), STORAGE_URL_VAR: dagster_storage_url(database_url)}
