"""Refresh waves planned from logins, and the messages a failed run posts (no Dagster import)."""
