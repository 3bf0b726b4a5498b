"""`python -m ghmetrics_dagster.cli`: the `ghmetrics` command."""

from ghmetrics_dagster.cli.main import main

main()
