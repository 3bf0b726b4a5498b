"""Shape and type checks of GitHub objects before they are upserted into `raw`.

One malformed object (a pull request with `"additions": "12k"`, a non-string `nameWithOwner`)
must not stop its repository's sync nor, once stored, fail every user's dbt build. Each object
is checked against the fields the sync and the staging models read; a bad one goes to
`raw.quarantine` with the reason, and the rest of the page continues.

A spec maps a field to its type: "str", "int", "bool", "time" (ISO 8601), "list", a nested
spec (dict), a connection `("conn", node_spec)` or a list of objects `("list_of", node_spec)`
(null items allowed, as GraphQL nodes lists have them); a trailing "?" allows null or absence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

_ACTOR = {"login": "str?"}
_PAGE_INFO = {"hasNextPage": "bool", "endCursor": "str?"}

REVIEW = {"id": "str", "state": "str?", "submittedAt": "time?", "createdAt": "time?", "author": (_ACTOR, True)}
COMMIT = {
    "commit": (
        {"oid": "str", "authoredDate": "time?", "committedDate": "time?", "additions": "int?", "deletions": "int?"},
        False,
    )
}
DEPLOYMENT_STATUS = {"id": "str?", "state": "str", "createdAt": "time"}
# A pull request's timeline item (ReadyForReviewEvent, LabeledEvent, UnlabeledEvent): a label
# without a string name would replay into a wrong label list.
TIMELINE_ITEM = {"__typename": "str", "createdAt": "time?", "label": ({"name": "str"}, True)}
# An issue's latest ClosedEvent: its closer, when it is a pull request, needs a string id.
CLOSED_EVENT = {"closer": ({"__typename": "str?", "id": "str?", "number": "int?"}, True)}

SPECS: dict[str, dict] = {
    "repositories": {
        "id": "str", "nameWithOwner": "str", "isArchived": "bool?", "isFork": "bool?", "isEmpty": "bool?",
        "createdAt": "time?", "updatedAt": "time?",
    },
    "pull_requests": {
        "id": "str", "number": "int", "state": "str", "isDraft": "bool?", "createdAt": "time", "updatedAt": "time",
        "closedAt": "time?", "mergedAt": "time?", "additions": "int?", "deletions": "int?", "changedFiles": "int?",
        "author": (_ACTOR, True), "headRefName": "str?",
        "timeline": ("conn", TIMELINE_ITEM), "reviews": ("conn", REVIEW), "commits": ("conn", COMMIT),
    },
    "pull_request_timeline": {"nodes": ("list_of", TIMELINE_ITEM)},
    "pull_request_reviews": REVIEW,
    "pull_request_commits": COMMIT,
    "deployments": {
        "id": "str", "environment": "str", "createdAt": "time", "updatedAt": "time?",
        "statuses": ("conn", DEPLOYMENT_STATUS),
    },
    "deployment_statuses": DEPLOYMENT_STATUS,
    "releases": {"id": "str", "isDraft": "bool?", "isPrerelease": "bool?", "createdAt": "time", "publishedAt": "time?"},
    "issues": {
        "id": "str", "number": "int", "state": "str?", "createdAt": "time", "updatedAt": "time", "closedAt": "time?",
        "labels": ({"nodes": ("list_of", {"name": "str"})}, True),
        "closedBy": ({"nodes": ("list_of", CLOSED_EVENT)}, True),
    },
    "workflow_runs": {
        "id": "int", "status": "str?", "conclusion": "str?", "created_at": "time", "updated_at": "time?",
        "head_sha": "str?", "event": "str?",
    },
}

_INT_BOUND = 2**31  # staging casts to integer


def _time_ok(value: str) -> bool:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None and 1 <= parsed.year <= 9999


def _check_value(kind: str, value: Any) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":  # bool is an int in Python, never in JSON
        return isinstance(value, int) and not isinstance(value, bool) and -_INT_BOUND < value < _INT_BOUND
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "time":
        return isinstance(value, str) and _time_ok(value)
    if kind == "list":
        return isinstance(value, list)
    raise ValueError(f"unknown field type {kind!r}")


def problem(spec: dict, obj: Any, path: str = "") -> str | None:
    """Why `obj` does not fit `spec` (the first reason found), or None."""
    if not isinstance(obj, dict):
        return f"{path or 'object'} is a {type(obj).__name__}, not an object"
    for field, kind in spec.items():
        where = f"{path}.{field}" if path else field
        value = obj.get(field)
        if isinstance(kind, tuple) and kind[0] == "conn":
            if not isinstance(value, dict):
                return f"{where} is missing or not a connection"
            reason = problem(_PAGE_INFO, value.get("pageInfo"), f"{where}.pageInfo")
            if reason:
                return reason
            nodes = value.get("nodes")
            if not isinstance(nodes, list):
                return f"{where}.nodes is not a list"
            for i, node in enumerate(nodes):
                if node is not None and (reason := problem(kind[1], node, f"{where}.nodes[{i}]")):
                    return reason
            continue
        if isinstance(kind, tuple) and kind[0] == "list_of":
            if not isinstance(value, list):
                return f"{where} is missing or not a list"
            for i, item in enumerate(value):
                if item is not None and (reason := problem(kind[1], item, f"{where}[{i}]")):
                    return reason
            continue
        if isinstance(kind, tuple):  # (nested spec, nullable)
            nested, nullable = kind
            if value is None and nullable:
                continue
            reason = problem(nested, value, where)
            if reason:
                return reason
            continue
        optional = kind.endswith("?")
        if value is None:
            if optional:
                continue
            return f"{where} is missing"
        if not _check_value(kind.rstrip("?"), value):
            shown = json.dumps(value, default=str)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            return f"{where} should be {kind.rstrip('?')} but is {shown}"
    return None


def object_key(obj: Any) -> str:
    """The object's id when it has a usable one, else a hash of its content."""
    if isinstance(obj, dict) and isinstance(obj.get("id"), (str, int)) and not isinstance(obj.get("id"), bool):
        return str(obj["id"])
    return "sha256:" + hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:32]


def split(kind: str, objects: list[Any]) -> tuple[list[dict], list[tuple[str, str, Any]]]:
    """(valid objects, [(object key, reason, object)]) for the objects of a `kind` in SPECS."""
    spec = SPECS[kind]
    good, bad = [], []
    for obj in objects:
        reason = problem(spec, obj)
        if reason is None:
            good.append(obj)
        else:
            bad.append((object_key(obj), reason, obj))
    return good, bad
