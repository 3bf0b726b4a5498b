"""Keeps secrets out of logs, metadata and error messages."""

from __future__ import annotations

import re

# GitHub token formats (classic, fine-grained, app) and provider keys.
_SECRET_PATTERNS = [
    re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,})\b"),
    re.compile(r"\b(github_pat_[A-Za-z0-9_]{20,})\b"),
    re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,})\b"),
    re.compile(r"(?i)(authorization:\s*(?:bearer|token)\s+)(\S+)"),
    re.compile(r"(?i)(://[^:/@\s]+:)([^@\s]+)(@)"),
    # Database passwords in a URL's query (`?password=`), a libpq keyword string
    # (`password='a b'`) or an environment-style assignment.
    re.compile(r"(?i)((?:^|(?<=[\s?&;,(]))[\w.-]*(?:password|passwd|pwd|secret)\s*=\s*)('(?:[^'\\]|\\.)*'|\"[^\"]*\"|[^\s&;,)]+)"),
    re.compile(r'(?i)("[\w.-]*(?:password|passwd|secret|token)"\s*:\s*)("(?:[^"\\]|\\.)*")'),
]


def mask(secret: str | None) -> str:
    """A recognisable but useless form of a secret: its first 4 characters."""
    if not secret:
        return "(not set)"
    return secret[:4] + "…" + f"({len(secret)} chars)"


def redact(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Removes the given secrets and anything shaped like a token from `text`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        if pattern.groups == 3:
            text = pattern.sub(r"\1***\3", text)
        elif pattern.groups == 2:
            text = pattern.sub(r"\1***", text)
        else:
            text = pattern.sub("***", text)
    return text


def mask_database_url(url: str) -> str:
    """A database URL or libpq keyword string for messages: every password masked, whatever
    the form (`user:pass@`, `?password=`, `password=` keyword)."""
    return redact(url)
