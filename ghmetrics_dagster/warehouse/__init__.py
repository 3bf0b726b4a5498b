"""The Postgres warehouse: where it is, how to connect, and its schema migrations.

With no configuration an embedded Postgres (pgserver) is started under
`$GHMETRICS_HOME/pg` on first use and left running, so the next command reuses it.
`GHMETRICS_DATABASE_URL` selects an external server instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.extras

from ghmetrics_dagster.core.redact import mask_database_url, redact


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or used; the message says what to do."""


@functools.cache
def _embedded_server(home: Path):
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime directory at import; without XDG_RUNTIME_DIR
        # it falls back to /tmp/runtime-<uid> and warns. Every process must agree on that
        # directory (it holds the server's lock file), so keep the fallback and drop the warning.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        try:
            import pgserver
        except ImportError:
            raise WarehouseError(
                "GHMETRICS_DATABASE_URL is not set and the embedded Postgres is not installed; "
                "set GHMETRICS_DATABASE_URL, or install it with `pip install 'ghmetrics[demo]'`"
            ) from None

    pgdata = home / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: keep the server running after this process exits so that the
    # next command (and the Dagster UI) reuse it instead of starting another.
    return pgserver.get_server(pgdata, cleanup_mode=None)


def stop_embedded(home: Path) -> bool:
    """Stops the embedded Postgres of this home (it outlives every command on purpose: the next
    command and the Dagster UI reuse it); True when it was running. The next command starts it."""
    pgdata = home / "pg"
    if not (pgdata / "postmaster.pid").exists():
        return False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from pgserver import pg_ctl

    # As root, pgserver runs Postgres as its own system user; pg_ctl must act as that user.
    user = "pgserver" if os.name == "posix" and os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    _embedded_server.cache_clear()
    return True


def embedded_pid(home: Path) -> int | None:
    return _embedded_server(home).get_pid()


def database_url(settings) -> str:
    """A libpq URL (psql and psycopg2 accept it) for the warehouse `settings` (a Settings) name:
    GHMETRICS_DATABASE_URL, else the embedded server of its home (never in production)."""
    if settings.database_url:
        return to_libpq_url(require_postgres_url(settings.database_url))
    settings.require_database()
    return _embedded_server(settings.home()).get_uri()


def require_postgres_url(url: str) -> str:
    """`url` if it is a Postgres URL or a libpq keyword string; else a one-line error that
    names only the scheme, since the rest may hold a password."""
    if "://" in url:
        scheme = urlsplit(url).scheme.split("+", 1)[0].lower()
        if scheme not in ("postgresql", "postgres"):
            raise WarehouseError(
                f"GHMETRICS_DATABASE_URL is a {scheme or 'scheme-less'}:// URL; ghmetrics needs Postgres: "
                "use postgresql://USER@HOST:PORT/DB (password in ~/.pgpass or PGPASSWORD)"
            )
    return url


def to_libpq_url(url: str) -> str:
    """Drops a SQLAlchemy driver suffix (`postgresql+psycopg2://`) so libpq accepts the URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    return urlunsplit((scheme, *parts[1:]))


def sqlalchemy_url(url: str) -> str:
    """The same URL with an explicit psycopg2 driver (SQLAlchemy 2.1 defaults to psycopg 3)."""
    parts = urlsplit(to_libpq_url(url))
    return urlunsplit(("postgresql+psycopg2", *parts[1:]))


def display_url(url: str) -> str:
    """The URL (or keyword string) with every password masked, for messages."""
    return mask_database_url(url)


def open_connection(url: str) -> psycopg2.extensions.connection:
    """A new connection to `url`; a server that cannot be reached is a WarehouseError saying what to do."""
    try:
        return psycopg2.connect(url, connect_timeout=10)
    except psycopg2.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WarehouseError(
            f"cannot connect to the warehouse at {display_url(url)} ({redact(first_line, [url])}); "
            "check GHMETRICS_DATABASE_URL or unset it to use the embedded Postgres"
        ) from None


@contextlib.contextmanager
def connect(url: str) -> Iterator[psycopg2.extensions.connection]:
    """A connection that commits on success and rolls back on error."""
    conn = open_connection(url)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


_MIGRATION_LOCK = 0x6768_6D65  # "ghme": serialises concurrent `migrate` calls


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("ghmetrics_dagster.warehouse") / "migrations"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


def migrate(url: str) -> list[str]:
    """Applies the migrations not yet applied, in order, each in its own transaction.

    Returns the versions applied now (empty when the schema was current).
    """
    applied_now = []
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("select pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            cur.execute(
                "create table if not exists public.ghmetrics_schema_migrations ("
                " version text primary key, applied_at timestamptz not null default now())"
            )
            conn.commit()
            cur.execute("select version from public.ghmetrics_schema_migrations")
            done = {row[0] for row in cur.fetchall()}
            for version, sql in migration_files():
                if version in done:
                    continue
                cur.execute(sql)
                cur.execute(
                    "insert into public.ghmetrics_schema_migrations (version) values (%s)", (version,)
                )
                conn.commit()
                applied_now.append(version)
        finally:
            cur.execute("select pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
            conn.commit()
    return applied_now


def upsert(cur, table: str, columns: list[str], key: list[str], rows: list[tuple], page_size: int = 500) -> int:
    """Inserts rows, replacing the non-key columns of rows whose key exists. Returns the row count."""
    if not rows:
        return 0
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    sql = (
        f"insert into {table} ({', '.join(columns)}) values %s "
        f"on conflict ({', '.join(key)}) do update set {updates}, ingested_at = now()"
    )
    psycopg2.extras.execute_values(cur, sql, rows, page_size=page_size)
    return len(rows)


def _with_database(server_url: str, name: str) -> str:
    parts = urlsplit(to_libpq_url(server_url))
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def create_database(server_url: str, name: str, *, replace: bool = False) -> str:
    """Creates database `name` on the server, migrates it, and returns its URL."""
    admin = psycopg2.connect(to_libpq_url(server_url))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            if replace:
                _drop(cur, name)
            cur.execute(f'create database "{name}"')
    finally:
        admin.close()
    url = _with_database(server_url, name)
    migrate(url)
    return url


def drop_database(server_url: str, name: str) -> None:
    admin = psycopg2.connect(to_libpq_url(server_url))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            _drop(cur, name)
    finally:
        admin.close()


def _drop(cur, name: str) -> None:
    # Open connections (a pool, a killed run) would make DROP DATABASE wait or fail.
    cur.execute(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
        (name,),
    )
    cur.execute(f'drop database if exists "{name}"')


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str = "ghm_scratch") -> Iterator[str]:
    """A fresh migrated database for tests and benchmarks, dropped afterwards."""
    import uuid

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = create_database(server_url, name)
    try:
        yield url
    finally:
        drop_database(server_url, name)
