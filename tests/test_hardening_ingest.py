"""Finding 7: one bad value fails one row, not everyone (sandbox over HTTP, real Postgres, dbt)."""

from __future__ import annotations

import json

import pytest
from test_dbt_models import run_dbt

from ghmetrics_dagster import sync, warehouse
from ghmetrics_dagster.github import queries, validate
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.sandbox import generator, server
from ghmetrics_dagster.sandbox.server import Scripted


@pytest.fixture(scope="module")
def org():
    return generator.generate(11, repos=2, prs_per_repo=12, weeks=4, users=4)


def make_client(sb) -> GitHubClient:
    return GitHubClient(sb.rest_url, sb.graphql_url, list(sb.tokens), backoff_base=0.01, timeout=5)


def count(url: str, sql: str, *args) -> int:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


def test_malformed_pull_requests_are_quarantined_and_the_rest_of_the_repository_continues(org, database_url):
    repo = org.repositories[0]
    with server.run_sandbox(org) as sb:
        client = make_client(sb)
        variables = {"owner": repo.owner, "name": repo.name, "first": queries.PR_PAGE_SIZE, "after": None}
        page = client.graphql(queries.PULL_REQUESTS, variables)
        nodes = page["repository"]["pullRequests"]["nodes"]
        nodes[0]["additions"] = "12k"  # stored, it failed every user's dbt build
        del nodes[1]["reviews"]  # was KeyError: 'reviews'
        nodes[2]["createdAt"] = 17  # was TypeError
        nodes[3] = ["not", "an", "object"]  # was AttributeError
        sb.script(Scripted(match="query PullRequests", body=json.dumps({"data": page})))
        report = sync.sync_repositories(database_url, client, [repo.full_name])
    stream = report.repositories[0].streams["pull_requests"]
    assert stream.status == "ok" and stream.quarantined == 4, stream
    assert report.metadata()["rows_quarantined"] == 4
    assert count(database_url, "select count(*) from raw.pull_requests") == len(nodes) - 4
    reasons = dict(
        (key, reason)
        for key, reason in _rows(database_url, "select object_key, reason from raw.quarantine where stream = 'pull_requests'")
    )
    assert reasons[nodes[0]["id"]] == 'additions should be int but is "12k"'
    assert reasons[nodes[1]["id"]] == "reviews is missing or not a connection"
    assert reasons[nodes[2]["id"]] == "createdAt should be time but is 17"
    assert any(r == "object is a list, not an object" for r in reasons.values())
    # The other streams of the repository went on as usual.
    assert all(s.status == "ok" for s in report.repositories[0].streams.values() if s.stream != "pull_requests")


def test_a_malformed_workflow_run_on_a_full_page_does_not_end_the_pass(database_url):
    """Workflow runs follow the rule of the other streams: a page cut short by quarantine ends
    the pass only on an old run or the last page (it used to end it, skipping older pages)."""
    org = generator.generate(11, repos=2, prs_per_repo=80, weeks=16, users=4)
    repo = org.repositories[1]
    assert len(repo.workflow_runs) > 100  # two pages
    with server.run_sandbox(org) as sb:
        client = make_client(sb)
        page = client.rest(f"/repos/{repo.full_name}/actions/runs", {"per_page": 100}).data
        page["workflow_runs"][5]["created_at"] = 17
        sb.script(Scripted(match="/actions/runs", body=json.dumps(page)))
        report = sync.sync_repositories(database_url, client, [repo.full_name], streams=["workflow_runs"])
    stream = report.repositories[0].streams["workflow_runs"]
    assert stream.status == "ok" and stream.quarantined == 1 and stream.pages == 2, stream
    assert count(database_url, "select count(*) from raw.workflow_runs") == len(repo.workflow_runs) - 1


def test_non_string_name_with_owner_quarantines_one_repository_not_the_batch(org, database_url):
    names = [r.full_name for r in org.repositories]
    with server.run_sandbox(org) as sb:
        client = make_client(sb)
        variables = {}
        for i, name in enumerate(names):
            variables[f"o{i}"], variables[f"n{i}"] = name.split("/")
        data = client.graphql(queries.repositories_query(len(names)), variables)
        data["r0"]["nameWithOwner"] = {"evil": True}
        sb.script(Scripted(match="query Repositories", body=json.dumps({"data": data})))
        report = sync.sync_repositories(database_url, client, names)
    first, second = report.repositories
    assert "malformed repository object (nameWithOwner should be str" in first.error
    assert second.ok and second.streams["pull_requests"].rows["pull_requests"] > 0
    assert count(database_url, "select count(*) from raw.quarantine where stream = 'repositories'") == 1
    assert report.metadata()["rows_quarantined"] == 1


def _rows(url: str, sql: str) -> list[tuple]:
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_staging_casts_never_fail_the_build_on_a_bad_stored_value(database_url, tmp_path):
    """A value stored before validation existed (or by another writer) gives null, not an error."""
    bad = {
        "id": "PR_bad", "number": 1, "state": "MERGED", "additions": "12k", "deletions": "x",
        "isDraft": "maybe", "createdAt": "2026-02-30T00:00:00Z", "mergedAt": "yesterday",
        "closedAt": "0000-00-00", "author": "not-an-object",
    }
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "insert into raw.pull_requests (id, repo_full_name, number, data, updated_at)"
            " values ('PR_bad', 'acme/api', 1, %s, now())",
            (json.dumps(bad),),
        )
        cur.execute(
            "insert into raw.deployments (id, repo_full_name, data, updated_at)"
            " values ('D_bad', 'acme/api', %s, now())",
            (json.dumps({"id": "D_bad", "environment": "production", "createdAt": "soon", "statuses": {"x": 1}}),),
        )
    run_dbt(database_url, "run", "--select", "stg_github__pull_requests", "stg_github__deployments",
            target_path=tmp_path / "target")
    row = _rows(database_url, "select additions, deletions, is_draft, created_at, merged_at from staging.stg_github__pull_requests")
    assert row == [(0, 0, False, None, None)]


def test_validation_accepts_every_object_the_sandbox_serves(org):
    """No false positives: the specs fit GitHub's real shapes (the sandbox follows its schema)."""
    repo = org.repositories[0]
    with server.run_sandbox(org) as sb:
        client = make_client(sb)
        variables = {"owner": repo.owner, "name": repo.name, "first": queries.PR_PAGE_SIZE, "after": None}
        nodes = client.graphql(queries.PULL_REQUESTS, variables)["repository"]["pullRequests"]["nodes"]
        runs = client.rest(f"/repos/{repo.full_name}/actions/runs", {"per_page": 100}).data["workflow_runs"]
        issues = client.graphql(queries.ISSUES, {"owner": repo.owner, "name": repo.name, "first": queries.ISSUE_PAGE_SIZE,
                                                 "after": None, "since": None})["repository"]["issues"]["nodes"]
    assert validate.split("pull_requests", nodes)[1] == []
    assert validate.split("issues", issues)[1] == [] and any(i["closedBy"]["nodes"] for i in issues)
    assert validate.split("workflow_runs", runs)[1] == []


def test_a_bad_label_or_closer_quarantines_its_object_and_the_rest_continue(org, database_url):
    """Labels are replayed from the timeline: a label event without a string name (nested, or
    in the overflow pages) would store a wrong label list, so its pull request is set aside; so
    is an issue whose closer is not a proper object."""
    repo = org.repositories[0]
    with server.run_sandbox(org) as sb:
        client = make_client(sb)
        variables = {"owner": repo.owner, "name": repo.name, "first": queries.PR_PAGE_SIZE, "after": None}
        page = client.graphql(queries.PULL_REQUESTS, variables)
        nodes = page["repository"]["pullRequests"]["nodes"]
        label = {"__typename": "LabeledEvent", "createdAt": "2026-05-04T13:00:00Z", "label": {"name": 7}}
        nodes[0]["timeline"]["nodes"].append(label)
        nodes[1]["timeline"]["nodes"] = {"not": "a list"}
        # The next one has more events than the page nests; the overflow page is malformed.
        nodes[2]["timeline"]["pageInfo"] = {"hasNextPage": True, "endCursor": "Y3Vyc29yOnYyOjA="}
        overflow = {"node": {"timelineItems": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                                               "nodes": [{"__typename": "UnlabeledEvent", "label": {"name": None}}]}}}
        issues = client.graphql(queries.ISSUES, {"owner": repo.owner, "name": repo.name,
                                                 "first": queries.ISSUE_PAGE_SIZE, "after": None, "since": None})
        issue_nodes = issues["repository"]["issues"]["nodes"]
        issue_nodes[0]["closedBy"] = {"nodes": [{"closer": "PR_1"}]}
        sb.script(
            Scripted(match="query PullRequests", body=json.dumps({"data": page})),
            Scripted(match="query PullRequestTimeline", body=json.dumps({"data": overflow})),
            Scripted(match="query Issues", body=json.dumps({"data": issues})),
        )
        report = sync.sync_repositories(database_url, client, [repo.full_name], streams=["pull_requests", "issues"])
    streams = report.repositories[0].streams
    assert streams["pull_requests"].status == "ok" and streams["pull_requests"].quarantined == 3
    assert streams["issues"].status == "ok" and streams["issues"].quarantined == 1
    reasons = dict(_rows(database_url, "select object_key, reason from raw.quarantine"))
    assert reasons[nodes[0]["id"]].endswith("label.name should be str but is 7")
    assert reasons[nodes[1]["id"]] == "timeline.nodes is not a list"
    assert reasons[nodes[2]["id"]] == "timelineItems overflow: nodes[0].label.name is missing"
    assert reasons[issue_nodes[0]["id"]] == "closedBy.nodes[0].closer is a str, not an object"
    assert count(database_url, "select count(*) from raw.pull_requests") == len(nodes) - 3
    assert count(database_url, "select count(*) from raw.issues") == len(issue_nodes) - 1
    assert count(database_url, "select count(*) from raw.pull_requests where jsonb_typeof(data -> 'labels') <> 'array'") == 0
