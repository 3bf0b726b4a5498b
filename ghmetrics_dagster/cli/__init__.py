"""The `ghmetrics` command line: the commands (main.py and one module per command group) and the
local orchestration they drive (pipeline.py runs waves through the shared Dagster instance,
dagster_home.py prepares it, home_sandbox.py serves the demo's organisation again)."""

from ghmetrics_dagster.cli.main import main

__all__ = ["main"]
