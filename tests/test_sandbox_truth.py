"""Ground truth on a hand-built organisation, checked against values worked out by hand.

Calendar used below (2026): Mon 20 Apr, Mon 27 Apr, Fri 1 May, Mon 4 May, Wed 6 May, Mon 11 May,
Sun 17 May, Mon 18 May, Wed 20 May. Weeks start on Monday.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from click.testing import CliRunner

from ghmetrics_dagster.cli.sandbox import sandbox
from ghmetrics_dagster.sandbox import generator, truth
from ghmetrics_dagster.sandbox.model import (
    Anomaly,
    Commit,
    Deployment,
    DeploymentStatus,
    Issue,
    IssueComment,
    Organization,
    PullRequest,
    Release,
    Repository,
    Review,
    User,
    WorkflowRun,
)

_ids = iter(range(1, 100_000))


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def D(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def sha(n: int) -> str:
    return f"{n:040x}"


def commit(n: int, authored: str, login: str | None, additions: int = 1, deletions: int = 0) -> Commit:
    return Commit(sha=sha(n), authored_at=ts(authored), committed_at=ts(authored), additions=additions,
                  deletions=deletions, author_login=login, author_name=login or "ghost",
                  author_email="x@example.com")


def review(login: str | None, submitted: str, state: str = "APPROVED") -> Review:
    i = next(_ids)
    return Review(node_id=f"PRR_{i}", database_id=i, author_login=login, state=state,
                  submitted_at=ts(submitted), created_at=ts(submitted))


def pull(repo: str, number: int, title: str, author: str | None, created: str, *, commits, reviews=(),
         merged: str | None = None, closed: str | None = None, base: str = "main", additions: int = 1,
         deletions: int = 0, body: str = "", ready: str | None = None, comments=()) -> PullRequest:
    end = merged or closed
    return PullRequest(
        node_id=f"PR_{repo}#{number}", database_id=next(_ids), number=number, title=title, body=body,
        author_login=author, created_at=ts(created), updated_at=ts(end or created), base_ref=base,
        head_ref=f"topic-{number}", additions=additions, deletions=deletions, changed_files=1,
        ready_for_review_at=ts(ready) if ready else None,
        merged_at=ts(merged) if merged else None, closed_at=ts(end) if end else None,
        commits=list(commits), reviews=list(reviews), comments=list(comments),
    )


def deployment(name: str, environment: str, *statuses: tuple[str, str]) -> Deployment:
    status_objects = [DeploymentStatus(node_id=f"{name}-{k}", database_id=next(_ids), state=state,
                                       created_at=ts(when)) for k, (state, when) in enumerate(statuses)]
    return Deployment(node_id=name, database_id=next(_ids), environment=environment, sha=sha(999),
                      ref="main", creator_login="alice", created_at=status_objects[0].created_at,
                      updated_at=max(s.created_at for s in status_objects), statuses=status_objects)


def issue(node_id: str, number: int, labels: list[str], created: str, closed: str | None) -> Issue:
    return Issue(node_id=node_id, database_id=next(_ids), number=number, title=node_id, body="",
                 author_login="bob", created_at=ts(created), updated_at=ts(closed or created),
                 closed_at=ts(closed) if closed else None, labels=labels)


def build_org() -> Organization:
    app = Repository(node_id="R_app", database_id=1, owner="acme", name="app", default_branch="main",
                     created_at=ts("2026-01-01 00:00"), updated_at=ts("2026-05-20 10:00"),
                     pushed_at=ts("2026-05-20 10:00"), deployment_style="github_deployments")
    app.pull_requests = [
        # P1: self-review ignored; shipped by D1.
        pull("app", 1, "Add login", "alice", "2026-05-01 10:00", additions=10, deletions=5,
             commits=[commit(1, "2026-04-30 10:00", "alice")],
             reviews=[review("alice", "2026-05-01 11:00", "COMMENTED"), review("bob", "2026-05-01 14:00")],
             merged="2026-05-04 09:00"),
        # P2: a draft reviewed before it was ready (pickup clamps to 0); author comment ignored.
        pull("app", 2, "Ship the new onboarding 🚀", "bob", "2026-05-04 08:00", ready="2026-05-05 08:00",
             additions=100, deletions=50, commits=[commit(2, "2026-05-04 07:00", "bob")],
             reviews=[review("alice", "2026-05-05 06:00", "COMMENTED")],
             comments=[IssueComment("IC_1", 1, "bob", ts("2026-05-05 07:00"), "ping")],
             merged="2026-05-06 09:00"),
        # P3: a bot: no cycle hours, counts for nothing, but still ships.
        pull("app", 3, "Bump lodash from 4.17.20 to 4.17.21", "dependabot[bot]", "2026-05-05 06:00",
             additions=2, deletions=2, commits=[commit(3, "2026-05-05 05:59", "dependabot[bot]")],
             reviews=[review("bob", "2026-05-05 10:00")], merged="2026-05-05 11:00"),
        # P4: a deleted author, reviewed by another deleted account (counts as someone else).
        pull("app", 4, "修复登录页面的崩溃", None, "2026-05-06 12:00", additions=30,
             commits=[commit(4, "2026-05-06 11:00", None)],
             reviews=[review(None, "2026-05-06 13:00", "COMMENTED")], merged="2026-05-07 08:00"),
        # P5: only a self-review: no pickup, not covered.
        pull("app", 5, "Tidy logs", "alice", "2026-05-11 09:00", additions=7, deletions=3,
             commits=[commit(5, "2026-05-11 08:00", "alice")],
             reviews=[review("alice", "2026-05-11 10:00")], merged="2026-05-11 12:00"),
        # P6: reverts P1 by its last commit's sha.
        pull("app", 6, 'Revert "Add login"', "bob", "2026-05-12 12:00", additions=5, deletions=10,
             body=f"This reverts commit {sha(1)}.", commits=[commit(6, "2026-05-12 11:00", "bob")],
             reviews=[review("alice", "2026-05-12 12:30")], merged="2026-05-12 13:00"),
    ]
    app.deployments = [
        deployment("D0", "production", ("PENDING", "2026-04-20 08:55"), ("SUCCESS", "2026-04-20 09:00"),
                   ("INACTIVE", "2026-05-04 10:00")),
        deployment("D1", "production", ("PENDING", "2026-05-04 09:00"), ("SUCCESS", "2026-05-04 10:00"),
                   ("INACTIVE", "2026-05-06 10:00")),
        deployment("D2", "production", ("PENDING", "2026-05-06 09:50"), ("SUCCESS", "2026-05-06 10:00"),
                   ("INACTIVE", "2026-05-20 10:00")),
        deployment("D3", "production", ("PENDING", "2026-05-07 09:00"), ("FAILURE", "2026-05-07 09:30")),
        deployment("D4", "staging", ("SUCCESS", "2026-05-08 12:00")),
        deployment("D5", "production", ("PENDING", "2026-05-08 15:00"), ("QUEUED", "2026-05-08 15:01")),
        # Succeeded, then errored: deployed at the success, but a failed deployment.
        deployment("D6", "Production", ("PENDING", "2026-05-12 09:00"), ("SUCCESS", "2026-05-12 11:00"),
                   ("ERROR", "2026-05-12 12:00")),
        deployment("D7", "production", ("PENDING", "2026-05-20 09:55"), ("SUCCESS", "2026-05-20 10:00")),
    ]
    app.issues = [
        issue("I1", 7, ["sev2", "bug"], "2026-05-04 10:30", "2026-05-04 12:00"),
        issue("I2", 8, ["Incident"], "2026-05-17 20:00", None),
        issue("I3", 9, ["outage"], "2026-05-20 09:59:59", "2026-05-20 10:29:59"),
        issue("I4", 10, ["bug", "incident-review"], "2026-05-13 09:00", None),
    ]
    lib = Repository(node_id="R_lib", database_id=2, owner="acme", name="lib", default_branch="master",
                     created_at=ts("2026-01-01 00:00"), updated_at=ts("2026-05-14 12:00"),
                     pushed_at=ts("2026-05-14 12:00"), deployment_style="merges")
    lib.pull_requests = [
        pull("lib", 1, "Add cache", "alice", "2026-05-05 09:00", base="master", additions=40, deletions=10,
             commits=[commit(11, "2026-05-05 08:00", "alice")],
             reviews=[review("bob", "2026-05-05 10:00", "COMMENTED")], merged="2026-05-05 12:00"),
        pull("lib", 2, "Try something", "bob", "2026-05-12 09:00", base="master",
             commits=[commit(12, "2026-05-12 08:30", "bob")], closed="2026-05-12 10:00"),
        # Merged into another branch: no merge deployment, shipped by the next one (Q4).
        pull("lib", 3, "Feature branch work", "alice", "2026-05-13 09:00", base="feature-x", additions=20,
             commits=[commit(13, "2026-05-13 08:00", "alice")], reviews=[review("bob", "2026-05-13 10:00")],
             merged="2026-05-13 11:00"),
        pull("lib", 4, "Tune cache", "bob", "2026-05-14 09:00", base="master", additions=5, deletions=5,
             commits=[commit(14, "2026-05-14 08:00", "bob")], reviews=[review("alice", "2026-05-14 09:30")],
             merged="2026-05-14 10:00"),
        # A revert found by its title only.
        pull("lib", 5, 'Revert "Tune cache"', "bob", "2026-05-14 11:00", base="master", additions=5,
             deletions=5, body="Rolling back.", commits=[commit(15, "2026-05-14 10:30", "bob")],
             reviews=[review("alice", "2026-05-14 11:30")], merged="2026-05-14 12:00"),
    ]
    lib.workflow_runs = [
        WorkflowRun(database_id=501, name="Deploy", workflow_id=1, head_branch="feature-x", head_sha=sha(13),
                    event="push", status="completed", conclusion="success", run_attempt=1,
                    created_at=ts("2026-05-13 11:00"), run_started_at=ts("2026-05-13 11:00"),
                    updated_at=ts("2026-05-13 11:05")),
        WorkflowRun(database_id=502, name="CI", workflow_id=2, head_branch="master", head_sha=sha(14),
                    event="push", status="completed", conclusion="success", run_attempt=1,
                    created_at=ts("2026-05-14 10:00"), run_started_at=ts("2026-05-14 10:00"),
                    updated_at=ts("2026-05-14 10:07")),
    ]
    lib.releases = [
        Release(node_id="RE_1", database_id=601, name="v2", tag_name="v2.0.0", is_draft=True,
                is_prerelease=False, created_at=ts("2026-05-14 13:00"), published_at=None, author_login="bob"),
        Release(node_id="RE_2", database_id=602, name="v2-rc", tag_name="v2.0.0-rc.1", is_draft=False,
                is_prerelease=True, created_at=ts("2026-05-13 13:00"), published_at=ts("2026-05-13 13:00"),
                author_login="bob"),
    ]
    org = Organization(login="acme", now=ts("2026-05-25 00:00"))
    org.users = {
        "alice": User("alice", "Alice Martin", "U_a", 10),
        "bob": User("bob", "Bob Ø", "U_b", 11),
        "dependabot[bot]": User("dependabot[bot]", "dependabot", "BOT_d", 12, is_bot=True),
    }
    org.repositories = [app, lib]
    org.memberships = {"alice": ["acme/app", "acme/lib"], "bob": ["acme/app"]}
    org.anomalies = [Anomaly("repository", "acme/app", D("2026-05-04"), "median_review_hours", 3.0)]
    return org


@pytest.fixture(scope="module")
def frames():
    return truth.compute(build_org())


def test_columns_are_the_contract(frames):
    for name, columns in truth.MART_COLUMNS.items():
        assert list(frames[name].columns) == columns
    dtype = frames["fct_pull_requests"]["merged_at"].dtype
    assert isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC"
    assert frames["fct_pull_requests"]["coding_hours"].dtype == float
    assert isinstance(frames["fct_dora_weekly"]["week_start"].iloc[0], dt.date)


def test_pull_request_cycle_stages_and_shipping(frames):
    prs = frames["fct_pull_requests"].set_index("pull_request_id")
    cols = ["coding_hours", "pickup_hours", "review_hours", "deploy_hours", "lead_time_hours"]
    expected = {
        # created-first commit, first review-(ready or created), merged-first review,
        # shipped-merged, shipped-first commit
        "PR_app#1": ("D1", [24, 4, 67, 1, 96]),
        "PR_app#2": ("D2", [1, 0, 27, 1, 51]),
        "PR_app#4": ("D7", [1, 1, 19, 314, 335]),
        "PR_app#5": ("D7", [1, None, None, 214, 218]),
        "PR_app#6": ("D7", [1, 0.5, 0.5, 189, 191]),
        "PR_lib#1": ("PR_lib#1", [1, 1, 2, 0, 4]),
        "PR_lib#3": ("PR_lib#4", [1, 1, 1, 23, 26]),
        "PR_lib#4": ("PR_lib#4", [1, 0.5, 0.5, 0, 2]),
        "PR_lib#5": ("PR_lib#5", [0.5, 0.5, 0.5, 0, 1.5]),
    }
    for pr_id, (shipping, values) in expected.items():
        row = prs.loc[pr_id]
        assert row["shipping_deployment_id"] == shipping, pr_id
        for column, value in zip(cols, values, strict=False):
            if value is None:
                assert pd.isna(row[column]), (pr_id, column)
            else:
                assert row[column] == pytest.approx(value), (pr_id, column)
    bot = prs.loc["PR_app#3"]
    assert bot["is_bot"] and bot["shipping_deployment_id"] == "D2"
    assert all(pd.isna(bot[c]) for c in cols)
    assert prs.loc["PR_app#4", "author_login"] == "ghost" and not prs.loc["PR_app#4", "is_bot"]
    assert prs.loc["PR_app#1", "first_review_at"] == pd.Timestamp("2026-05-01 14:00", tz="UTC")
    assert pd.isna(prs.loc["PR_app#5", "first_review_at"])
    closed = prs.loc["PR_lib#2"]
    assert closed["state"] == "CLOSED" and pd.isna(closed["shipped_at"]) and pd.isna(closed["coding_hours"])
    assert prs.loc["PR_app#1", "review_count"] == 2 and prs.loc["PR_app#2", "pr_size"] == 150
    assert set(prs.index[prs["is_revert"]]) == {"PR_app#6", "PR_lib#5"}


def test_deployments_sources_and_failures(frames):
    deps = frames["fct_deployments"].set_index("deployment_id")
    # Staging (D4) and pending-only (D5) deployments are not deployments; the feature-branch
    # Deploy run and the draft/pre-release do not make lib anything but a merges repository.
    assert list(deps.index) == ["D0", "D1", "D2", "D3", "D6", "D7", "PR_lib#1", "PR_lib#4", "PR_lib#5"]
    assert deps.loc["D3", "deployed_at"] == pd.Timestamp("2026-05-07 09:30", tz="UTC")
    assert deps.loc["D6", "deployed_at"] == pd.Timestamp("2026-05-12 11:00", tz="UTC")
    assert {d for d in deps.index if deps.loc[d, "is_failed"]} == {"D3", "D6"}
    # D1: I1 by the window and the revert of PR_app#1 (which D1 shipped).
    assert deps.loc["D1", "incident_count"] == 2 and deps.loc["D2", "incident_count"] == 2
    assert deps.loc["PR_lib#4", "incident_count"] == 1
    assert {d for d in deps.index if deps.loc[d, "fails_change"]} == {"D1", "D2", "D3", "D6", "PR_lib#4"}
    causes = {d: deps.loc[d, "failure_cause"] for d in deps.index if not pd.isna(deps.loc[d, "failure_cause"])}
    assert causes == {"D1": "revert", "D2": "incident", "D3": "status", "D6": "status", "PR_lib#4": "revert"}
    # The reverts ship in D7 and PR_lib#5: rework deployments.
    assert set(deps.index[deps["is_rework"]]) == {"D7", "PR_lib#5"}
    recovery = {d: (deps.loc[d, "recovery_deployment_id"], deps.loc[d, "recovery_evidence"],
                    deps.loc[d, "recovery_hours"])
                for d in deps.index if not pd.isna(deps.loc[d, "recovery_deployment_id"])}
    assert recovery == {
        "D1": ("D7", "fix", pytest.approx(384)),  # the revert of PR_app#1 shipped in D7
        "D2": ("D7", "next_success", pytest.approx(336)),
        "D3": ("D7", "next_success", pytest.approx(312.5)),
        "D6": ("D7", "next_success", pytest.approx(191)),
        "PR_lib#4": ("PR_lib#5", "fix", pytest.approx(2)),
    }
    assert deps.loc["D1", "recovered_at"] == pd.Timestamp("2026-05-20 10:00", tz="UTC")
    assert pd.isna(deps.loc["D7", "recovered_at"]) and pd.isna(deps.loc["D7", "recovery_evidence"])
    assert deps.loc["D6", "source"] == "github_deployments" and deps.loc["D6", "environment"] == "Production"
    assert deps.loc["PR_lib#1", "source"] == "merges" and pd.isna(deps.loc["PR_lib#1", "environment"])
    assert deps.loc["D2", "week_start"] == D("2026-05-04")


def test_incidents_and_attribution_window_edges(frames):
    inc = frames["fct_incidents"].set_index("incident_id")
    assert set(inc.index) == {"PR_app#6", "I1", "I2", "I3", "PR_lib#5"}  # I4's labels are not incidents
    revert = inc.loc["PR_app#6"]
    assert revert["kind"] == "revert" and revert["reverted_pull_request_id"] == "PR_app#1"
    assert revert["started_at"] == pd.Timestamp("2026-05-04 09:00", tz="UTC")
    assert revert["restore_hours"] == pytest.approx(196)
    # Attributed to D1, which shipped the reverted PR_app#1 (D0, exactly 14 days before the
    # revert's start, was outside the window the 2023 rule used).
    assert revert["deployment_id"] == "D1" and revert["attribution_evidence"] == "revert"
    assert pd.isna(revert["closing_pull_request_id"])
    assert inc.loc["I1", "deployment_id"] == "D1" and inc.loc["I1", "restore_hours"] == pytest.approx(1.5)
    assert set(inc.loc[["I1", "I2", "I3"], "attribution_evidence"]) == {"window"}
    assert inc.loc["I2", "deployment_id"] == "D2" and pd.isna(inc.loc["I2", "restore_hours"])
    # D2 deployed 14 days minus one second before I3: inside; D7 came a second after I3.
    assert inc.loc["I3", "deployment_id"] == "D2" and inc.loc["I3", "restore_hours"] == pytest.approx(0.5)
    lib = inc.loc["PR_lib#5"]
    assert lib["reverted_pull_request_id"] == "PR_lib#4" and lib["deployment_id"] == "PR_lib#4"
    assert lib["restore_hours"] == pytest.approx(2) and lib["week_start"] == D("2026-05-11")
    assert lib["attribution_evidence"] == "revert"
    prs = frames["fct_pull_requests"].set_index("pull_request_id")
    assert prs["rework_reason"].dropna().to_dict() == {"PR_app#6": "revert", "PR_lib#5": "revert"}


def weekly(frames, scope_type, scope):
    rows = frames["fct_dora_weekly"]
    return rows[(rows.scope_type == scope_type) & (rows.scope == scope)].set_index("week_start")


def check(row, expected: dict):
    for column, value in expected.items():
        if value is None:
            assert pd.isna(row[column]), column
        elif isinstance(value, str):
            assert row[column] == value, column
        else:
            assert row[column] == pytest.approx(value), (column, row[column], value)


def test_weekly_dora_for_a_repository(frames):
    bench = truth.load_benchmark()  # all industries
    app = weekly(frames, "repository", "acme/app")
    assert list(app.index) == [D("2026-04-20"), D("2026-04-27"), D("2026-05-04"), D("2026-05-11"), D("2026-05-18")]
    check(app.loc[D("2026-04-20")], dict(
        deployments=1, deployment_days=1, change_failure_rate=0, merged_prs=0, review_coverage=None,
        legacy_deployment_frequency_grade="high", legacy_lead_time_grade=None, legacy_change_failure_rate_grade="elite",
        legacy_time_to_restore_grade=None, review_coverage_12w=None, legacy_performance_score=(75 * .25 + 100 * .2) / .45))
    check(app.loc[D("2026-04-27")], dict(
        deployments=0, deployment_days=0, change_failure_rate=None, failed_changes=0, incidents=0,
        merged_prs=0, median_lead_time_hours=None,
        # weekly days [1, 0]: median 0.5 < 1, mean 0.5 >= 12/52
        legacy_deployment_frequency_grade="medium", legacy_performance_score=(50 * .25 + 100 * .2) / .45))
    check(app.loc[D("2026-05-04")], dict(
        deployments=3, deployment_days=2, median_lead_time_hours=73.5, change_failure_rate=1.0,
        failed_changes=3, incidents=2, median_time_to_restore_hours=98.75, merged_prs=3,
        review_coverage=1.0, median_pr_size=30, p90_pr_size=126, median_coding_hours=1,
        median_pickup_hours=1, median_review_hours=27, median_deploy_hours=1,
        legacy_deployment_frequency_grade="high", legacy_lead_time_grade="high", legacy_change_failure_rate_grade="low",
        legacy_time_to_restore_grade="medium", review_coverage_12w=1.0,
        legacy_performance_score=75 * .25 + 75 * .25 + 25 * .2 + 50 * .15 + 100 * .15))
    check(app.loc[D("2026-05-11")], dict(
        deployments=1, deployment_days=0, median_lead_time_hours=None, change_failure_rate=1.0,
        failed_changes=1, incidents=1, median_time_to_restore_hours=None, merged_prs=2,
        review_coverage=0.5, median_pr_size=12.5, p90_pr_size=14.5, median_coding_hours=1,
        median_pickup_hours=0.5, median_review_hours=0.5, median_deploy_hours=201.5))
    check(app.loc[D("2026-05-18")], dict(
        deployments=1, deployment_days=1, median_lead_time_hours=218, change_failure_rate=0,
        incidents=1, median_time_to_restore_hours=0.5, merged_prs=0,
        legacy_deployment_frequency_grade="high", legacy_lead_time_grade="medium", legacy_change_failure_rate_grade="low",
        legacy_time_to_restore_grade="high", review_coverage_12w=0.8,
        legacy_performance_score=75 * .25 + 50 * .25 + 25 * .2 + 75 * .15 + 80 * .15))
    assert app.loc[D("2026-05-18"), "legacy_performance_score"] == pytest.approx(59.5)
    # docs/dora.md. Recovery: D1 384 h (fix), D2 336 h, D3 312.5 h, D6 191 h; D7 is rework.
    check(app.loc[D("2026-04-20")], dict(
        rework_deployments=0, rework_rate=0, recovered_deployments=0, median_recovery_hours=None,
        lead_time_hours_12w=None, deployment_days_per_week_12w=1, deployments_per_deployment_day_12w=1,
        change_failure_rate_12w=0, recovery_hours_12w=None, rework_rate_12w=0, rework_rate_26w=0,
        lead_time_band=None, deployment_frequency_band=4, recovery_band=None, lead_time_score=None,
        deployment_frequency_score=6, recovery_score=None, change_fail_score=10, rework_score=10,
        throughput_score=6, stability_score=10, overall_score=26 / 3, overall_vs_benchmark=26 / 3 - bench["overall"],
        throughput_vs_benchmark=6 - bench["throughput"],
        stability_vs_benchmark=10 - bench["stability"]))
    check(app.loc[D("2026-04-27")], dict(
        rework_deployments=0, rework_rate=None, recovered_deployments=0, deployment_days_per_week_12w=0.5,
        deployment_frequency_band=3, throughput_score=4, stability_score=10, overall_score=8))
    check(app.loc[D("2026-05-04")], dict(
        rework_deployments=0, rework_rate=0, recovered_deployments=3, median_recovery_hours=336,
        lead_time_hours_12w=73.5, deployment_days_per_week_12w=1, deployments_per_deployment_day_12w=1,
        change_failure_rate_12w=0.75, recovery_hours_12w=336, rework_rate_12w=0, lead_time_band=4,
        deployment_frequency_band=4, recovery_band=3, throughput_score=16 / 3, change_fail_score=2.5,
        stability_score=6.25, overall_score=5.7))
    check(app.loc[D("2026-05-11")], dict(recovered_deployments=1, median_recovery_hours=191))
    check(app.loc[D("2026-05-18")], dict(
        rework_deployments=1, rework_rate=1, recovered_deployments=0, median_recovery_hours=None,
        lead_time_hours_12w=191, deployment_days_per_week_12w=0.8, deployments_per_deployment_day_12w=1,
        change_failure_rate_12w=4 / 6, recovery_hours_12w=324.25, rework_rate_12w=1 / 6, rework_rate_26w=1 / 6,
        lead_time_band=3, deployment_frequency_band=3, recovery_band=3, lead_time_score=4,
        deployment_frequency_score=4, recovery_score=4, change_fail_score=10 / 3, rework_score=25 / 3,
        throughput_score=4, stability_score=35 / 6, overall_score=71 / 15,
        overall_vs_benchmark=71 / 15 - bench["overall"], throughput_vs_benchmark=4 - bench["throughput"],
        stability_vs_benchmark=35 / 6 - bench["stability"]))

    lib = weekly(frames, "repository", "acme/lib")
    assert list(lib.index) == [D("2026-05-04"), D("2026-05-11"), D("2026-05-18")]  # zero-filled to the last week
    check(lib.loc[D("2026-05-11")], dict(
        deployments=2, deployment_days=1, median_lead_time_hours=2, change_failure_rate=0.5,
        failed_changes=1, incidents=1, median_time_to_restore_hours=2, merged_prs=3, review_coverage=1.0,
        median_pr_size=10, p90_pr_size=18, median_coding_hours=1, median_pickup_hours=0.5,
        median_review_hours=0.5, median_deploy_hours=0))
    check(lib.loc[D("2026-05-18")], dict(
        deployments=0, merged_prs=0, legacy_deployment_frequency_grade="high", legacy_lead_time_grade="elite",
        legacy_change_failure_rate_grade="low", legacy_time_to_restore_grade="high", review_coverage_12w=1.0,
        legacy_performance_score=75.0))


def test_weekly_dora_for_a_user_pools_their_repositories(frames):
    bob = weekly(frames, "user", "bob")
    app = weekly(frames, "repository", "acme/app")
    pd.testing.assert_frame_equal(bob.drop(columns=["scope_type", "scope"]), app.drop(columns=["scope_type", "scope"]))
    alice = weekly(frames, "user", "alice")
    assert alice.index[0] == D("2026-04-20") and alice.index[-1] == D("2026-05-18")
    check(alice.loc[D("2026-05-04")], dict(deployments=4, deployment_days=3, merged_prs=4))
    check(alice.loc[D("2026-05-11")], dict(
        deployments=3, deployment_days=1, failed_changes=2, change_failure_rate=2 / 3, incidents=2,
        median_time_to_restore_hours=2, merged_prs=5, review_coverage=0.8, median_lead_time_hours=2,
        median_pickup_hours=0.5, median_pr_size=10, p90_pr_size=18))
    check(alice.loc[D("2026-05-18")], dict(
        legacy_deployment_frequency_grade="high", legacy_lead_time_grade="high", legacy_change_failure_rate_grade="low",
        legacy_time_to_restore_grade="high", review_coverage_12w=8 / 9,
        legacy_performance_score=75 * .25 + 75 * .25 + 25 * .2 + 75 * .15 + 800 / 9 * .15))


def _staged(shipped: str, coding, pickup, review, deploy, *, bot: bool = False) -> dict:
    """A pull-request row with the columns bottleneck_rows reads."""
    return {"is_bot": bot, "shipped_at": ts(shipped), "lead_time_hours": None if bot else 1.0,
            "coding_hours": None if bot else coding, "pickup_hours": None if bot else pickup,
            "review_hours": None if bot else review, "deploy_hours": None if bot else deploy}


def test_bottlenecks_sum_stage_hours_over_the_window_and_its_halves():
    weeks = [D("2026-01-05") + dt.timedelta(days=7 * k) for k in range(13)]  # 5 Jan .. 30 Mar
    prs = [_staged("2026-01-06 10:00", 2, 0, 1, 0) for _ in range(3)]  # the week of 5 Jan
    prs += [_staged("2026-02-17 10:00", 1, 4, 4, 1) for _ in range(2)]  # the week of 16 Feb
    # Not counted: a bot's, and one without a first review (no pickup or review hours).
    prs += [_staged("2026-02-17 10:00", 9, 9, 9, 9, bot=True), _staged("2026-02-17 10:00", 9, None, None, 9)]
    rows = {r["week_start"]: r for r in truth.bottleneck_rows("repository", "o/a", prs, weeks)}
    assert list(rows) == weeks
    # Three pull requests: sums and shares, but too few to name a stage.
    check(pd.Series(rows[D("2026-01-05")]), dict(
        prs_12w=3, coding_hours_12w=6, pickup_hours_12w=0, review_hours_12w=3, deploy_hours_12w=0,
        coding_share_12w=2 / 3, pickup_share_12w=0, review_share_12w=1 / 3, deploy_share_12w=0,
        dominant_stage=None, dominant_share_12w=None, dominant_share_earlier_6w=None,
        dominant_share_recent_6w=None, dominant_share_change=None))
    # Five: review has 11 of 29 h; the earlier half (1 Dec .. 5 Jan) holds the first week's
    # pull requests (review 3 of 9 h), the recent half (12 Jan .. 16 Feb) the others (8 of 20 h).
    check(pd.Series(rows[D("2026-02-16")]), dict(
        prs_12w=5, coding_hours_12w=8, pickup_hours_12w=8, review_hours_12w=11, deploy_hours_12w=2,
        dominant_stage="review", dominant_share_12w=11 / 29, dominant_share_earlier_6w=1 / 3,
        dominant_share_recent_6w=0.4, dominant_share_change=0.4 - 1 / 3))
    # 23 Mar: the window is 5 Jan .. 23 Mar, halves 5 Jan .. 9 Feb and 16 Feb .. 23 Mar.
    check(pd.Series(rows[D("2026-03-23")]), dict(prs_12w=5, dominant_stage="review",
                                                 dominant_share_earlier_6w=1 / 3, dominant_share_recent_6w=0.4))
    # 30 Mar: the first week has left the window; its earlier half (12 Jan .. 16 Feb) has hours.
    check(pd.Series(rows[D("2026-03-30")]), dict(prs_12w=2, coding_hours_12w=2, pickup_hours_12w=8,
                                                 review_hours_12w=8, dominant_stage=None))
    # With a minimum of 2, pickup and review tie at 8 h and pickup, the earlier stage, is named;
    # the recent half (23 Feb .. 30 Mar) has no pull requests, so there is no change.
    tied = {r["week_start"]: r for r in truth.bottleneck_rows("repository", "o/a", prs, weeks, min_prs=2)}
    check(pd.Series(tied[D("2026-03-30")]), dict(dominant_stage="pickup", dominant_share_12w=0.4,
                                                 dominant_share_earlier_6w=0.4, dominant_share_recent_6w=None,
                                                 dominant_share_change=None))
    # Hours summing to 0 give no shares and no stage.
    zero = truth.bottleneck_rows("user", "u", [_staged("2026-01-06 10:00", 0, 0, 0, 0)] * 5, weeks[:1])[0]
    check(pd.Series(zero), dict(prs_12w=5, coding_hours_12w=0, coding_share_12w=None, dominant_stage=None))


def test_dimensions_and_ml_features(frames):
    repos = frames["dim_repositories"].set_index("repo_full_name")
    check(repos.loc["acme/app"], dict(deployment_source="github_deployments", default_branch="main",
                                      legacy_performance_score=59.5, legacy_lead_time_grade="medium"))
    assert repos.loc["acme/app", "first_week"] == D("2026-04-20") and repos.loc["acme/app", "last_week"] == D("2026-05-18")
    check(repos.loc["acme/lib"], dict(deployment_source="merges", repository_id="R_lib", legacy_performance_score=75.0))
    assert repos.loc["acme/app", "overall_score"] == pytest.approx(71 / 15)
    users = frames["dim_users"].set_index("login")
    assert users.loc["alice", "repository_count"] == 2 and users.loc["bob", "display_name"] == "Bob Ø"
    assert users.loc["bob", "legacy_performance_score"] == pytest.approx(59.5)
    assert users.loc["bob", "overall_score"] == pytest.approx(71 / 15)
    ml = frames["ml_weekly_features"]
    assert len(ml) == len(frames["fct_dora_weekly"])
    assert not any(c.endswith("_grade") for c in ml.columns)
    anomalies = frames["anomalies"]
    assert anomalies.to_dict("records") == [{"scope_type": "repository", "scope": "acme/app",
                                             "week_start": D("2026-05-04"), "metric": "median_review_hours",
                                             "factor": 3.0}]


def test_settings_override_source_and_regexes():
    org = build_org()
    merges = truth.compute(org, {"acme/app": {"deployment_source": "merges"}})
    deps = merges["fct_deployments"]
    app = deps[deps.repo_full_name == "acme/app"]
    # Every PR merged into main, the bot's included.
    assert sorted(app.deployment_id) == [f"PR_app#{n}" for n in range(1, 7)]
    staging = truth.compute(org, {"acme/app": {"production_environment_regex": "(?i)^staging$",
                                               "deploy_workflow_regex": None}})
    app = staging["fct_deployments"][staging["fct_deployments"].repo_full_name == "acme/app"]
    assert list(app.deployment_id) == ["D4"]
    ci = truth.compute(org, {"acme/lib": {"deploy_workflow_regex": "(?i)^ci$"}})
    lib = ci["fct_deployments"][ci["fct_deployments"].repo_full_name == "acme/lib"]
    assert list(lib.deployment_id) == ["502"] and set(lib.source) == {"workflow_runs"}
    releases = truth.compute(org, {"acme/lib": {"deployment_source": "releases"}})
    assert not (releases["fct_deployments"].repo_full_name == "acme/lib").any()
    incidents = truth.compute(org, {"acme/app": {"incident_label_regex": "^bug$"}})["fct_incidents"]
    assert set(incidents.incident_id) == {"PR_app#6", "I1", "I4", "PR_lib#5"}
    with pytest.raises(ValueError, match="unknown deployment_source"):
        truth.compute(org, {"acme/app": {"deployment_source": "ftp"}})


def test_cli_writes_one_csv_per_mart(tmp_path):
    result = CliRunner().invoke(sandbox, ["truth", "--seed", "4", "--repos", "4", "--prs", "40",
                                          "--weeks", "12", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name, columns in truth.MART_COLUMNS.items():
        frame = pd.read_csv(tmp_path / f"{name}.csv")
        assert list(frame.columns) == columns
    org = generator.generate(4, repos=4, prs_per_repo=40, weeks=12)
    written = pd.read_csv(tmp_path / "fct_pull_requests.csv")
    assert len(written) == sum(len(r.pull_requests) for r in org.repositories)
    anomalies = pd.read_csv(tmp_path / "anomalies.csv")
    assert len(anomalies) == len(org.anomalies) > 0
