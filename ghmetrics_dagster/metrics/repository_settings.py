"""Per-repository metric rules in app.repository_settings (docs/contracts.md, `app` tables).

A missing row or a null column means the default. Regexes are Python style limited to what
Postgres `~` accepts; a leading `(?i)` means case-insensitive (the dbt models run `~*` with the
prefix stripped). Both engines check a regex before it is stored, so a rule that cannot run in
dbt is refused here with one clear line instead of failing the next build.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import psycopg2

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.warehouse import app_data

DEPLOYMENT_SOURCES = ("auto", "github_deployments", "workflow_runs", "releases", "merges")
DEFAULTS = {
    "deployment_source": "auto",
    "production_environment_regex": r"(?i)^prod(uction)?$",
    "deploy_workflow_regex": r"(?i)deploy",
    "incident_label_regex": r"(?i)^(incident|outage|sev[0-9].*)$",
    # docs/dora.md: a merged pull request with a matching label or head branch is rework.
    "hotfix_label_regex": r"(?i)^hot-?fix$",
    "hotfix_branch_regex": r"(?i)^hot-?fix[/_-]",
}
REGEX_FIELDS = (
    "production_environment_regex", "deploy_workflow_regex", "incident_label_regex",
    "hotfix_label_regex", "hotfix_branch_regex",
)
FIELDS = ("deployment_source", *REGEX_FIELDS)  # the columns of app.repository_settings
_REPO_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_CASE_INSENSITIVE = "(?i)"


class SettingsError(ValueError):
    """A repository setting is invalid; the message names it and says what to use."""


@dataclass(frozen=True)
class RepositorySettings:
    """Stored values; None = the default."""

    repo_full_name: str
    deployment_source: str | None = None
    production_environment_regex: str | None = None
    deploy_workflow_regex: str | None = None
    incident_label_regex: str | None = None
    hotfix_label_regex: str | None = None
    hotfix_branch_regex: str | None = None

    def effective(self) -> dict[str, str]:
        """Every rule with the defaults filled in."""
        values = asdict(self)
        return {name: values[name] if values[name] is not None else default for name, default in DEFAULTS.items()}


def postgres_pattern(regex: str) -> tuple[str, bool]:
    """(pattern for Postgres, case_insensitive): `(?i)x` becomes `x` matched with `~*`."""
    if regex.startswith(_CASE_INSENSITIVE):
        return regex[len(_CASE_INSENSITIVE):], True
    return regex, False


def validate_repo_name(repo_full_name: str) -> str:
    name = (repo_full_name or "").strip()
    if not _REPO_NAME.match(name):
        raise SettingsError(f"{repo_full_name!r} is not a repository name; use OWNER/NAME, e.g. acme/api")
    return name


def validate_regex(field: str, regex: str) -> str:
    """Checks a rule regex with Python's re (the syntax the contract promises)."""
    option = "--" + field.replace("_", "-")
    if regex == "":
        raise SettingsError(f"{option} is empty; give a regex, or `default` to use {DEFAULTS[field]}")
    pattern, _ = postgres_pattern(regex)
    if "(?" in pattern and re.search(r"\(\?[aiLmsux-]+\)", pattern):
        raise SettingsError(
            f"{option} {regex!r}: inline flags are only supported as a leading (?i); "
            "remove them or start the regex with (?i) for case-insensitive matching"
        )
    try:
        re.compile(pattern)
    except re.error as exc:
        raise SettingsError(f"{option} {regex!r} is not a valid regex ({exc}); fix the pattern") from None
    refused = _engine_mismatch(pattern)
    if refused:
        raise SettingsError(f"{option} {regex!r}: {refused}")
    return regex


# Escapes the two engines read differently, and back-references, which Postgres runs by
# backtracking (seconds per row on a hostile pattern).
_ESCAPE_PROBLEMS = {
    "b": "\\b is a word boundary in Python but a backspace in Postgres; use (^|[^A-Za-z0-9_]) and ([^A-Za-z0-9_]|$), which both read alike",
    "B": "\\B is a non-boundary in Python but a backslash in Postgres; remove it",
}
_BACKREFERENCE = "back-references are refused (Postgres may take seconds per row on them); rewrite the pattern without them"


def _engine_mismatch(pattern: str) -> str | None:
    """Why `pattern` would not mean the same, or not run safely, in Postgres; None if fine."""
    if "(?P=" in pattern or "\\k<" in pattern:
        return _BACKREFERENCE
    i = 0
    while i < len(pattern) - 1:
        if pattern[i] == "\\":
            escaped = pattern[i + 1]
            if escaped in _ESCAPE_PROBLEMS:
                return _ESCAPE_PROBLEMS[escaped]
            if escaped.isdigit() and escaped != "0":
                return _BACKREFERENCE
            i += 2  # `\\b` is a backslash then a b
            continue
        i += 1
    return None


def validate(
    repo_full_name: str,
    deployment_source: str | None = None,
    production_environment_regex: str | None = None,
    deploy_workflow_regex: str | None = None,
    incident_label_regex: str | None = None,
    hotfix_label_regex: str | None = None,
    hotfix_branch_regex: str | None = None,
) -> RepositorySettings:
    """Validated settings (None leaves a value as it is; the string `default` resets it)."""
    name = validate_repo_name(repo_full_name)
    if deployment_source is not None and deployment_source != "default":
        if deployment_source not in DEPLOYMENT_SOURCES:
            raise SettingsError(
                f"--deployment-source {deployment_source!r} is not a deployment source; "
                f"use one of {', '.join(DEPLOYMENT_SOURCES)}"
            )
    regexes = {
        "production_environment_regex": production_environment_regex,
        "deploy_workflow_regex": deploy_workflow_regex,
        "incident_label_regex": incident_label_regex,
        "hotfix_label_regex": hotfix_label_regex,
        "hotfix_branch_regex": hotfix_branch_regex,
    }
    for field, regex in regexes.items():
        if regex is not None and regex != "default":
            validate_regex(field, regex)
    return RepositorySettings(name, deployment_source, **regexes)


def _check_in_postgres(cur, field: str, regex: str) -> None:
    """Postgres accepts a subset of Python's syntax (no named groups, for one): try it there."""
    pattern, insensitive = postgres_pattern(regex)
    operator = "~*" if insensitive else "~"
    cur.execute("savepoint regex_check")
    try:
        cur.execute(f"select '' {operator} %s", (pattern,))
    except psycopg2.Error as exc:
        cur.execute("rollback to savepoint regex_check")
        reason = (exc.pgerror or str(exc)).strip().splitlines()[0].removeprefix("ERROR:").strip()
        option = "--" + field.replace("_", "-")
        raise SettingsError(
            f"{option} {regex!r} is not a regex Postgres can run ({reason}); "
            "use the syntax common to Python and Postgres"
        ) from None
    cur.execute("release savepoint regex_check")


def set_repository_settings(
    url: str,
    repo_full_name: str,
    deployment_source: str | None = None,
    production_environment_regex: str | None = None,
    deploy_workflow_regex: str | None = None,
    incident_label_regex: str | None = None,
    hotfix_label_regex: str | None = None,
    hotfix_branch_regex: str | None = None,
) -> RepositorySettings:
    """Validates and writes app.repository_settings; returns the stored row.

    A None argument leaves the stored value unchanged; `default` sets it back to the default.
    """
    requested = validate(repo_full_name, deployment_source, production_environment_regex,
                         deploy_workflow_regex, incident_label_regex, hotfix_label_regex,
                         hotfix_branch_regex)
    changes = {
        field: getattr(requested, field)
        for field in FIELDS
        if getattr(requested, field) is not None
    }
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        for field in REGEX_FIELDS:
            if changes.get(field) not in (None, "default"):
                _check_in_postgres(cur, field, changes[field])
        values = {field: (None if value == "default" else value) for field, value in changes.items()}
        app_data.update_repository_settings(cur, requested.repo_full_name, values)
    return get_repository_settings(url, requested.repo_full_name)


def get_repository_settings(url: str, repo_full_name: str) -> RepositorySettings:
    """The stored settings of a repository (all None when it has no row)."""
    name = validate_repo_name(repo_full_name)
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        row = app_data.repository_settings(cur, name, FIELDS)
    return RepositorySettings(name, *row) if row else RepositorySettings(name)
