"""The metric model's configuration: data contracts of the marts, the DORA benchmark segment,
per-repository rules (no Dagster import)."""
