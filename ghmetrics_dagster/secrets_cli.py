"""`ghmetrics secrets`: the key that encrypts stored tokens."""

from __future__ import annotations

import os

import click


@click.group("secrets")
def secrets_group() -> None:
    """The key that encrypts the users' stored GitHub tokens."""


@secrets_group.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored token under a new key (old keys are dropped afterwards)."""
    from ghmetrics_dagster import secrets, warehouse

    url = warehouse.database_url()
    warehouse.migrate(url)
    with warehouse.connect(url) as conn:
        count, kid = secrets.rotate(conn)
    click.echo(f"{count} stored token(s) re-encrypted under key {kid}")
    if os.environ.get(secrets.ENV_VAR):
        click.echo(f"now remove every key but the first from {secrets.ENV_VAR}")
