"""Serving the dashboard: `serve` for `ghmetrics web` (uvicorn, one process per worker) and
`serve_in_thread` for the demo and the tests (one in-process server on a free port)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.core.settings import Settings
from ghmetrics_dagster.web.app import create_app
from ghmetrics_dagster.web.config import WebConfig


def app_from_env():
    """The app as configured by the environment: the factory each uvicorn worker calls (a
    worker is a process of its own, so it loads the settings itself)."""
    settings = Settings.from_env()
    return create_app(WebConfig.from_settings(settings, warehouse.database_url(settings)))


def serve(host: str, port: int, workers: int = 1) -> None:
    # Access logs stay off: the terminal shows where to go, not every request.
    uvicorn.run("ghmetrics_dagster.web.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False, proxy_headers=True)


class RunningServer:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str):
        self._server, self._thread, self.url = server, thread, url

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_in_thread(config: WebConfig, port: int = 0, host: str = "127.0.0.1") -> RunningServer:
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config), host=host, port=port, log_level="warning",
                                          access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, name="ghmetrics-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the dashboard did not start on {host}:{port}")
        time.sleep(0.05)
    return RunningServer(server, thread, f"http://{host}:{port}")


@contextlib.contextmanager
def serve_in_thread(config: WebConfig, port: int = 0) -> Iterator[RunningServer]:
    running = start_in_thread(config, port)
    try:
        yield running
    finally:
        running.stop()
