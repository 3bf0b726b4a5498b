"""The `users` dynamic partitions: one partition per GitHub login that uses ghmetrics."""

import warnings

import dagster as dg

users_partitions = dg.DynamicPartitionsDefinition(name="users")

# A wave covers a range of these partitions in one run (defs/users.py), which needs the
# assets' BackfillPolicy.single_run(); Dagster still labels that parameter beta.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
