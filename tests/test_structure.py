"""The project's structure as its users meet it: Dagster's own entry points in the repository root
with nothing set, one settings object, resources in the definitions, production failing fast."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ghmetrics_dagster.core.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def bare_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Only what a shell on a fresh machine has: no GHMETRICS_*, no DAGSTER_HOME."""
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
            "DAGSTER_DISABLE_TELEMETRY": "1", **extra}


def test_settings_are_read_once_and_frozen(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", " t1 , t2 ")
    monkeypatch.setenv("GHMETRICS_GITHUB_API_URL", "https://ghe.example.com/api/v3/")
    monkeypatch.setenv("GHMETRICS_REFRESH_TTL_MINUTES", "5")
    settings = Settings.from_env()
    assert settings.github_tokens == ("t1", "t2")
    assert settings.github_graphql_url == "https://ghe.example.com/api/graphql"
    assert settings.refresh_ttl_minutes == 5.0
    assert "t1" not in repr(settings)  # secrets stay out of logs and tracebacks
    monkeypatch.setenv("GITHUB_TOKEN", "changed")
    assert settings.github_tokens == ("t1", "t2")  # loaded once: later changes are not seen
    with pytest.raises(AttributeError):
        settings.github_tokens = ()  # type: ignore[misc]
    monkeypatch.setenv("GHMETRICS_REFRESH_TTL_MINUTES", "soon")
    with pytest.raises(SettingsError, match="GHMETRICS_REFRESH_TTL_MINUTES is 'soon', not a number"):
        Settings.from_env()


def test_definitions_declare_the_resources_with_secrets_as_variables(monkeypatch, home):
    from ghmetrics_dagster.definitions import build_defs

    monkeypatch.setenv("GITHUB_TOKEN", "ghp_" + "s" * 36)
    monkeypatch.setenv("GHMETRICS_DATABASE_URL", "postgresql://ghm:pw@db.example/metrics")
    defs = build_defs(Settings.from_env())
    assert {"warehouse", "github", "llm", "mlflow", "reports", "refresh_policy", "alerts_webhook", "dbt"} <= set(
        defs.resources)
    # The UI shows the variable, never the value.
    github, warehouse = defs.resources["github"], defs.resources["warehouse"]
    assert github.tokens.env_var_name == "GITHUB_TOKEN"
    assert warehouse.database_url.env_var_name == "GHMETRICS_DATABASE_URL"
    assert warehouse.home == str(home)


def test_a_production_instance_without_a_database_fails_at_start_in_one_line(tmp_path):
    env = bare_environment(tmp_path, GHMETRICS_INSTANCE="production", GHMETRICS_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-c", "import ghmetrics_dagster.definitions"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "GHMETRICS_DATABASE_URL is not set in this production instance" in last
    assert not (tmp_path / "home" / "pg").exists()  # no embedded server was started


@pytest.mark.parametrize("command", [["dagster", "definitions", "validate"], ["dg", "check", "defs"]],
                         ids=["dagster definitions validate", "dg check defs"])
def test_dagsters_own_commands_load_the_project_in_its_root_with_nothing_set(tmp_path, command):
    proc = subprocess.run([str(BIN / command[0]), *command[1:]], env=bare_environment(tmp_path), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_dagster_dev_starts_in_the_repository_root_with_nothing_set(tmp_path):
    port = _free_port()
    homes_before = set(ROOT.glob(".tmp_dagster_home_*"))
    log = open(tmp_path / "dagster-dev.log", "w")
    process = subprocess.Popen([str(BIN / "dagster"), "dev", "-p", str(port)], env=bare_environment(tmp_path),
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        loaded = False
        while time.monotonic() < deadline and process.poll() is None and not loaded:
            time.sleep(2)
            try:
                answer = requests.post(f"http://127.0.0.1:{port}/graphql", timeout=5, json={
                    "query": "{ workspaceOrError { ... on Workspace { locationEntries { name "
                             "locationOrLoadError { __typename } } } } }"})
            except requests.RequestException:
                continue
            entries = answer.json()["data"]["workspaceOrError"]["locationEntries"]
            loaded = bool(entries) and all(e["locationOrLoadError"]
                                           and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
                                           for e in entries)
        assert loaded, (tmp_path / "dagster-dev.log").read_text()[-3000:]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        # Without DAGSTER_HOME, dagster dev keeps its instance in a temporary folder of the
        # working directory; a stop by signal can leave it behind in the checkout.
        for leftover in set(ROOT.glob(".tmp_dagster_home_*")) - homes_before:
            shutil.rmtree(leftover, ignore_errors=True)


def test_a_wave_builds_the_marts_in_one_dbt_step(home):
    """An asset between two parts of the dbt graph (one downstream of a source whose tests dbt
    runs) makes Dagster split the dbt step; the wave's step always builds the whole selector."""
    from ghmetrics_dagster.definitions import build_defs
    from ghmetrics_dagster.refresh.waves import JOB_NAME

    job = build_defs(Settings.from_env()).resolve_job_def(JOB_NAME)
    assert [node.name for node in job.graph.nodes if "dbt" in node.name] == ["ghmetrics_dbt_models"]
