"""Shared fixtures: a real Postgres database per test, an isolated GHMETRICS_HOME.

Database-backed tests run against `GHMETRICS_TEST_DATABASE_URL` when it is set (CI points it
at the Postgres service on 127.0.0.1:5432), otherwise against the embedded pgserver.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


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

    with warehouse.scratch_database(server_url, prefix="ghm_test") as url:
        monkeypatch.setenv("GHMETRICS_DATABASE_URL", url)
        yield url
