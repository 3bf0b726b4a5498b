"""One reusable Postgres connection per cache/ledger, so a summary costs no new connections."""

from __future__ import annotations

import contextlib
import threading

import psycopg2

from ghmetrics_dagster import warehouse


class SharedConnection:
    def __init__(self, database_url: str):
        self.database_url = database_url
        self._conn = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def cursor(self):
        """A cursor in its own transaction (commit on success, rollback on error)."""
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = warehouse.open_connection(self.database_url)
            try:
                with self._conn, self._conn.cursor() as cur:
                    yield cur
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                self.close()
                raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
