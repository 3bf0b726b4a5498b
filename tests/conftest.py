"""Shared fixtures: a real Postgres database per test, an isolated GHMETRICS_HOME.

Database-backed tests run against `GHMETRICS_TEST_DATABASE_URL` when it is set (CI points it
at the Postgres service on 127.0.0.1:5432), otherwise against the embedded pgserver.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
# Marks every process this session starts (they inherit the environment), so that the code
# servers Dagster leaves behind can be found at the end: a code server whose instance database
# a test dropped loses its cleanup thread and never exits, even on SIGTERM.
SESSION_MARK = f"GHMETRICS_TEST_SESSION={uuid.uuid4().hex}"
os.environ["GHMETRICS_TEST_SESSION"] = SESSION_MARK.split("=", 1)[1]


def _kill_leftover_code_servers() -> None:
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"dagster" not in (proc / "cmdline").read_bytes():
                continue
            if SESSION_MARK.encode() in (proc / "environ").read_bytes().split(b"\0") and int(proc.name) != os.getpid():
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


@pytest.fixture(scope="session", autouse=True)
def no_code_server_outlives_the_session():
    yield
    _kill_leftover_code_servers()


@pytest.fixture(scope="session")
def sandbox_frames():
    """`frames(seed, repos=..., weeks=..., prs_per_repo=...)`: (ml_weekly_features, anomalies) of
    that sandbox organisation from its ground truth, computed once per session; callers must not
    modify them."""
    import functools

    from ghmetrics_dagster.sandbox import generator, truth

    @functools.cache
    def frames(seed: int, **org):
        computed = truth.compute(generator.generate(seed, **org))
        return computed["ml_weekly_features"], computed["anomalies"]

    return frames


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    """A URL of a Postgres server the tests may create databases on."""
    external = os.environ.get("GHMETRICS_TEST_DATABASE_URL")
    if external:
        return external
    from ghmetrics_dagster import warehouse
    from ghmetrics_dagster.core.settings import Settings

    # One embedded server for the whole session, in a stable place so reruns reuse it.
    home = tmp_path_factory.getbasetemp().parent / "ghmetrics-test-home"
    return warehouse.database_url(Settings(home_path=home))


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


@pytest.fixture
def dagster_storage(server_url, tmp_path, monkeypatch):
    """DAGSTER_HOME with the repository's dagster.yaml (run queue, pools, run monitoring) on a
    scratch database: the test's runs, ticks and daemon heartbeats stay its own. Yields the home."""
    from ghmetrics_dagster import warehouse
    from ghmetrics_dagster.cli import dagster_home as instance_files

    with warehouse.scratch_database(server_url, prefix="ghm_dagster") as storage_url:
        dagster_home = tmp_path / "dagster_home"
        dagster_home.mkdir()
        instance_files.write_instance(dagster_home)
        monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
        monkeypatch.setenv(instance_files.STORAGE_URL_VAR, warehouse.sqlalchemy_url(storage_url))
        yield dagster_home


def env_settings():
    """The settings of the environment as the test has set it so far (its home, its database,
    the sandbox it points at)."""
    from ghmetrics_dagster.core.settings import Settings

    return Settings.from_env()



def env_router(database_url: str):
    """The summary router for the LLM settings the test has set so far (keys, prices, budgets)."""
    from ghmetrics_dagster.summaries.router import Router

    return Router.from_settings(env_settings().llm, database_url)


def env_resources() -> dict:
    """The Dagster resources for the settings the test has set so far, to pass to
    `dg.materialize`, `execute_in_process` and sensor contexts."""
    from ghmetrics_dagster.defs import resources

    return resources.build(env_settings())


def env_defs():
    """The project's definitions for the settings the test has set so far."""
    from ghmetrics_dagster.definitions import build_defs

    return build_defs(env_settings())
