"""The sandbox organisation a home was made with, kept serving between commands.

`ghmetrics demo` records its sandbox (seed, size) in `$GHMETRICS_HOME/sandbox.json`. Later
commands in that home (`run`, `login`, `ui`, `web`, `users add`) that are not pointed at GitHub
(no `GITHUB_TOKEN`, no `GHMETRICS_GITHUB_API_URL`) start the same organisation again as a
background process on a fixed port and use it, so the demo's users keep working against the
data they were made from. `ghmetrics stop` stops it. The organisation is generated from its
seed, so a restarted sandbox serves exactly what the demo ingested, and it accepts the tokens
of people who signed in through its OAuth pages before (`sandbox-tokens.json`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from ghmetrics_dagster.core.settings import DEFAULT_GITHUB_API_URL, Settings

DEFAULT_PORT = 8765
START_TIMEOUT_S = 60.0  # generating a large organisation takes a while


@dataclass(frozen=True)
class HomeSandbox:
    seed: int
    repos: int
    prs: int
    port: int = DEFAULT_PORT

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def graphql_url(self) -> str:
        return self.rest_url + "/graphql"


def _config_path(home: Path) -> Path:
    return home / "sandbox.json"


def _pid_path(home: Path) -> Path:
    return home / "sandbox.pid"


def issued_tokens_path(home: Path) -> Path:
    """The sign-ins' OAuth tokens, shared by the demo's sandbox and the home's, so that a user
    signed in during the demo keeps a working token afterwards."""
    return home / "sandbox-tokens.json"


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with contextlib.closing(socket.socket()) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


def remember(home: Path, seed: int, repos: int, prs: int) -> HomeSandbox:
    """Records the demo's organisation; keeps the recorded port when the organisation is the same."""
    current = recorded(home)
    if current and (current.seed, current.repos, current.prs) == (seed, repos, prs):
        return current
    stop(home)
    chosen = HomeSandbox(seed, repos, prs, _free_port(DEFAULT_PORT))
    _config_path(home).write_text(json.dumps(asdict(chosen)) + "\n")
    return chosen


def recorded(home: Path) -> HomeSandbox | None:
    try:
        return HomeSandbox(**json.loads(_config_path(home).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def answers(sandbox: HomeSandbox) -> bool:
    try:
        return requests.get(sandbox.rest_url + "/rate_limit", timeout=2).status_code in (200, 401)
    except requests.RequestException:
        return False


def _running_pid(home: Path) -> int | None:
    try:
        pid = int(_pid_path(home).read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start(home: Path, sandbox: HomeSandbox) -> None:
    """Starts the organisation in the background (its own session: Ctrl-C elsewhere leaves it)."""
    if answers(sandbox):
        return
    log = home / "logs"
    log.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "ghmetrics_dagster.cli.sandbox", "serve", "--port", str(sandbox.port),
               "--seed", str(sandbox.seed), "--repos", str(sandbox.repos), "--prs", str(sandbox.prs),
               "--issued-tokens", str(issued_tokens_path(home))]
    with (log / "sandbox.log").open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    _pid_path(home).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(sandbox):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the home's sandbox did not start on {sandbox.rest_url}; "
                               f"see {log / 'sandbox.log'}")
        time.sleep(0.2)


def use_if_recorded(settings: Settings) -> tuple[HomeSandbox | None, Settings]:
    """When this home was made by the demo and nothing points at GitHub: serve its organisation
    and return it with the settings pointed at it; else (None, the settings unchanged)."""
    if settings.github_tokens or settings.github_api_url != DEFAULT_GITHUB_API_URL:
        return None, settings
    home = settings.home()
    sandbox = recorded(home)
    if sandbox is None:
        return None, settings
    from ghmetrics_dagster.sandbox.server import default_tokens

    start(home, sandbox)
    # Sandbox tokens are public test values, valid only against the sandbox.
    return sandbox, settings.replace(github_api_url=sandbox.rest_url, github_graphql_url=sandbox.graphql_url,
                                     github_tokens=(default_tokens()[0],))


def stop(home: Path) -> bool:
    """Stops the home's background sandbox; True when one was running."""
    pid = _running_pid(home)
    _pid_path(home).unlink(missing_ok=True)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return True
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    return True
