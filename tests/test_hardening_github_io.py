"""Finding 6: bounded I/O in the GitHub client, against the sandbox over real HTTP."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from ghmetrics_dagster import sync
from ghmetrics_dagster.github import errors
from ghmetrics_dagster.github.client import GitHubClient
from ghmetrics_dagster.sandbox import generator, server
from ghmetrics_dagster.sandbox.server import Scripted


@pytest.fixture(scope="module")
def org():
    return generator.generate(5, repos=2, prs_per_repo=10, weeks=3, users=4)


def make_client(sb, **kwargs) -> GitHubClient:
    kwargs.setdefault("backoff_base", 0.01)
    kwargs.setdefault("timeout", 2)
    return GitHubClient(sb.rest_url, sb.graphql_url, list(sb.tokens), **kwargs)


def test_dripping_response_hits_the_overall_request_deadline(org):
    """A body that drips a byte at a time never trips the per-read timeout; the deadline ends it."""
    with server.run_sandbox(org) as sb:
        sb.script(Scripted(match="/repos/", body='{"padding": "' + "x" * 300 + '"}', drip_s=0.1, times=None))
        client = make_client(sb, timeout=1, request_deadline=1.0, max_retries=1)
        started = time.monotonic()
        with pytest.raises(errors.ServerError, match="deadline"):
            client.rest(f"/repos/{org.repositories[0].full_name}")
        assert time.monotonic() - started < 8  # 2 attempts of ~1 s each, not 30 s each


def test_retry_after_900_postpones_the_repository_instead_of_waiting_hours(org, database_url):
    with server.run_sandbox(org) as sb:
        sb.script(
            Scripted(
                match="query PullRequests",
                status=403,
                headers={"Retry-After": "900"},
                body='{"message": "You have exceeded a secondary rate limit."}',
                times=None,
            )
        )
        sleeps: list[float] = []
        client = make_client(sb, sleep=sleeps.append)
        names = [r.full_name for r in org.repositories]
        report = sync.sync_repositories(database_url, client, names)
    assert sum(sleeps) <= client.max_rate_limit_wait  # not 20 x 900 s on a pool slot
    for repo in report.repositories:
        assert repo.postponed and repo.streams["pull_requests"].status == "postponed"
        assert repo.streams["releases"].status in ("ok", "unchanged")
        assert "postponed" in repo.streams["pull_requests"].error and "\n" not in repo.streams["pull_requests"].error
    assert report.metadata()["repositories_postponed"] == sorted(names)
    assert "postponed" in report.summary()


def test_total_rate_limit_waiting_is_capped_per_client(org):
    with server.run_sandbox(org) as sb:
        sb.script(Scripted(match="/repos/", status=429, headers={"Retry-After": "100"}, body="{}", times=None))
        sleeps: list[float] = []
        client = make_client(sb, sleep=sleeps.append, max_rate_limit_wait=250, max_total_rate_limit_wait=450)
        for _ in range(3):
            with pytest.raises(errors.RateLimitExhausted, match="postponed"):
                client.rest(f"/repos/{org.repositories[0].full_name}")
    assert sleeps == [100.0, 100.0, 100.0, 100.0]  # 2 per request, then the client's cap of 450 s


def test_huge_body_is_refused_with_bounded_memory(org):
    with server.run_sandbox(org) as sb:
        # No Content-Length: only the streamed read can notice the size.
        sb.script(Scripted(match="/repos/", body='{"a": 1}', filler_bytes=300 * 1024 * 1024, omit_length=True))
        sb.script(Scripted(match="/repos/", body='{"a": 1}', filler_bytes=300 * 1024 * 1024))
        client = make_client(sb, max_body_bytes=4 * 1024 * 1024)
        tracemalloc.start()
        try:
            for _ in range(2):
                with pytest.raises(errors.MalformedResponse, match="larger than"):
                    client.rest(f"/repos/{org.repositories[0].full_name}")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 24 * 1024 * 1024, peak
        # The client still works afterwards.
        assert client.rest(f"/repos/{org.repositories[0].full_name}").data["full_name"]
