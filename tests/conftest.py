"""Shared fixtures: a real Postgres database per test, an isolated GHMETRICS_HOME.

Database-backed tests run against `GHMETRICS_TEST_DATABASE_URL` when it is set (CI points it
at the Postgres service on 127.0.0.1:5432), otherwise against the embedded pgserver.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    """A URL of a Postgres server the tests may create databases on."""
    external = os.environ.get("GHMETRICS_TEST_DATABASE_URL")
    if external:
        return external
    from ghmetrics_dagster import warehouse

    # One embedded server for the whole session, in a stable place so reruns reuse it.
    os.environ.setdefault("GHMETRICS_HOME", str(tmp_path_factory.getbasetemp().parent / "ghmetrics-test-home"))
    return warehouse.database_url()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An isolated GHMETRICS_HOME with a fixed secret key."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("GHMETRICS_HOME", str(path))
    return path


@pytest.fixture
def database_url(server_url, monkeypatch, home) -> str:
    """A fresh, migrated database; GHMETRICS_DATABASE_URL points at it for the test."""
    from ghmetrics_dagster import warehouse

    name = "ghm_test_" + uuid.uuid4().hex[:12]
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}"')
    url = _with_database(warehouse.to_libpq_url(server_url), name)
    monkeypatch.setenv("GHMETRICS_DATABASE_URL", url)
    warehouse.migrate(url)
    yield url
    with admin.cursor() as cur:
        cur.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
            (name,),
        )
        cur.execute(f'drop database if exists "{name}"')
    admin.close()
