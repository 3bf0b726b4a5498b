"""The GitHub sandbox server over real HTTP on 127.0.0.1: REST, GraphQL, limits and faults."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from ghmetrics_dagster.sandbox.limits import FaultConfig
from ghmetrics_dagster.sandbox.sample_org import sample_organization
from ghmetrics_dagster.sandbox.server import run_sandbox

PR_PAGE = """
query PullRequests($owner: String!, $name: String!, $first: Int!, $after: String) {
  repository(owner: $owner, name: $name) {
    pullRequests(first: $first, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        id databaseId number title state isDraft createdAt updatedAt mergedAt
        author { __typename login }
        readyForReview: timelineItems(itemTypes: [READY_FOR_REVIEW_EVENT], first: 1) {
          nodes { ... on ReadyForReviewEvent { createdAt } }
        }
        reviews(first: 25) { totalCount nodes { databaseId state author { login } } }
        commits(first: 25) { totalCount nodes { commit { oid author { user { login } } } } }
      }
    }
  }
  rateLimit { cost limit remaining used nodeCount }
}
"""


def session(token: str | None) -> requests.Session:
    s = requests.Session()
    if token:
        s.headers["Authorization"] = f"token {token}"
    return s


def gql(s: requests.Session, url: str, query: str, **variables) -> dict:
    response = s.post(url, json={"query": query, "variables": variables}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def org():
    return sample_organization(seed=5, repos=2, prs_per_repo=45)


@pytest.fixture(scope="module")
def sandbox(org):
    with run_sandbox(org) as handle:
        yield handle


def test_rest_pulls_paginate_with_link_headers_and_caps(sandbox, org):
    s = session(sandbox.tokens[0])
    repo = org.repositories[0]
    url = f"{sandbox.rest_url}/repos/{repo.full_name}/pulls?state=all&sort=updated&direction=desc&per_page=20"
    numbers, pages = [], 0
    while url:
        response = s.get(url, timeout=10)
        assert response.status_code == 200
        numbers += [p["number"] for p in response.json()]
        pages += 1
        url = response.links.get("next", {}).get("url")
        if pages == 1:
            assert response.links["last"]["url"].endswith("page=3")
            assert url.startswith(sandbox.rest_url)
    assert pages == 3
    expected = [p.number for p in sorted(repo.pull_requests, key=lambda p: (p.updated_at, p.database_id), reverse=True)]
    assert numbers == expected

    # The default page is 30; per_page above 100 is clamped to 100; state defaults to open.
    default = s.get(f"{sandbox.rest_url}/repos/{repo.full_name}/pulls?state=all").json()
    assert len(default) == 30
    open_prs = s.get(f"{sandbox.rest_url}/repos/{repo.full_name}/pulls").json()
    assert {p["state"] for p in open_prs} == {"open"}
    assert len(open_prs) == sum(1 for p in repo.pull_requests if p.closed_at is None)
    org_big = sample_organization(seed=1, repos=1, prs_per_repo=130)
    with run_sandbox(org_big) as big:
        clamped = session(big.tokens[0]).get(f"{big.rest_url}/repos/acme/service-0/pulls?state=all&per_page=500")
        assert len(clamped.json()) == 100
    too_far = s.get(f"{sandbox.rest_url}/repos/{repo.full_name}/pulls?state=all&per_page=100&page=101")
    assert too_far.status_code == 422
    assert "Pagination with the page parameter is not supported" in too_far.json()["message"]
    past_end = s.get(f"{sandbox.rest_url}/repos/{repo.full_name}/pulls?state=all&page=9")
    assert past_end.status_code == 200 and past_end.json() == []
    bad_state = s.get(f"{sandbox.rest_url}/repos/{repo.full_name}/pulls?state=merged")
    assert bad_state.status_code == 422 and bad_state.json()["message"] == "Validation Failed"


def test_rest_objects_match_the_organisation(sandbox, org):
    s = session(sandbox.tokens[0])
    base = sandbox.rest_url
    repo = org.repositories[0]
    pr = next(p for p in repo.pull_requests if p.merged_at and p.author_login)
    detail = s.get(f"{base}/repos/{repo.full_name}/pulls/{pr.number}").json()
    assert detail["id"] == pr.database_id and detail["node_id"] == pr.node_id
    assert detail["merged"] is True and detail["additions"] == pr.additions
    assert detail["user"]["login"] == pr.author_login and detail["user"]["type"] == "User"
    assert detail["merged_at"] == pr.merged_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    ghost_pr = next(p for p in repo.pull_requests if p.author_login is None)
    assert s.get(f"{base}/repos/{repo.full_name}/pulls/{ghost_pr.number}").json()["user"]["login"] == "ghost"
    bot_pr = next(p for p in repo.pull_requests if p.author_login == "dependabot[bot]")
    assert s.get(f"{base}/repos/{repo.full_name}/pulls/{bot_pr.number}").json()["user"]["type"] == "Bot"

    reviews = s.get(f"{base}/repos/{repo.full_name}/pulls/{pr.number}/reviews").json()
    assert [r["id"] for r in reviews] == [r.database_id for r in pr.reviews]
    commits = s.get(f"{base}/repos/{repo.full_name}/pulls/{pr.number}/commits").json()
    assert [c["sha"] for c in commits] == [c.sha for c in pr.commits]

    # Issues include pull requests (with a pull_request key) and honour `since`.
    everything = []
    url = f"{base}/repos/{repo.full_name}/issues?state=all&per_page=100"
    while url:
        response = s.get(url)
        everything += response.json()
        url = response.links.get("next", {}).get("url")
    assert len(everything) == len(repo.issues) + len(repo.pull_requests)
    assert sum("pull_request" in i for i in everything) == len(repo.pull_requests)
    since = sorted(i.updated_at for i in repo.issues)[len(repo.issues) // 2]
    recent = s.get(f"{base}/repos/{repo.full_name}/issues",
                   params={"state": "all", "since": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "per_page": 100}).json()
    expected = sum(1 for i in list(repo.issues) + list(repo.pull_requests) if i.updated_at >= since)
    assert len(recent) == expected
    labelled = next(i for i in repo.issues if i.labels)
    assert s.get(f"{base}/repos/{repo.full_name}/issues/{labelled.number}").json()["labels"][0]["name"] in labelled.labels

    deployments = s.get(f"{base}/repos/{repo.full_name}/deployments?environment=production&per_page=100").json()
    assert len(deployments) == sum(d.environment == "production" for d in repo.deployments)
    dep = repo.deployments[1]
    statuses = s.get(f"{base}/repos/{repo.full_name}/deployments/{dep.database_id}/statuses").json()
    assert [x["state"] for x in statuses] == [x.state.lower() for x in reversed(dep.statuses)]

    releases = s.get(f"{base}/repos/{repo.full_name}/releases").json()
    assert {r["tag_name"] for r in releases} == {r.tag_name for r in repo.releases}

    runs = s.get(f"{base}/repos/{repo.full_name}/actions/runs?branch=main&per_page=5").json()
    assert runs["total_count"] == sum(r.head_branch == "main" for r in repo.workflow_runs)
    assert len(runs["workflow_runs"]) == 5 and {r["head_branch"] for r in runs["workflow_runs"]} == {"main"}

    assert s.get(f"{base}/users/alice").json()["login"] == "alice"
    viewer = s.get(f"{base}/user").json()["login"]
    assert viewer == sandbox.token_login(sandbox.tokens[0])
    mine = s.get(f"{base}/user/repos").json()
    assert {r["full_name"] for r in mine} == set(org.memberships[viewer])
    assert len(s.get(f"{base}/orgs/acme/repos").json()) == len(org.repositories)


def test_unknown_repository_is_404_and_graphql_not_found(sandbox):
    s = session(sandbox.tokens[0])
    response = s.get(f"{sandbox.rest_url}/repos/acme/does-not-exist/pulls")
    assert response.status_code == 404
    assert response.json()["message"] == "Not Found"
    body = gql(s, sandbox.graphql_url, "query { repository(owner: \"acme\", name: \"nope\") { id } }")
    assert body["data"] == {"repository": None}
    (error,) = body["errors"]
    assert error["type"] == "NOT_FOUND" and error["path"] == ["repository"]
    assert error["message"] == "Could not resolve to a Repository with the name 'acme/nope'."


def test_bad_and_revoked_tokens_get_401():
    with run_sandbox(sample_organization(repos=1, prs_per_repo=10)) as sandbox:
        for token in ("ghp_" + "x" * 36, None):
            s = session(token)
            rest_response = s.get(f"{sandbox.rest_url}/repos/acme/service-0")
            graphql_response = s.post(sandbox.graphql_url, json={"query": "{ viewer { login } }"})
            assert graphql_response.status_code == 401
            if token is None:
                assert rest_response.status_code == 200  # anonymous REST, GitHub's 60 an hour
                assert rest_response.headers["X-RateLimit-Limit"] == "60"
            else:
                assert rest_response.status_code == 401
                assert rest_response.json()["message"] == "Bad credentials"
        token = sandbox.tokens[1]
        assert session(token).get(f"{sandbox.rest_url}/repos/acme/service-0").status_code == 200
        sandbox.revoke(token)
        assert session(token).get(f"{sandbox.rest_url}/repos/acme/service-0").status_code == 401
        assert session(token).post(sandbox.graphql_url, json={"query": "{ viewer { login } }"}).status_code == 401


def test_etag_304_is_free_and_per_token():
    with run_sandbox(sample_organization(repos=1, prs_per_repo=10)) as sandbox:
        s = session(sandbox.tokens[0])
        url = f"{sandbox.rest_url}/repos/acme/service-0/pulls?state=all"
        first = s.get(url)
        etag = first.headers["ETag"]
        assert first.headers["X-RateLimit-Remaining"] == "4999"
        again = s.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["X-RateLimit-Remaining"] == "4999"
        assert again.headers["X-RateLimit-Used"] == "1"
        stats = sandbox.stats(sandbox.tokens[0])
        assert stats["rest_used"] == 1 and stats["not_modified"] == 1
        # The ETag covers the token: another token's copy does not match.
        other = session(sandbox.tokens[1]).get(url, headers={"If-None-Match": etag})
        assert other.status_code == 200 and other.headers["ETag"] != etag
        # A change in the organisation changes the ETag.
        with sandbox.lock:
            sandbox.org.repositories[0].pull_requests[0].title = "Edited"
        changed = s.get(url, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_exhausting_the_rest_limit_gives_403_with_reset_headers():
    with run_sandbox(sample_organization(repos=1, prs_per_repo=5), rest_limit=5, graphql_limit=3) as sandbox:
        s = session(sandbox.tokens[0])
        url = f"{sandbox.rest_url}/repos/acme/service-0"
        remaining = [s.get(url).headers["X-RateLimit-Remaining"] for _ in range(5)]
        assert remaining == ["4", "3", "2", "1", "0"]
        blocked = s.get(url)
        assert blocked.status_code == 403
        assert blocked.json()["message"].startswith("API rate limit exceeded")
        assert blocked.headers["X-RateLimit-Remaining"] == "0"
        assert blocked.headers["X-RateLimit-Resource"] == "core"
        assert int(blocked.headers["X-RateLimit-Reset"]) > time.time() + 3000
        # /rate_limit is free and says the same.
        limits = s.get(f"{sandbox.rest_url}/rate_limit").json()
        assert limits["resources"]["core"]["remaining"] == 0 and limits["resources"]["core"]["used"] == 5
        # GraphQL has its own budget; when it runs out: RATE_LIMITED.
        query = "query { viewer { login } rateLimit { cost remaining } }"
        assert [gql(s, sandbox.graphql_url, query)["data"]["rateLimit"]["remaining"] for _ in range(3)] == [2, 1, 0]
        response = s.post(sandbox.graphql_url, json={"query": query})
        assert response.status_code == 200 and response.headers["X-RateLimit-Remaining"] == "0"
        assert response.json()["errors"][0]["type"] == "RATE_LIMITED"
        assert "data" not in response.json()
        sandbox.reset_limits()
        assert s.get(url).status_code == 200


def test_invalid_graphql_is_rejected_like_github(sandbox):
    s = session(sandbox.tokens[0])
    before = sandbox.stats(sandbox.tokens[0])["graphql_used"]
    unknown = gql(s, sandbox.graphql_url, 'query { repository(owner: "acme", name: "service-0") { nope } }')
    assert "data" not in unknown
    assert unknown["errors"][0]["message"] == "Field 'nope' doesn't exist on type 'Repository'"
    assert unknown["errors"][0]["extensions"]["code"] == "undefinedField"
    assert unknown["errors"][0]["locations"] == [{"line": 1, "column": 56}]
    syntax = gql(s, sandbox.graphql_url, "query { repository(owner: ")
    assert "Syntax Error" in syntax["errors"][0]["message"]

    too_many = gql(s, sandbox.graphql_url, PR_PAGE, owner="acme", name="service-0", first=101)
    assert "data" not in too_many
    assert too_many["errors"][0]["type"] == "EXCESSIVE_PAGINATION"
    assert too_many["errors"][0]["message"] == (
        "Requesting 101 records on the `pullRequests` connection exceeds the `first` limit of 100 records.")
    missing = gql(s, sandbox.graphql_url, 'query { repository(owner: "acme", name: "x") { issues { totalCount } } }')
    assert missing["errors"][0]["type"] == "MISSING_PAGINATION_BOUNDARIES"
    assert missing["errors"][0]["path"] == ["repository", "issues"]
    huge = gql(s, sandbox.graphql_url, """query { organization(login: "acme") { repositories(first: 100) { nodes {
        pullRequests(first: 100) { nodes { commits(first: 100) { totalCount } } } } } } }""")
    assert huge["errors"][0]["type"] == "MAX_NODE_LIMIT_EXCEEDED"
    # 100 repositories + 100 * 100 pull requests + 100 * 100 * 100 commits
    assert "1,010,100 possible nodes" in huge["errors"][0]["message"]
    bad_variable = gql(s, sandbox.graphql_url, PR_PAGE, owner="acme", name="service-0", first="ten")
    assert "data" not in bad_variable and "$first" in bad_variable["errors"][0]["message"]
    assert sandbox.stats(sandbox.tokens[0])["graphql_used"] == before  # rejections cost nothing


def test_graphql_cost_rate_limit_object_and_dry_run(sandbox):
    s = session(sandbox.tokens[2])
    small = gql(s, sandbox.graphql_url, PR_PAGE, owner="acme", name="service-0", first=33)
    # 1 + 3 * 33 = 100 requests -> 1 point; 3 * 34 + 1 = 103 -> 1; 50 PRs: 151 -> 2.
    assert small["data"]["rateLimit"]["cost"] == 1
    assert small["data"]["rateLimit"]["nodeCount"] == 33 + 33 * (1 + 25 + 25)
    big = gql(s, sandbox.graphql_url, PR_PAGE, owner="acme", name="service-0", first=50)
    assert big["data"]["rateLimit"]["cost"] == 2
    assert big["data"]["rateLimit"]["used"] == 3
    assert big["data"]["rateLimit"]["remaining"] == 5000 - 3
    dry = gql(s, sandbox.graphql_url, "query { rateLimit(dryRun: true) { cost remaining } }")
    assert dry["data"]["rateLimit"] == {"cost": 1, "remaining": 4997}
    assert sandbox.stats(sandbox.tokens[2])["graphql_used"] == 3


def test_graphql_pagination_walks_every_pull_request_once(sandbox, org):
    s = session(sandbox.tokens[0])
    repo = org.repositories[1]
    seen, after = [], None
    while True:
        body = gql(s, sandbox.graphql_url, PR_PAGE, owner="acme", name=repo.name, first=7, after=after)
        assert "errors" not in body
        connection = body["data"]["repository"]["pullRequests"]
        assert connection["totalCount"] == len(repo.pull_requests)
        seen += connection["nodes"]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    expected = sorted(repo.pull_requests, key=lambda p: (p.updated_at, p.database_id), reverse=True)
    assert [n["number"] for n in seen] == [p.number for p in expected]
    by_number = {p.number: p for p in repo.pull_requests}
    for node in seen:
        pr = by_number[node["number"]]
        assert node["state"] == pr.state and node["isDraft"] == pr.is_draft
        assert [r["databaseId"] for r in node["reviews"]["nodes"]] == [r.database_id for r in pr.reviews]
        assert [c["commit"]["oid"] for c in node["commits"]["nodes"]] == [c.sha for c in pr.commits]
        ready = node["readyForReview"]["nodes"]
        assert (ready[0]["createdAt"] if ready else None) == (
            pr.ready_for_review_at.strftime("%Y-%m-%dT%H:%M:%SZ") if pr.ready_for_review_at else None)
        if pr.author_login is None:
            assert node["author"] is None  # GitHub's deleted user
        elif pr.author_login.endswith("[bot]"):
            assert node["author"] == {"__typename": "Bot", "login": pr.author_login[: -len("[bot]")]}
    bad = gql(s, sandbox.graphql_url, PR_PAGE, owner="acme", name=repo.name, first=5, after="bm9wZQ==")
    assert bad["errors"][0]["type"] == "INVALID_CURSOR_ARGUMENTS"


def test_graphql_other_connections_and_nodes(sandbox, org):
    s = session(sandbox.tokens[0])
    repo = org.repositories[0]
    query = """
    query($owner: String!, $name: String!, $since: DateTime, $ids: [ID!]!) {
      repository(owner: $owner, name: $name) {
        nameWithOwner isEmpty defaultBranchRef { name }
        deployments(first: 100, environments: ["production"], orderBy: {field: CREATED_AT, direction: DESC}) {
          nodes { databaseId environment commitOid ref { name } creator { login }
                  statuses(first: 10) { nodes { state } } latestStatus { state } }
        }
        issues(first: 100, filterBy: {since: $since}, orderBy: {field: UPDATED_AT, direction: DESC}) {
          nodes { number labels(first: 10) { nodes { name } } }
        }
        releases(first: 10, orderBy: {field: CREATED_AT, direction: DESC}) { nodes { tagName isDraft author { login } } }
      }
      nodes(ids: $ids) { __typename ... on PullRequest { number } ... on Repository { name } }
      viewer { login repositories(first: 10) { nodes { nameWithOwner } } }
    }"""
    since = sorted(i.updated_at for i in repo.issues)[len(repo.issues) // 2]
    ids = [repo.pull_requests[3].node_id, repo.node_id, "MISSING"]
    body = gql(s, sandbox.graphql_url, query, owner="acme", name=repo.name,
               since=since.strftime("%Y-%m-%dT%H:%M:%SZ"), ids=ids)
    data = body["data"]["repository"]
    assert data["defaultBranchRef"] == {"name": "main"} and data["isEmpty"] is False
    production = [d for d in repo.deployments if d.environment == "production"]
    assert [d["databaseId"] for d in data["deployments"]["nodes"]] == [
        d.database_id for d in sorted(production, key=lambda d: d.created_at, reverse=True)]
    first = data["deployments"]["nodes"][0]
    assert first["latestStatus"]["state"] == first["statuses"]["nodes"][0]["state"]
    assert len(data["issues"]["nodes"]) == sum(i.updated_at >= since for i in repo.issues)
    assert [r["tagName"] for r in data["releases"]["nodes"]] == ["v1.3.0", "v1.2.0", "v1.1.0", "v1.0.0"]
    assert body["data"]["nodes"][:2] == [{"__typename": "PullRequest", "number": repo.pull_requests[3].number},
                                         {"__typename": "Repository", "name": repo.name}]
    assert body["data"]["nodes"][2] is None and body["errors"][0]["type"] == "NOT_FOUND"
    viewer = body["data"]["viewer"]
    assert {r["nameWithOwner"] for r in viewer["repositories"]["nodes"]} == set(org.memberships[viewer["login"]])


def test_introspection_answers_from_githubs_schema(sandbox):
    s = session(sandbox.tokens[0])
    body = gql(s, sandbox.graphql_url, '{ __type(name: "RateLimit") { fields { name } } viewer { login } }')
    assert [f["name"] for f in body["data"]["__type"]["fields"]] == [
        "cost", "limit", "nodeCount", "remaining", "resetAt", "used"]
    assert body["data"]["viewer"]["login"] == sandbox.token_login(sandbox.tokens[0])


def test_each_distinct_query_is_parsed_and_validated_once(sandbox):
    s = session(sandbox.tokens[1])
    cache = sandbox.query_cache
    text = PR_PAGE + "\n# distinct text for this test\n"
    misses = cache.misses
    for first in (5, 6, 7):
        gql(s, sandbox.graphql_url, text, owner="acme", name="service-0", first=first)
    assert cache.misses == misses + 1


def test_same_seed_gives_byte_identical_bodies():
    def transcript(port: int) -> list[bytes]:
        with run_sandbox(seed=11, repos=2, prs_per_repo=20, port=port) as sandbox:
            s = session(sandbox.tokens[0])
            name = sandbox.org.repositories[0].name
            bodies = [s.get(f"{sandbox.rest_url}/repos/acme/{name}/pulls?state=all&per_page=7&page=2").content,
                      s.get(f"{sandbox.rest_url}/repos/acme/{name}/issues?state=all").content,
                      s.get(f"{sandbox.rest_url}/repos/acme/{name}/actions/runs").content]
            after = None
            for _ in range(2):
                response = s.post(sandbox.graphql_url, json={"query": PR_PAGE, "variables": {
                    "owner": "acme", "name": name, "first": 9, "after": after}})
                bodies.append(response.content)
                after = response.json()["data"]["repository"]["pullRequests"]["pageInfo"]["endCursor"]
            return bodies, sandbox.port

    first, port = transcript(0)
    second, _ = transcript(port)  # URLs in bodies name the server, so reuse its port
    assert first == second
    assert all(len(b) > 100 for b in first)


def test_faults_appear_at_the_configured_rates():
    config = FaultConfig(seed=7, rate_5xx=0.2, rate_truncated_json=0.1)
    org = sample_organization(repos=1, prs_per_repo=5)

    def statuses():
        with run_sandbox(org, faults=config) as sandbox:
            s = session(sandbox.tokens[0])
            out = []
            for _ in range(300):
                response = s.get(f"{sandbox.rest_url}/repos/acme/service-0")
                if response.status_code == 200:
                    try:
                        response.json()
                        out.append("ok")
                    except ValueError:
                        out.append("truncated")
                else:
                    assert response.status_code in config.statuses_5xx
                    out.append("5xx")
            stats = sandbox.stats(sandbox.tokens[0])
            assert stats["faults_by_kind"] == {"5xx": out.count("5xx"), "truncated_json": out.count("truncated")}
            assert stats["rest_used"] == out.count("ok") + out.count("truncated")  # 5xx are not charged
            return out

    first = statuses()
    # Binomial(300, 0.2): mean 60, sd 6.9; Binomial(300, 0.1): mean 30, sd 5.2 (4 sd bounds).
    assert 32 <= first.count("5xx") <= 88
    assert 9 <= first.count("truncated") <= 51
    assert statuses() == first  # deterministic from the seed


def test_hangs_secondary_limits_and_graphql_502():
    org = sample_organization(repos=1, prs_per_repo=20)
    with run_sandbox(org, faults=FaultConfig(rate_hang=1.0, hang_seconds=30)) as sandbox:
        s = session(sandbox.tokens[0])
        with pytest.raises(requests.exceptions.ReadTimeout):
            s.get(f"{sandbox.rest_url}/repos/acme/service-0", timeout=0.3)
        sandbox.set_faults(rate_hang=0.0, graphql_502_node_threshold=1000, secondary_points_per_minute=4)
        fresh = session(sandbox.tokens[1])
        big = fresh.post(sandbox.graphql_url, json={"query": PR_PAGE, "variables": {
            "owner": "acme", "name": "service-0", "first": 20}})
        assert big.status_code == 502 and big.json()["data"] is None
        small = fresh.post(sandbox.graphql_url, json={"query": PR_PAGE, "variables": {
            "owner": "acme", "name": "service-0", "first": 10}})
        assert small.status_code == 200, small.text
        codes = [fresh.get(f"{sandbox.rest_url}/repos/acme/service-0").status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = fresh.get(f"{sandbox.rest_url}/repos/acme/service-0")
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert "secondary rate limit" in limited.json()["message"]
        assert sandbox.stats(sandbox.tokens[1])["faults_by_kind"]["graphql_502"] == 1

    # Too many concurrent requests for one token: 403 with Retry-After.
    faults = FaultConfig(secondary_max_concurrent=2, retry_after_seconds=3)
    with run_sandbox(org, faults=faults, latency_ms=300) as sandbox:
        results = []

        def call():
            response = session(sandbox.tokens[0]).get(f"{sandbox.rest_url}/repos/acme/service-0", timeout=10)
            results.append((response.status_code, response.headers.get("Retry-After")))

        threads = [threading.Thread(target=call) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(code for code, _ in results) == [200, 200, 403, 403, 403]
        assert {after for code, after in results if code == 403} == {"3"}


def test_request_log_has_costs_and_never_the_token(tmp_path):
    path = tmp_path / "requests.jsonl"
    with run_sandbox(sample_organization(repos=1, prs_per_repo=10), request_log=str(path)) as sandbox:
        s = session(sandbox.tokens[0])
        s.get(f"{sandbox.rest_url}/repos/acme/service-0/pulls")
        gql(s, sandbox.graphql_url, PR_PAGE, owner="acme", name="service-0", first=50)
        session("ghp_wrong0000000000000000000000000000000000").get(f"{sandbox.rest_url}/rate_limit")
        entries = sandbox.requests()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == entries
    assert [(e["method"], e["path"], e["status"], e["cost"]) for e in lines] == [
        ("GET", "/repos/acme/service-0/pulls", 200, 1), ("POST", "/graphql", 200, 2), ("GET", "/rate_limit", 401, 0)]
    assert lines[0]["token_fingerprint"] == sandbox.fingerprint(sandbox.tokens[0])
    assert lines[1]["node_count"] == 50 + 50 * (1 + 25 + 25) and lines[1]["operation"] == "PullRequests"
    text = path.read_text()
    assert sandbox.tokens[0] not in text and "ghp_" not in text


def test_organisation_changes_while_serving_are_visible():
    generator = pytest.importorskip("ghmetrics_dagster.sandbox.generator")
    with run_sandbox(seed=4, repos=1, prs_per_repo=20) as sandbox:
        s = session(sandbox.tokens[0])
        repo = sandbox.org.repositories[0]
        query = "query($o: String!, $n: String!) { repository(owner: $o, name: $n) { pullRequests(first: 1) { totalCount } } }"
        before = gql(s, sandbox.graphql_url, query, o="acme", n=repo.name)["data"]["repository"]["pullRequests"]["totalCount"]
        with sandbox.lock:
            generator.advance(sandbox.org, 14)
            expected = len(repo.pull_requests)
        after = gql(s, sandbox.graphql_url, query, o="acme", n=repo.name)["data"]["repository"]["pullRequests"]["totalCount"]
        assert after == expected > before
        listed = s.get(f"{sandbox.rest_url}/repos/acme/{repo.name}/pulls?state=all&per_page=100").json()
        assert len(listed) == min(100, expected)


def test_serve_command_answers_on_localhost(tmp_path):
    import subprocess
    import sys

    log_path = tmp_path / "serve.jsonl"
    command = [sys.executable, "-c", "from ghmetrics_dagster.cli.sandbox import sandbox; sandbox()", "serve",
               "--port", "0", "--seed", "2", "--repos", "1", "--prs", "10", "--latency-ms", "1",
               "--request-log", str(log_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        rest_line = process.stdout.readline()
        graphql_line = process.stdout.readline()
        token_line = process.stdout.readline()
        assert rest_line.startswith("REST") and graphql_line.startswith("GraphQL"), process.stderr.read()
        rest_url, graphql_url, token = rest_line.split()[1], graphql_line.split()[1], token_line.split()[1]
        assert rest_url.startswith("http://127.0.0.1:")
        s = session(token)
        name = s.get(f"{rest_url}/orgs/acme/repos").json()[0]["name"]
        body = gql(s, graphql_url, "query($n: String!) { repository(owner: \"acme\", name: $n) { name } }", n=name)
        assert body["data"]["repository"]["name"] == name
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a loaded CI machine: what is tested here is the answers
            process.kill()
            process.wait(timeout=10)
    assert len(log_path.read_text().splitlines()) == 2


def test_timeline_labels_and_closing_pull_requests_as_github_serves_them():
    from ghmetrics_dagster.sandbox import generator, model

    org = generator.generate(6, repos=1, prs_per_repo=30, weeks=12, users=5)
    repo = org.repositories[0]
    busy = max(repo.pull_requests, key=lambda p: len(p.label_events))
    assert len(busy.label_events) > 25 and busy.labels == model.replay_labels(busy.label_events)
    query = """
    query($owner: String!, $name: String!, $number: Int!, $types: [PullRequestTimelineItemsItemType!], $after: String) {
      repository(owner: $owner, name: $name) {
        pullRequest(number: $number) {
          labels(first: 10) { nodes { name } }
          timelineItems(itemTypes: $types, first: 10, after: $after) {
            pageInfo { hasNextPage endCursor }
            nodes { __typename ... on LabeledEvent { createdAt label { name } }
                    ... on UnlabeledEvent { createdAt label { name } } ... on ReadyForReviewEvent { createdAt } }
          }
        }
      }
    }"""
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    with run_sandbox(org) as sandbox:
        s = session(sandbox.tokens[0])
        seen, after = [], None
        while True:
            body = gql(s, sandbox.graphql_url, query, owner=repo.owner, name=repo.name, number=busy.number,
                       types=["LABELED_EVENT", "UNLABELED_EVENT"], after=after)
            pull = body["data"]["repository"]["pullRequest"]
            seen += pull["timelineItems"]["nodes"]
            if not pull["timelineItems"]["pageInfo"]["hasNextPage"]:
                break
            after = pull["timelineItems"]["pageInfo"]["endCursor"]
        assert [(n["__typename"], n["createdAt"], n["label"]["name"]) for n in seen] == [
            ("LabeledEvent" if e.kind == model.LABELED else "UnlabeledEvent", iso(e.created_at), e.name)
            for e in busy.label_events]
        assert [n["name"] for n in pull["labels"]["nodes"]] == sorted(busy.labels)
        ready = next(p for p in repo.pull_requests if p.ready_for_review_at and p.label_events)
        body = gql(s, sandbox.graphql_url, query, owner=repo.owner, name=repo.name, number=ready.number,
                   types=["READY_FOR_REVIEW_EVENT"], after=None)
        assert body["data"]["repository"]["pullRequest"]["timelineItems"]["nodes"] == [
            {"__typename": "ReadyForReviewEvent", "createdAt": iso(ready.ready_for_review_at)}]
        # REST shows the labels on the pull request too
        rest = s.get(f"{sandbox.rest_url}/repos/{repo.full_name}/pulls/{busy.number}").json()
        assert [label["name"] for label in rest["labels"]] == sorted(busy.labels)

        issues = """
        query($owner: String!, $name: String!) {
          repository(owner: $owner, name: $name) {
            issues(first: 50) { nodes { number
              closedBy: timelineItems(itemTypes: [CLOSED_EVENT], last: 1) {
                nodes { __typename ... on ClosedEvent { createdAt closer { __typename ... on PullRequest { id number } } } }
              } } }
          }
        }"""
        nodes = gql(s, sandbox.graphql_url, issues, owner=repo.owner, name=repo.name)["data"]["repository"]["issues"]["nodes"]
    numbers = {p.node_id: p.number for p in repo.pull_requests}
    by_number = {i.number: i for i in repo.issues}
    assert any(by_number[n["number"]].closed_by_pull_request for n in nodes)
    for node in nodes:
        issue = by_number[node["number"]]
        if issue.closed_at is None:
            assert node["closedBy"]["nodes"] == []
            continue
        closer = None
        if issue.closed_by_pull_request:
            closer = {"__typename": "PullRequest", "id": issue.closed_by_pull_request,
                      "number": numbers[issue.closed_by_pull_request]}
        assert node["closedBy"]["nodes"] == [{"__typename": "ClosedEvent", "createdAt": iso(issue.closed_at), "closer": closer}]
