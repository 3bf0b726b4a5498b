"""Every GraphQL query the client can send is valid against GitHub's public schema.

Standard validation does not know GitHub's own rules, so these tests add them: every
connection passes `first`/`last` between 1 and 100, one query asks for at most 500,000 nodes,
and the per-page cost the sync relies on (GitHub's formula: requests to fill every connection
at its full `first`, / 100, rounded, minimum 1) holds.
"""

from __future__ import annotations

import functools
from pathlib import Path

import graphql
import pytest

from ghmetrics_dagster.github import queries

SCHEMA_PATH = Path("/work/shared/github/schema.graphql")
if not SCHEMA_PATH.exists():  # a copy beside the tests, if the shared folder is not mounted
    SCHEMA_PATH = Path(__file__).parent / "data" / "github_schema.graphql"

# The variable values the sync passes for `$first`.
PAGE_SIZES = {
    "PullRequests": queries.PR_PAGE_SIZE,
    "Deployments": queries.DEPLOYMENT_PAGE_SIZE,
    "Releases": queries.RELEASE_PAGE_SIZE,
    "Issues": queries.ISSUE_PAGE_SIZE,
}
MAX_POINTS = {"PullRequests": 1, "Deployments": 1, "Releases": 1, "Issues": 1}


@functools.cache
def github_schema() -> graphql.GraphQLSchema:
    return graphql.build_schema(SCHEMA_PATH.read_text(), assume_valid_sdl=True)


def _value(node, variables):
    if isinstance(node, graphql.VariableNode):
        return variables.get(node.name.value)
    return graphql.value_from_ast_untyped(node, variables)


def connection_cost(document: graphql.DocumentNode, variables: dict) -> tuple[int, int, list[str]]:
    """(requests, nodes, problems): GitHub's request count and node count for one query."""
    schema = github_schema()
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, graphql.FragmentDefinitionNode)
    }
    problems: list[str] = []
    totals = {"requests": 0, "nodes": 0}

    def walk(selection_set, parent_type, multiplier, path):
        for selection in selection_set.selections:
            if isinstance(selection, graphql.FragmentSpreadNode):
                fragment = fragments[selection.name.value]
                walk(fragment.selection_set, schema.get_type(fragment.type_condition.name.value), multiplier, path)
                continue
            if isinstance(selection, graphql.InlineFragmentNode):
                condition = selection.type_condition
                target = schema.get_type(condition.name.value) if condition else parent_type
                walk(selection.selection_set, target, multiplier, path)
                continue
            name = selection.name.value
            if name == "__typename":
                continue
            field = parent_type.fields[name]
            field_type = graphql.get_named_type(field.type)
            here = f"{path}.{name}"
            child_multiplier = multiplier
            if field_type.name.endswith("Connection"):
                args = {a.name.value: _value(a.value, variables) for a in selection.arguments}
                size = args.get("first") or args.get("last")
                if size is None or not 1 <= size <= 100:
                    problems.append(f"{here}: first/last must be 1..100, got {size}")
                    size = 100
                totals["requests"] += multiplier
                totals["nodes"] += multiplier * size
                child_multiplier = multiplier * size
            if selection.selection_set:
                walk(selection.selection_set, field_type, child_multiplier, here)

    for definition in document.definitions:
        if isinstance(definition, graphql.OperationDefinitionNode):
            walk(definition.selection_set, schema.query_type, 1, "query")
    return totals["requests"], totals["nodes"], problems


def connections_of(type_name: str, text: str) -> list[str]:
    """The connection fields a query selects on objects of `type_name`, sorted."""
    schema = github_schema()
    document = graphql.parse(text)
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, graphql.FragmentDefinitionNode)}
    found = []

    def walk(selection_set, parent_type):
        for selection in selection_set.selections:
            if isinstance(selection, graphql.FragmentSpreadNode):
                fragment = fragments[selection.name.value]
                walk(fragment.selection_set, schema.get_type(fragment.type_condition.name.value))
            elif isinstance(selection, graphql.InlineFragmentNode):
                condition = selection.type_condition
                walk(selection.selection_set, schema.get_type(condition.name.value) if condition else parent_type)
            elif selection.name.value != "__typename":
                field_type = graphql.get_named_type(parent_type.fields[selection.name.value].type)
                if parent_type.name == type_name and field_type.name.endswith("Connection"):
                    found.append(selection.name.value)
                if selection.selection_set:
                    walk(selection.selection_set, field_type)

    for definition in document.definitions:
        if isinstance(definition, graphql.OperationDefinitionNode):
            walk(definition.selection_set, schema.query_type)
    return sorted(found)


def github_points(requests: int) -> int:
    return max(1, int(requests / 100 + 0.5))


def check_query(name: str, text: str, variables: dict) -> int:
    document = graphql.parse(text)
    errors = graphql.validate(github_schema(), document)
    assert not errors, f"{name}: {[e.message for e in errors]}"
    requests, nodes, problems = connection_cost(document, variables)
    assert not problems, f"{name}: {problems}"
    assert nodes <= 500_000, f"{name} asks for {nodes} nodes"
    return github_points(requests)


@pytest.mark.parametrize("name", sorted(queries.ALL_QUERIES))
def test_query_is_valid_against_github_schema(name):
    variables = {"first": PAGE_SIZES.get(name, 100)}
    points = check_query(name, queries.ALL_QUERIES[name], variables)
    assert points <= MAX_POINTS.get(name, 1), f"{name} costs {points} points per page"


@pytest.mark.parametrize("count", [1, 7, queries.REPOSITORY_BATCH])
def test_batched_repository_query_is_valid_and_costs_one_point(count):
    assert check_query(f"Repositories[{count}]", queries.repositories_query(count), {}) == 1


def test_pull_request_page_is_one_point_and_fifty_would_not_be():
    """Why PR_PAGE_SIZE is 49: three nested connections per PR (timeline events, reviews,
    commits) make 50 round to 2 points."""
    document = graphql.parse(queries.PULL_REQUESTS)
    requests, _, _ = connection_cost(document, {"first": queries.PR_PAGE_SIZE})
    assert requests == 1 + 3 * queries.PR_PAGE_SIZE
    assert github_points(requests) == 1
    requests_50, _, _ = connection_cost(document, {"first": 50})
    assert github_points(requests_50) == 2


def test_labels_and_ready_for_review_share_one_timeline_connection():
    """Labels cost no connection of their own: another nested connection per pull request
    would add PR_PAGE_SIZE requests a page. One timeline connection brings ready-for-review,
    labeled and unlabeled events; the overflow query pages the same events."""
    assert connections_of("PullRequest", queries.PULL_REQUESTS) == ["commits", "reviews", "timelineItems"]
    for text in (queries.PULL_REQUESTS, queries.PULL_REQUEST_TIMELINE):
        assert "itemTypes: [READY_FOR_REVIEW_EVENT, LABELED_EVENT, UNLABELED_EVENT]" in text
    assert f"first: {queries.NESTED_TIMELINE}" in queries.PULL_REQUESTS and 20 <= queries.NESTED_TIMELINE <= 30


def test_issue_page_with_its_closing_event_is_one_point_and_one_more_would_not_be():
    """Why ISSUE_PAGE_SIZE is 74: labels and the latest ClosedEvent are two connections per issue."""
    document = graphql.parse(queries.ISSUES)
    requests, _, _ = connection_cost(document, {"first": queries.ISSUE_PAGE_SIZE})
    assert requests == 1 + 2 * queries.ISSUE_PAGE_SIZE
    assert github_points(requests) == 1
    more, _, _ = connection_cost(document, {"first": queries.ISSUE_PAGE_SIZE + 1})
    assert github_points(more) == 2
    assert "timelineItems(itemTypes: [CLOSED_EVENT], last: 1)" in queries.ISSUES


def test_cost_check_rejects_what_github_rejects():
    bad_size = "query { viewer { repositories(first: 101) { nodes { name } } } }"
    _, _, problems = connection_cost(graphql.parse(bad_size), {})
    assert problems and "1..100" in problems[0]
    missing = "query { viewer { repositories { nodes { name } } } }"
    _, _, problems = connection_cost(graphql.parse(missing), {})
    assert problems
    too_many = (
        "query { viewer { repositories(first: 100) { nodes { issues(first: 100) { nodes {"
        " labels(first: 100) { nodes { name } } } } } } } }"
    )
    _, nodes, _ = connection_cost(graphql.parse(too_many), {})
    assert nodes > 500_000
    invalid = "query { viewer { noSuchField } }"
    assert graphql.validate(github_schema(), graphql.parse(invalid))


def test_repositories_query_refuses_bad_batch_sizes():
    with pytest.raises(ValueError):
        queries.repositories_query(0)
    with pytest.raises(ValueError):
        queries.repositories_query(queries.REPOSITORY_BATCH + 1)
