"""`ghmetrics secrets`: the key that encrypts stored tokens."""

from __future__ import annotations

import click


@click.group("secrets")
def secrets_group() -> None:
    """The key that encrypts the users' stored GitHub tokens."""


@secrets_group.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored token under a new key (old keys are dropped afterwards)."""
    from ghmetrics_dagster import warehouse
    from ghmetrics_dagster.cli.main import current_settings
    from ghmetrics_dagster.core import secrets

    settings = current_settings()
    url = warehouse.database_url(settings)
    warehouse.migrate(url)
    with warehouse.connect(url) as conn:
        count, kid = secrets.keyring(settings).rotate(conn)
    click.echo(f"{count} stored token(s) re-encrypted under key {kid}")
    if settings.secret_keys:
        click.echo(f"now remove every key but the first from {secrets.ENV_VAR}")
