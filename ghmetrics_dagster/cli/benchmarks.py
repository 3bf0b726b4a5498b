"""`ghmetrics benchmark`: which DORA 2025 benchmark segment the scores are compared with."""

from __future__ import annotations

import click

from ghmetrics_dagster.metrics import benchmarks


@click.group("benchmark")
def benchmark_group() -> None:
    """DORA's 2025 Quick Check benchmark the scores are compared with."""


def _print(choice: benchmarks.BenchmarkChoice) -> None:
    click.echo(f"benchmark: {choice.describe(benchmarks.segments())} (DORA 2025 Quick Check)")


@benchmark_group.command("show")
def benchmark_show() -> None:
    """Shows the segment in use and the ones to choose from."""
    from ghmetrics_dagster.cli.main import _migrated_url

    url = _migrated_url()
    _print(benchmarks.get_choice(url))
    known = benchmarks.segments()
    for kind, title in (("industry", "industries"), ("organization_size", "organisation sizes")):
        click.echo(f"{title}: " + ", ".join(segment for k, segment in known if k == kind))


@benchmark_group.command("set")
@click.option("--industry", metavar="KEY", help="Compare with this industry (`default`: all industries).")
@click.option("--organization-size", metavar="KEY", help="Compare with this organisation size (`default` clears it).")
def benchmark_set(industry: str | None, organization_size: str | None) -> None:
    """Chooses the segment; the industry wins when both are set. The marts follow on their next refresh."""
    if industry is None and organization_size is None:
        raise click.UsageError("give --industry or --organization-size (see `ghmetrics benchmark show`)")
    from ghmetrics_dagster.cli.main import _migrated_url

    url = _migrated_url()
    try:
        choice = benchmarks.set_choice(url, industry=industry, organization_size=organization_size)
    except benchmarks.BenchmarkError as exc:
        raise click.ClickException(str(exc)) from None
    _print(choice)
