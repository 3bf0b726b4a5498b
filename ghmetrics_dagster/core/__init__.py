"""Shared basics: the settings, secrets at rest, redaction of secrets in messages."""
