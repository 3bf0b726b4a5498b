"""A real third-party GitHub client (PyGithub) reads the sandbox over HTTP."""

from __future__ import annotations

import github
import pytest

from ghmetrics_dagster.sandbox.sample_org import sample_organization
from ghmetrics_dagster.sandbox.server import run_sandbox


def client(sandbox, token: str, per_page: int = 30) -> github.Github:
    # No client-side throttling or retries: the test wants to see the server's answers.
    return github.Github(base_url=sandbox.rest_url, auth=github.Auth.Token(token), per_page=per_page,
                         retry=None, seconds_between_requests=None, timeout=10)


@pytest.fixture(scope="module")
def org():
    return sample_organization(seed=3, repos=2, prs_per_repo=35, reviews_per_pr=3, commits_per_pr=5)


def test_pygithub_lists_pull_requests_reviews_and_commits(org):
    with run_sandbox(org) as sandbox:
        gh = client(sandbox, sandbox.tokens[0], per_page=10)
        repo_model = org.repositories[1]
        repo = gh.get_repo(repo_model.full_name)
        assert repo.id == repo_model.database_id and repo.default_branch == "main"

        pulls = repo.get_pulls(state="all", sort="created", direction="asc")
        listed = list(pulls)
        expected = sorted(repo_model.pull_requests, key=lambda p: (p.created_at, p.database_id))
        assert [p.number for p in listed] == [p.number for p in expected]
        assert [p.title for p in listed] == [p.title for p in expected]
        # totalCount reads the page number of Link rel="last" at per_page=1 (on a fresh list:
        # PyGithub drops the query parameters once it has paged).
        assert repo.get_pulls(state="all").totalCount == len(expected)
        pages = [e for e in sandbox.requests() if e["path"].endswith("/pulls") and e["status"] == 200]
        assert len(pages) >= 4  # 35 pull requests at 10 a page

        for pr_model in expected[:4]:
            pr = repo.get_pull(pr_model.number)
            assert pr.merged == (pr_model.merged_at is not None)
            assert pr.additions == pr_model.additions and pr.deletions == pr_model.deletions
            assert pr.user.login == (pr_model.author_login or "ghost")
            reviews = list(pr.get_reviews())
            assert [(r.id, r.state, r.user.login) for r in reviews] == [
                (r.database_id, r.state, r.author_login) for r in pr_model.reviews]
            commits = list(pr.get_commits())
            assert [c.sha for c in commits] == [c.sha for c in pr_model.commits]
            assert [c.commit.author.name for c in commits] == [c.author_name for c in pr_model.commits]
            assert [c.commit.author.date for c in commits] == [c.authored_at for c in pr_model.commits]

        issues = list(repo.get_issues(state="all"))
        assert len(issues) == len(repo_model.issues) + len(repo_model.pull_requests)
        assert sum(i.pull_request is not None for i in issues) == len(repo_model.pull_requests)
        deployments = list(repo.get_deployments())
        assert [d.id for d in deployments] == sorted((d.database_id for d in repo_model.deployments), reverse=True)
        assert {r.tag_name for r in repo.get_releases()} == {r.tag_name for r in repo_model.releases}
        runs = repo.get_workflow_runs(branch="main")
        assert runs.totalCount == sum(r.head_branch == "main" for r in repo_model.workflow_runs)

        rate = gh.get_rate_limit()
        core = getattr(rate, "core", None) or rate.resources.core
        assert core.limit == 5000 and core.remaining == 5000 - sandbox.stats(sandbox.tokens[0])["rest_used"]


def test_pygithub_sees_github_errors(org):
    with run_sandbox(org, rest_limit=3) as sandbox:
        with pytest.raises(github.BadCredentialsException):
            client(sandbox, "ghp_" + "0" * 36).get_repo("acme/service-0")
        gh = client(sandbox, sandbox.tokens[0])
        with pytest.raises(github.UnknownObjectException):
            gh.get_repo("acme/missing")
        gh.get_repo("acme/service-0")
        gh.get_user("alice")
        with pytest.raises(github.RateLimitExceededException) as raised:
            gh.get_repo("acme/service-1")
        assert raised.value.status == 403
        assert raised.value.headers["x-ratelimit-remaining"] == "0"
