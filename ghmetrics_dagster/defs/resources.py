"""The Dagster resources: the warehouse, GitHub, the LLM router and MLflow.

`build(settings)` declares them from the one `Settings` the definitions load. Secrets (the
database URL, tokens, API keys, the secret key) are given as `EnvVar`, so the Dagster UI and
run config show the variable's name, never its value; the rest are plain values.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.core import secrets
from ghmetrics_dagster.core.settings import LLMSettings, Settings
from ghmetrics_dagster.github import access
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.summaries.router import Router


def _secret(name: str, value) -> dg.EnvVar | None:
    """The variable `name` when `value` (read from it) is set, else None (the default)."""
    return dg.EnvVar(name) if value else None


class WarehouseResource(dg.ConfigurableResource):
    """The Postgres warehouse: `database_url`, else the embedded server of `home` (never in a
    production instance)."""

    database_url: str | None = None
    home: str = ".ghmetrics"
    instance: str | None = None
    secret_keys: str | None = None  # GHMETRICS_SECRET_KEY; else the home's key file

    def settings(self) -> Settings:
        return Settings(home_path=Path(self.home), database_url=self.database_url, instance=self.instance,
                        secret_keys=self.secret_keys)

    def url(self) -> str:
        return warehouse.database_url(self.settings())

    def keyring(self) -> secrets.Keyring:
        return secrets.keyring(self.settings())


class GitHubResource(dg.ConfigurableResource):
    """GitHub's API: a client for a user (their own stored token first, then the service's), or
    with the service tokens alone."""

    api_url: str
    graphql_url: str
    tokens: str | None = None  # GITHUB_TOKEN: comma-separated service tokens
    allow_insecure_http: bool = False
    warehouse: WarehouseResource  # where the users' own tokens are stored, encrypted

    def service_tokens(self) -> list[str]:
        return [token.strip() for token in (self.tokens or "").split(",") if token.strip()]

    def client(self, tokens: list[str]) -> GitHubClient:
        return GitHubClient(self.api_url, self.graphql_url, tokens, allow_insecure_http=self.allow_insecure_http)

    def own_token(self, login: str) -> str | None:
        return access.own_token(self.warehouse.url(), self.warehouse.keyring(), login)

    def client_for(self, login: str, own: str | None) -> GitHubClient:
        """The user's own token `own` first (it sees their private repositories), then the
        service's. The caller reads `own` once (own_token) and passes it on, so a wave decrypts
        each user's token once."""
        tokens = list(dict.fromkeys(([own] if own else []) + self.service_tokens()))
        if not tokens:
            raise dg.Failure(
                "no GitHub token: set GITHUB_TOKEN or store the user's token with "
                f"`ghmetrics users add {login} --token-stdin`"
            )
        return self.client(tokens)


class LLMResource(dg.ConfigurableResource):
    """The providers' keys and endpoints, prices and budgets the summary router uses."""

    openai_api_key: str | None = None
    openai_base_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    timeout_s: float | None = None
    prices: str | None = None
    budget_run_usd: float | None = None
    budget_day_usd: float | None = None

    def settings(self) -> LLMSettings:
        return LLMSettings(**self.model_dump())

    def router(self, database_url: str, run_id: str | None = None, logger=None) -> Router:
        """A router for one summary: providers with keys, the answer cache and the day's budget
        in the warehouse, this run's budget in memory."""
        return Router.from_settings(self.settings(), database_url, run_id, logger=logger)


class MLflowResource(dg.ConfigurableResource):
    """Where models are tracked and registered (the embedded sqlite store by default)."""

    tracking_uri: str
    artifact_root: str | None = None  # None: a remote server keeps its own artifact location

    def store(self):
        from ml import training  # scikit-learn (2 s): only the ML steps need it

        return training.Store(self.tracking_uri, self.artifact_root)


class ReportsResource(dg.ConfigurableResource):
    """Where the per-user reports are written, and optionally published (s3://...)."""

    directory: str
    uri: str | None = None


class RefreshPolicyResource(dg.ConfigurableResource):
    """How the login sensor turns logins into waves."""

    ttl_minutes: float = 60.0  # a user refreshed this recently is not refreshed again
    retry_base_seconds: float = 60.0  # the first wait after a failed wave; doubles up to an hour
    orphan_after_minutes: float = 15.0  # a running wave silent this long has lost its process
    settle_seconds: float = 2.0  # how long a burst of logins may grow before its wave starts


class AlertsResource(dg.ConfigurableResource):
    """Where run failures are posted (a Slack-compatible webhook); None: nowhere."""

    webhook_url: str | None = None


def build(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    llm = settings.llm
    warehouse_resource = WarehouseResource(
        database_url=_secret("GHMETRICS_DATABASE_URL", settings.database_url),
        home=str(settings.home_path),
        instance=settings.instance,
        secret_keys=_secret("GHMETRICS_SECRET_KEY", settings.secret_keys),
    )
    return {
        "warehouse": warehouse_resource,
        "github": GitHubResource(
            api_url=settings.github_api_url,
            graphql_url=settings.github_graphql_url,
            tokens=_secret("GITHUB_TOKEN", settings.github_tokens),
            allow_insecure_http=settings.allow_insecure_http,
            warehouse=warehouse_resource,
        ),
        "llm": LLMResource(
            openai_api_key=_secret("OPENAI_API_KEY", llm.openai_api_key),
            openai_base_url=llm.openai_base_url,
            anthropic_api_key=_secret("ANTHROPIC_API_KEY", llm.anthropic_api_key),
            anthropic_base_url=llm.anthropic_base_url,
            timeout_s=llm.timeout_s,
            prices=llm.prices,
            budget_run_usd=llm.budget_run_usd,
            budget_day_usd=llm.budget_day_usd,
        ),
        "mlflow": MLflowResource(
            tracking_uri=_secret("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri_setting)
            or settings.mlflow_tracking_uri(),
            artifact_root=settings.mlflow_artifact_root(),
        ),
        "reports": ReportsResource(directory=settings.reports_dir(), uri=settings.reports_uri),
        "alerts_webhook": AlertsResource(webhook_url=_secret("GHMETRICS_ALERT_WEBHOOK_URL", settings.alert_webhook_url)),
        "refresh_policy": RefreshPolicyResource(
            ttl_minutes=settings.refresh_ttl_minutes,
            retry_base_seconds=settings.retry_base_seconds,
            orphan_after_minutes=settings.orphan_after_minutes,
            settle_seconds=settings.wave_settle_seconds,
        ),
    }

