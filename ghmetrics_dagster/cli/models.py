"""`ghmetrics models ...`: see and roll back the registered models (the lead attaches `models`)."""

from __future__ import annotations

import click

from ml import registry


@click.group("models")
def models() -> None:
    """Registered models (ghmetrics-performance, ghmetrics-anomaly) and their champion alias."""


@models.command("list")
def list_models() -> None:
    """Every version with its aliases, data watermark, sample count and holdout metric."""
    from ghmetrics_dagster.cli.main import current_settings
    from ml import training  # scikit-learn loads only for this command

    store = training.store_for(current_settings())
    rows = registry.list_versions(registry.client(store.tracking_uri))
    if not rows:
        click.echo(f"no registered models in {store.tracking_uri} yet; materialise ml/performance_model and ml/anomaly_model")
        return
    header = ("model", "version", "aliases", "created (UTC)", "samples", "watermark", "holdout", "dagster run")
    table = [header] + [
        (r.name, r.version, ",".join(r.aliases) or "-", r.created, r.sample_count, r.watermark, r.headline, r.run_id)
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())


@models.command("rollback")
@click.argument("name", type=click.Choice(list(registry.MODEL_NAMES)))
@click.option("--version", "version", type=int, required=True, help="The version to make champion again.")
def rollback(name: str, version: int) -> None:
    """Moves NAME's champion alias back to VERSION."""
    from ghmetrics_dagster.cli.main import current_settings
    from ml import training  # scikit-learn loads only for this command

    store = training.store_for(current_settings())
    try:
        before = registry.rollback(registry.client(store.tracking_uri), name, version)
    except registry.RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name}: champion moved from {('version ' + before) if before else 'none'} to version {version}")
