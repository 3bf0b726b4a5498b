"""What a new user meets after `ghmetrics demo`: the home remembers the demo's sandbox and
serves it again when needed, `ghmetrics stop` stops what keeps running, and Ctrl-C on
`ghmetrics ui` stops the webserver, the daemon and their code servers within 10 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from click.testing import CliRunner
from conftest import env_settings

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.cli import home_sandbox, main
from ghmetrics_dagster.sandbox.server import run_sandbox

ROOT = Path(__file__).resolve().parent.parent


def test_the_home_serves_the_demos_organisation_again_until_stopped(home, monkeypatch):
    for name in ("GITHUB_TOKEN", "GHMETRICS_GITHUB_API_URL", "GHMETRICS_GITHUB_GRAPHQL_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = env_settings()
    assert home_sandbox.use_if_recorded(settings)[0] is None  # no demo in this home: nothing to serve

    recorded = home_sandbox.remember(home, seed=3, repos=2, prs=20)
    assert home_sandbox.remember(home, seed=3, repos=2, prs=20) == recorded  # same organisation, same port
    # Someone signs in during the demo (its in-process sandbox issues an OAuth token) ...
    signed_in = "gho_" + "a1" * 18
    with run_sandbox(seed=3, repos=2, prs_per_repo=20,
                     issued_tokens_path=str(home_sandbox.issued_tokens_path(home))) as during_demo:
        person = sorted(login for login, user in during_demo.org.users.items() if not user.is_bot)[0]
        during_demo._server.oauth.issue_token(signed_in, person)
    assert oct(home_sandbox.issued_tokens_path(home).stat().st_mode & 0o777) == "0o600"
    try:
        sandbox, pointed = home_sandbox.use_if_recorded(settings)
        assert sandbox == recorded
        assert pointed.github_api_url == sandbox.rest_url
        (token,) = pointed.github_tokens
        repos = requests.get(f"{sandbox.rest_url}/orgs/acme/repos", headers={"Authorization": f"token {token}"},
                             timeout=10)
        assert repos.status_code == 200 and len(repos.json()) == 2
        # ... and their stored token still works against the home's sandbox afterwards.
        me = requests.get(f"{sandbox.rest_url}/user", headers={"Authorization": f"token {signed_in}"}, timeout=10)
        assert me.status_code == 200 and me.json()["login"] == person
        # A token or an API URL means GitHub was chosen: the home's sandbox stays out of the way.
        assert home_sandbox.use_if_recorded(pointed)[0] is None
    finally:
        assert home_sandbox.stop(home)
    assert not home_sandbox.answers(recorded)
    assert not home_sandbox.stop(home)


def test_ghmetrics_stop_stops_the_embedded_postgres(home, monkeypatch):
    monkeypatch.delenv("GHMETRICS_DATABASE_URL", raising=False)
    warehouse._embedded_server.cache_clear()
    url = warehouse.database_url(env_settings())  # starts this home's embedded server
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select 1")
    result = CliRunner().invoke(main, ["stop"])
    assert result.exit_code == 0, result.output
    assert f"stopped the embedded Postgres in {home / 'pg'}" in result.output
    assert not (home / "pg" / "postmaster.pid").exists()
    again = CliRunner().invoke(main, ["stop"])
    assert "the embedded Postgres was not running" in again.output
    warehouse._embedded_server.cache_clear()


def _processes_of(pids: set[int]) -> list[str]:
    """Command lines of the live processes in the process groups `pids`."""
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,args="], capture_output=True, text=True).stdout
    live = []
    for line in out.splitlines():
        pid, pgid, stat, args = line.split(None, 3)
        if (int(pgid) in pids or int(pid) in pids) and not stat.startswith("Z"):
            live.append(args)
    return live


def test_ctrl_c_stops_the_ui_and_everything_it_started_within_10_s(database_url, dagster_storage, tmp_path):
    # dagster_storage: the daemon's heartbeats stay out of the storage other tests ask
    # whether a daemon runs.
    port = "3217"
    log = open(tmp_path / "ui.txt", "w")
    # As a terminal starts it: SIGINT delivered (a background shell would ignore it).
    ui = subprocess.Popen([sys.executable, "-m", "ghmetrics_dagster.cli", "ui", "--port", port], cwd=ROOT,
                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert ui.poll() is None and time.monotonic() < deadline, (tmp_path / "ui.txt").read_text()
            time.sleep(1)
        children = subprocess.run(["pgrep", "-P", str(ui.pid)], capture_output=True, text=True).stdout.split()
        groups = {ui.pid, *(int(pid) for pid in children)}
        assert len(_processes_of(groups)) >= 3  # this command, the webserver, the daemon (and code servers)

        started = time.monotonic()
        ui.send_signal(signal.SIGINT)
        while _processes_of(groups) and time.monotonic() - started < 15:
            time.sleep(0.2)
        took = time.monotonic() - started
        assert not _processes_of(groups), _processes_of(groups)
        assert took < 10, f"stopping took {took:.1f} s"
        assert ui.wait(5) == 0
        # The terminal shows two lines; Dagster's own start-up and shutdown output went to the run log.
        lines = [line for line in (tmp_path / "ui.txt").read_text().splitlines() if line.strip()]
        assert len(lines) == 2, lines
        assert lines[0].startswith(f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C stops it")
        assert lines[1] == "stopping the Dagster UI and daemon ..."
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
