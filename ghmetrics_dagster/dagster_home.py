"""Prepares the Dagster instance that the CLI and `make ui` share.

The instance lives in `$GHMETRICS_HOME/dagster` and stores runs and events in the warehouse's
Postgres server (database `dagster`), so a run started by `ghmetrics run` shows in the UI.
An explicitly set `DAGSTER_HOME` (production) is left alone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from ghmetrics_dagster import settings, warehouse

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DAGSTER_DATABASE = "dagster"


def _dagster_storage_url() -> str:
    parts = urlsplit(warehouse.database_url())
    admin = psycopg2.connect(warehouse.database_url())
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (DAGSTER_DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f"create database {DAGSTER_DATABASE}")
    finally:
        admin.close()
    return warehouse.sqlalchemy_url(urlunsplit(parts._replace(path="/" + DAGSTER_DATABASE)))


def run_log_path() -> Path:
    """Where the code server started by the CLI, and the runs it launches, write their output."""
    logs = settings.home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs / "runs.log"


def prepare() -> Path:
    """Sets DAGSTER_HOME and the storage URL in this process's environment; returns the home."""
    if os.environ.get("DAGSTER_HOME") and os.environ.get("GHMETRICS_DAGSTER_PG_URL"):
        return Path(os.environ["DAGSTER_HOME"])
    dagster_home = settings.home() / "dagster"
    dagster_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.private_dir(dagster_home)  # compute logs and event logs live below it
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    os.environ.setdefault("GHMETRICS_DAGSTER_PG_URL", _dagster_storage_url())
    return dagster_home
