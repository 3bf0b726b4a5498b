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

from ghmetrics_dagster import settings

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


def _config_path() -> Path:
    return settings.home() / "sandbox.json"


def _pid_path() -> Path:
    return settings.home() / "sandbox.pid"


def issued_tokens_path() -> Path:
    """The sign-ins' OAuth tokens, shared by the demo's sandbox and the home's, so that a user
    signed in during the demo keeps a working token afterwards."""
    return settings.home() / "sandbox-tokens.json"


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with contextlib.closing(socket.socket()) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


def remember(seed: int, repos: int, prs: int) -> HomeSandbox:
    """Records the demo's organisation; keeps the recorded port when the organisation is the same."""
    current = recorded()
    if current and (current.seed, current.repos, current.prs) == (seed, repos, prs):
        return current
    stop()
    chosen = HomeSandbox(seed, repos, prs, _free_port(DEFAULT_PORT))
    _config_path().write_text(json.dumps(asdict(chosen)) + "\n")
    return chosen


def recorded() -> HomeSandbox | None:
    try:
        return HomeSandbox(**json.loads(_config_path().read_text()))
    except (OSError, ValueError, TypeError):
        return None


def answers(sandbox: HomeSandbox) -> bool:
    try:
        return requests.get(sandbox.rest_url + "/rate_limit", timeout=2).status_code in (200, 401)
    except requests.RequestException:
        return False


def _running_pid() -> int | None:
    try:
        pid = int(_pid_path().read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start(sandbox: HomeSandbox) -> None:
    """Starts the organisation in the background (its own session: Ctrl-C elsewhere leaves it)."""
    if answers(sandbox):
        return
    log = settings.home() / "logs"
    log.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "ghmetrics_dagster.sandbox.cli", "serve", "--port", str(sandbox.port),
               "--seed", str(sandbox.seed), "--repos", str(sandbox.repos), "--prs", str(sandbox.prs),
               "--issued-tokens", str(issued_tokens_path())]
    with (log / "sandbox.log").open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    _pid_path().write_text(f"{process.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(sandbox):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the home's sandbox did not start on {sandbox.rest_url}; "
                               f"see {log / 'sandbox.log'}")
        time.sleep(0.2)


def use_if_recorded() -> HomeSandbox | None:
    """When this home was made by the demo and nothing points at GitHub: serve its organisation
    and point this process (and what it starts) at it. Returns it, or None."""
    if settings.github_tokens() or os.environ.get("GHMETRICS_GITHUB_API_URL"):
        return None
    sandbox = recorded()
    if sandbox is None:
        return None
    from ghmetrics_dagster.sandbox.server import default_tokens

    start(sandbox)
    os.environ["GHMETRICS_GITHUB_API_URL"] = sandbox.rest_url
    os.environ["GHMETRICS_GITHUB_GRAPHQL_URL"] = sandbox.graphql_url
    # Sandbox tokens are public test values, valid only against the sandbox.
    os.environ["GITHUB_TOKEN"] = default_tokens()[0]
    return sandbox


def stop() -> bool:
    """Stops the home's background sandbox; True when one was running."""
    pid = _running_pid()
    _pid_path().unlink(missing_ok=True)
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
