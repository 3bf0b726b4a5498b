"""Runtime configuration read from the environment (the README lists every variable).

Everything has an embedded default so that a fresh clone runs with no configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_GITHUB_API_URL = "https://api.github.com"


def home() -> Path:
    """Where ghmetrics keeps its embedded state (Postgres, MLflow, keys, reports)."""
    path = Path(os.environ.get("GHMETRICS_HOME", ".ghmetrics")).expanduser().resolve()
    path.mkdir(mode=0o711, parents=True, exist_ok=True)
    # Others may pass through (0711) but not list or read: run as root, the embedded Postgres
    # runs as its own user and must reach `pg/` below; keys and reports have their own modes.
    return private_dir(path, mode=0o711)


def private_dir(path: Path, mode: int = 0o700) -> Path:
    """Makes a directory of ours owner-only (0700 by default): it holds keys, reports and logs."""
    try:
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
    except OSError:  # not ours to change: leave it
        pass
    return path


def external_database_url() -> str | None:
    return os.environ.get("GHMETRICS_DATABASE_URL") or None


def github_tokens() -> list[str]:
    raw = os.environ.get("GITHUB_TOKEN", "")
    return [token.strip() for token in raw.split(",") if token.strip()]


def github_api_url() -> str:
    return os.environ.get("GHMETRICS_GITHUB_API_URL", DEFAULT_GITHUB_API_URL).rstrip("/")


def github_graphql_url() -> str:
    explicit = os.environ.get("GHMETRICS_GITHUB_GRAPHQL_URL")
    if explicit:
        return explicit.rstrip("/")
    api = github_api_url()
    # github.com serves GraphQL at /graphql; GitHub Enterprise at /api/graphql beside /api/v3.
    if api.endswith("/api/v3"):
        return api[: -len("/v3")] + "/graphql"
    return api + "/graphql"


def mlflow_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home() / 'mlflow.db'}"


def mlflow_artifact_root() -> str:
    return os.environ.get("GHMETRICS_MLFLOW_ARTIFACT_ROOT") or str(home() / "mlartifacts")


def reports_dir() -> str:
    return os.environ.get("GHMETRICS_REPORTS_DIR") or str(home() / "reports")
