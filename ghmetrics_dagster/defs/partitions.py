"""The `users` dynamic partitions: one partition per GitHub login that uses ghmetrics."""

import dagster as dg

users_partitions = dg.DynamicPartitionsDefinition(name="users")
