"""The environment dbt_project/profiles.yml reads, derived from a warehouse URL.

dbt takes its connection from separate settings, the rest of ghmetrics from one libpq URL;
this maps the URL (TCP, or the embedded server's unix-socket form
`postgresql://postgres:@/postgres?host=/socket/dir`) onto those settings.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

from ghmetrics_dagster.core.settings import project_file

# The project's own dbt project (a checkout's, or the wheel's copy); GHMETRICS_DBT_PROJECT_DIR
# (Settings.dbt_project_dir) names another, as the Docker image does.
DBT_PROJECT_DIR = project_file("dbt_project")

DEFAULT_STATEMENT_TIMEOUT = "15min"

# dbt scrubs the values of DBT_ENV_SECRET_* variables from its logs.
PASSWORD_VAR = "DBT_ENV_SECRET_GHMETRICS_DBT_PASSWORD"


class DbtEnvError(ValueError):
    """The URL cannot be turned into a dbt connection."""


def dbt_env(url: str, threads: int | None = None, statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT) -> dict[str, str]:
    """The GHMETRICS_DBT_* variables (and the secret password variable) for `url`."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise DbtEnvError(
            f"the warehouse URL must start with postgresql:// (got {scheme or 'no scheme'}://); "
            "set GHMETRICS_DATABASE_URL to a Postgres URL"
        )
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    # libpq lets ?host= (a socket directory or host name) override the network location.
    host = query.get("host") or (unquote(parts.hostname) if parts.hostname else "localhost")
    port = query.get("port") or (str(parts.port) if parts.port else "5432")
    user = query.get("user") or (unquote(parts.username) if parts.username else "postgres")
    password = query.get("password") or (unquote(parts.password) if parts.password else "")
    dbname = query.get("dbname") or unquote(parts.path.lstrip("/")) or user
    env = {
        "GHMETRICS_DBT_HOST": host,
        "GHMETRICS_DBT_PORT": port,
        "GHMETRICS_DBT_USER": user,
        PASSWORD_VAR: password,
        "GHMETRICS_DBT_DBNAME": dbname,
        "GHMETRICS_DBT_SSLMODE": query.get("sslmode", "prefer"),
    }
    if threads is not None:
        env["GHMETRICS_DBT_THREADS"] = str(threads)
    # libpq reads PGOPTIONS: no dbt statement (a hostile rule regex, a runaway join) runs forever.
    timeout = statement_timeout
    if not re.fullmatch(r"\d+(ms|s|min|h)?", timeout):
        raise DbtEnvError(
            f"GHMETRICS_DBT_STATEMENT_TIMEOUT {timeout!r} is not a duration; use e.g. 900s or 15min (0 disables)"
        )
    env["PGOPTIONS"] = f"-c statement_timeout={timeout}"
    return env
