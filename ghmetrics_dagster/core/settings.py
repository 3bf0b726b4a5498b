"""Runtime configuration: one frozen `Settings`, read from the environment in one place.

`Settings.from_env()` is the only reader of the environment (the README lists every variable);
entry points (the CLI, the dashboard, the Dagster definitions) load it once and pass it, or the
values it holds, down. Everything has an embedded default so that a fresh clone runs with no
configuration, except in a production instance (the image), which must name its database.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_GITHUB_API_URL = "https://api.github.com"
PRODUCTION_INSTANCES = ("production", "ecs")
# The dbt project beside the package in a source checkout; an installed wheel carries a copy.
_CHECKOUT_ROOT = Path(__file__).resolve().parents[2]
_PACKAGED = Path(__file__).resolve().parents[1] / "project"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and what to do."""


def project_file(name: str) -> Path:
    """`dbt_project`, `dagster.yaml` or `workspace.yaml`: the installed package's copy (a wheel),
    else the source checkout's."""
    packaged = _PACKAGED / name
    return packaged if packaged.exists() else _CHECKOUT_ROOT / name


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def _optional_number(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} is {raw!r}, not a number; set it to a number or unset it") from None


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    value = _optional_number(env, name)
    return default if value is None else value


def _graphql_url(env: Mapping[str, str], api_url: str) -> str:
    explicit = env.get("GHMETRICS_GITHUB_GRAPHQL_URL")
    if explicit:
        return explicit.rstrip("/")
    # github.com serves GraphQL at /graphql; GitHub Enterprise at /api/graphql beside /api/v3.
    if api_url.endswith("/api/v3"):
        return api_url[: -len("/v3")] + "/graphql"
    return api_url + "/graphql"


def private_dir(path: Path, mode: int = 0o700) -> Path:
    """Makes a directory of ours owner-only (0700 by default): it holds keys, reports and logs."""
    try:
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
    except OSError:  # not ours to change: leave it
        pass
    return path


@dataclasses.dataclass(frozen=True)
class LLMSettings:
    openai_api_key: str | None = dataclasses.field(default=None, repr=False)
    openai_base_url: str | None = None
    anthropic_api_key: str | None = dataclasses.field(default=None, repr=False)
    anthropic_base_url: str | None = None
    timeout_s: float | None = None  # None: the providers' default
    prices: str | None = None  # GHMETRICS_LLM_PRICES: JSON, or a path to a JSON file
    budget_run_usd: float | None = None  # None: the budget's default
    budget_day_usd: float | None = None


@dataclasses.dataclass(frozen=True)
class WebSettings:
    """The dashboard's sign-in and session settings (GHMETRICS_OAUTH_*, GHMETRICS_WEB_*)."""

    oauth_client_id: str = ""
    oauth_client_secret: str = dataclasses.field(default="", repr=False)
    session_secret: str | None = dataclasses.field(default=None, repr=False)  # None: kept in the home
    oauth_url: str = "https://github.com"  # github.com, a GitHub Enterprise host, or the sandbox
    scopes: str | None = None  # None: the dashboard's default
    public_url: str | None = None
    secure_cookies: bool = False
    organizations: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Settings:
    home_path: Path = Path(".ghmetrics")
    database_url: str | None = dataclasses.field(default=None, repr=False)  # None: embedded Postgres
    instance: str | None = None  # GHMETRICS_INSTANCE: `production` or `ecs` in the image
    github_tokens: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    github_api_url: str = DEFAULT_GITHUB_API_URL
    github_graphql_url: str = DEFAULT_GITHUB_API_URL + "/graphql"
    allow_insecure_http: bool = False
    secret_keys: str | None = dataclasses.field(default=None, repr=False)  # GHMETRICS_SECRET_KEY
    mlflow_tracking_uri_setting: str | None = None
    mlflow_artifact_root_setting: str | None = None
    reports_dir_setting: str | None = None
    reports_uri: str | None = None
    dbt_project_dir: Path = dataclasses.field(default_factory=lambda: project_file("dbt_project"))
    dbt_statement_timeout: str = "15min"
    refresh_ttl_minutes: float = 60.0
    retry_base_seconds: float = 60.0
    orphan_after_minutes: float = 15.0
    wave_settle_seconds: float = 2.0
    alert_webhook_url: str | None = dataclasses.field(default=None, repr=False)
    llm: LLMSettings = LLMSettings()
    web: WebSettings = WebSettings()
    verbose: bool = False
    debug: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        api_url = env.get("GHMETRICS_GITHUB_API_URL", DEFAULT_GITHUB_API_URL).rstrip("/")
        return cls(
            home_path=Path(env.get("GHMETRICS_HOME") or ".ghmetrics").expanduser().resolve(),
            database_url=env.get("GHMETRICS_DATABASE_URL") or None,
            instance=env.get("GHMETRICS_INSTANCE") or None,
            github_tokens=tuple(t.strip() for t in env.get("GITHUB_TOKEN", "").split(",") if t.strip()),
            github_api_url=api_url,
            github_graphql_url=_graphql_url(env, api_url),
            allow_insecure_http=_flag(env.get("GHMETRICS_ALLOW_INSECURE_HTTP")),
            secret_keys=env.get("GHMETRICS_SECRET_KEY") or None,
            mlflow_tracking_uri_setting=env.get("MLFLOW_TRACKING_URI") or None,
            mlflow_artifact_root_setting=env.get("GHMETRICS_MLFLOW_ARTIFACT_ROOT") or None,
            reports_dir_setting=env.get("GHMETRICS_REPORTS_DIR") or None,
            reports_uri=env.get("GHMETRICS_REPORTS_URI") or None,
            dbt_project_dir=Path(env.get("GHMETRICS_DBT_PROJECT_DIR") or project_file("dbt_project")),
            dbt_statement_timeout=env.get("GHMETRICS_DBT_STATEMENT_TIMEOUT") or "15min",
            refresh_ttl_minutes=_number(env, "GHMETRICS_REFRESH_TTL_MINUTES", 60.0),
            retry_base_seconds=_number(env, "GHMETRICS_RETRY_BASE_SECONDS", 60.0),
            orphan_after_minutes=_number(env, "GHMETRICS_ORPHAN_AFTER_MINUTES", 15.0),
            wave_settle_seconds=_number(env, "GHMETRICS_WAVE_SETTLE_SECONDS", 2.0),
            alert_webhook_url=env.get("GHMETRICS_ALERT_WEBHOOK_URL") or None,
            llm=LLMSettings(
                openai_api_key=env.get("OPENAI_API_KEY") or None,
                openai_base_url=env.get("OPENAI_BASE_URL") or None,
                anthropic_api_key=env.get("ANTHROPIC_API_KEY") or None,
                anthropic_base_url=env.get("ANTHROPIC_BASE_URL") or None,
                timeout_s=_optional_number(env, "GHMETRICS_LLM_TIMEOUT_S"),
                prices=env.get("GHMETRICS_LLM_PRICES") or None,
                budget_run_usd=_optional_number(env, "GHMETRICS_LLM_BUDGET_RUN_USD"),
                budget_day_usd=_optional_number(env, "GHMETRICS_LLM_BUDGET_DAY_USD"),
            ),
            web=WebSettings(
                oauth_client_id=env.get("GHMETRICS_OAUTH_CLIENT_ID", ""),
                oauth_client_secret=env.get("GHMETRICS_OAUTH_CLIENT_SECRET", ""),
                session_secret=env.get("GHMETRICS_WEB_SESSION_SECRET") or None,
                oauth_url=env.get("GHMETRICS_GITHUB_OAUTH_URL", "https://github.com").rstrip("/"),
                scopes=env.get("GHMETRICS_OAUTH_SCOPES") or None,
                public_url=(env.get("GHMETRICS_WEB_PUBLIC_URL") or "").rstrip("/") or None,
                secure_cookies=_flag(env.get("GHMETRICS_WEB_SECURE_COOKIES")),
                organizations=tuple(o.strip() for o in env.get("GHMETRICS_WEB_ORGANIZATIONS", "").split(",")
                                    if o.strip()),
            ),
            verbose=_flag(env.get("GHMETRICS_VERBOSE")),
            debug=_flag(env.get("GHMETRICS_DEBUG")),
        )

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def production(self) -> bool:
        return self.instance in PRODUCTION_INSTANCES

    def require_database(self) -> None:
        """A production instance never falls back to an embedded server: it must name its database."""
        if self.production and not self.database_url:
            raise SettingsError(
                f"GHMETRICS_DATABASE_URL is not set in this {self.instance} instance; "
                "set it to the warehouse's postgresql:// URL (production never starts an embedded Postgres)"
            )

    def home(self) -> Path:
        """Where ghmetrics keeps its embedded state (Postgres, MLflow, keys, reports); created."""
        self.home_path.mkdir(mode=0o711, parents=True, exist_ok=True)
        # Others may pass through (0711) but not list or read: run as root, the embedded Postgres
        # runs as its own user and must reach `pg/` below; keys and reports have their own modes.
        return private_dir(self.home_path, mode=0o711)

    def mlflow_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri_setting or f"sqlite:///{self.home() / 'mlflow.db'}"

    def mlflow_artifact_root(self) -> str | None:
        """GHMETRICS_MLFLOW_ARTIFACT_ROOT; else, for a local store, the home's folder; else None
        (an MLflow server keeps its own artifact location)."""
        if self.mlflow_artifact_root_setting:
            return self.mlflow_artifact_root_setting
        uri = self.mlflow_tracking_uri()
        local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
        return str(self.home() / "mlartifacts") if local else None

    def reports_dir(self) -> str:
        return self.reports_dir_setting or str(self.home() / "reports")

    def child_environ(self, base: Mapping[str, str]) -> dict[str, str]:
        """The variables to add to `base` so that a process started with them loads these
        settings again (the Dagster daemon, the code server, the dashboard's workers): only
        what differs from what `base` says, e.g. the demo's sandbox or `--verbose`."""
        loaded = Settings.from_env(base)
        pairs = {
            "GHMETRICS_HOME": (str(self.home_path), str(loaded.home_path)),
            "GHMETRICS_DATABASE_URL": (self.database_url, loaded.database_url),
            "GITHUB_TOKEN": (",".join(self.github_tokens), ",".join(loaded.github_tokens)),
            "GHMETRICS_GITHUB_API_URL": (self.github_api_url, loaded.github_api_url),
            "GHMETRICS_GITHUB_GRAPHQL_URL": (self.github_graphql_url, loaded.github_graphql_url),
            "GHMETRICS_VERBOSE": ("1" if self.verbose else "", "1" if loaded.verbose else ""),
            "GHMETRICS_OAUTH_CLIENT_ID": (self.web.oauth_client_id, loaded.web.oauth_client_id),
            "GHMETRICS_OAUTH_CLIENT_SECRET": (self.web.oauth_client_secret, loaded.web.oauth_client_secret),
            "GHMETRICS_GITHUB_OAUTH_URL": (self.web.oauth_url, loaded.web.oauth_url),
        }
        return {name: value or "" for name, (value, current) in pairs.items() if value != current}
