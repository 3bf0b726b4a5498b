"""docs/dora.md in the ground truth: rework, attribution with evidence, failure causes, recovery,
the trailing windows, the Quick Check bands and scores, and the benchmarks, each on a tiny
hand-built organisation (or the band and score functions directly), checked against values
worked out by hand.

Calendar (2026): Mon 5 Jan, Tue 6, Wed 7, Thu 8, Fri 9, Mon 12, Mon 19 Jan; Mon 23 Mar, Mon 30 Mar,
Mon 6 Apr. Weeks start on Monday.
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_sandbox_truth import D, commit, deployment, issue, pull, sha, ts

from ghmetrics_dagster.metrics import repository_settings
from ghmetrics_dagster.sandbox import truth
from ghmetrics_dagster.sandbox.model import Issue, Organization, PullRequest, Repository, User


def repo(name: str, style: str = "github_deployments", *, prs=(), deployments=(), issues=(),
         branch: str = "main") -> Repository:
    r = Repository(node_id=f"R_{name}", database_id=abs(hash(name)) % 10_000, owner="acme", name=name,
                   default_branch=branch, created_at=ts("2026-01-01 00:00"), updated_at=ts("2026-01-01 00:00"),
                   pushed_at=ts("2026-01-01 00:00"), deployment_style=style)
    r.pull_requests, r.deployments, r.issues = list(prs), list(deployments), list(issues)
    return r


def organization(*repos: Repository, memberships: dict[str, list[str]] | None = None) -> Organization:
    org = Organization(login="acme", now=ts("2026-06-01 00:00"))
    org.users = {"alice": User("alice", "Alice", "U_a", 1),
                 "dependabot[bot]": User("dependabot[bot]", "dependabot", "BOT_d", 2, is_bot=True)}
    org.repositories = list(repos)
    org.memberships = memberships or {}
    return org


def pr(repo_name: str, number: int, title: str, merged: str | None, *, body: str = "", labels=(),
       head: str | None = None, author: str = "alice", closed: str | None = None,
       first_commit: str | None = None) -> PullRequest:
    """A pull request with one commit, sha(number), authored an hour before it was created."""
    created = merged or closed
    created_at = pd.Timestamp(created) - pd.Timedelta(hours=1)
    authored = first_commit or str(created_at - pd.Timedelta(hours=1))
    p = pull(repo_name, number, title, author, str(created_at), commits=[commit(number, authored, author)],
             merged=merged, closed=closed, body=body)
    p.labels = list(labels)
    if head is not None:
        p.head_ref = head
    return p


def reverts(number: int) -> str:
    return f"This reverts commit {sha(number)}."


def closed_by(node: Issue, pull_request_id: str | None) -> Issue:
    node.closed_by_pull_request = pull_request_id
    return node


def success(name: str, when: str):
    return deployment(name, "production", ("SUCCESS", when))


def failure(name: str, when: str):
    return deployment(name, "production", ("PENDING", when), ("FAILURE", when))


def rows(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.set_index(key)


def value(cell):
    return None if pd.isna(cell) else cell


# -- rework ---------------------------------------------------------------------------------------

def rework_org() -> Organization:
    r = repo("r", "merges", prs=[
        pr("r", 1, "Add feature", "2026-01-05 10:00"),
        # A revert that also carries every lesser reason: the revert wins.
        pr("r", 2, 'Revert "Add feature"', "2026-01-06 10:00", body=reverts(1), labels=["hotfix"],
           head="hotfix/undo"),
        # Closes an incident issue, and has a hotfix label and branch: incident_fix wins.
        pr("r", 3, "Fix outage", "2026-01-07 10:00", labels=["hotfix"], head="hotfix/y"),
        pr("r", 4, "Patch", "2026-01-08 10:00", labels=["bug", "HotFix"], head="hotfix-z"),
        pr("r", 5, "Patch 2", "2026-01-08 11:00", labels=["hotfixes", "not-a-hotfix"], head="HOTFIX_abc"),
        # Neither: the label must be the whole name, the branch needs a separator.
        pr("r", 6, "Patch 3", "2026-01-08 12:00", labels=["hotfix-later"], head="hotfix"),
        # Not merged: never rework, and not a closing pull request.
        pr("r", 7, "Abandoned fix", None, closed="2026-01-08 13:00", labels=["hotfix"], head="hotfix/no"),
        pr("r", 8, "Close a bug", "2026-01-08 14:00"),
        # An unresolvable revert is a revert (is_revert) but not rework.
        pr("r", 9, 'Revert "Nothing like this"', "2026-01-08 15:00"),
        # A bot's pull request is rework too.
        pr("r", 10, "Bump deps", "2026-01-08 16:00", head="hot-fix/deps", author="dependabot[bot]"),
    ], issues=[
        closed_by(issue("I_a", 20, ["incident"], "2026-01-06 09:00", "2026-01-06 10:00"), "PR_r#2"),
        closed_by(issue("I_b", 21, ["outage"], "2026-01-07 09:00", "2026-01-07 10:00"), "PR_r#3"),
        closed_by(issue("I_c", 22, ["incident"], "2026-01-08 09:00", None), "PR_r#7"),
        closed_by(issue("I_d", 23, ["bug"], "2026-01-08 09:00", "2026-01-08 14:00"), "PR_r#8"),
    ])
    # An open pull request on a hotfix branch.
    r.pull_requests.append(pull("r", 11, "Open hotfix", "alice", "2026-01-08 09:00",
                                commits=[commit(11, "2026-01-08 08:00", "alice")]))
    r.pull_requests[-1].head_ref = "hotfix/open"
    r.pull_requests[-1].labels = ["hotfix"]
    return organization(r)


def test_rework_reasons_and_their_precedence():
    frames = truth.compute(rework_org())
    prs = rows(frames["fct_pull_requests"], "pull_request_id")
    reasons = {i: value(prs.loc[i, "rework_reason"]) for i in prs.index}
    assert reasons == {
        "PR_r#1": None, "PR_r#2": "revert", "PR_r#3": "incident_fix", "PR_r#4": "hotfix_label",
        "PR_r#5": "hotfix_branch", "PR_r#6": None, "PR_r#7": None, "PR_r#8": None, "PR_r#9": None,
        "PR_r#10": "hotfix_branch", "PR_r#11": None,
    }
    assert prs.loc["PR_r#9", "is_revert"]
    deps = rows(frames["fct_deployments"], "deployment_id")
    assert set(deps.index[deps["is_rework"]]) == {"PR_r#2", "PR_r#3", "PR_r#4", "PR_r#5", "PR_r#10"}
    inc = rows(frames["fct_incidents"], "incident_id")
    assert value(inc.loc["I_a", "closing_pull_request_id"]) == "PR_r#2"
    assert value(inc.loc["I_c", "closing_pull_request_id"]) is None  # closed by an unmerged pull request
    assert "I_d" not in inc.index


def test_rework_follows_the_repository_settings():
    settings = {"acme/r": {"hotfix_label_regex": "(?i)^hotfix-later$", "hotfix_branch_regex": None,
                           "incident_label_regex": "^incident$"}}
    prs = rows(truth.compute(rework_org(), settings)["fct_pull_requests"], "pull_request_id")
    reasons = {i: value(prs.loc[i, "rework_reason"]) for i in prs.index if value(prs.loc[i, "rework_reason"])}
    assert reasons == {
        "PR_r#2": "revert",
        "PR_r#3": "hotfix_branch",  # "outage" is no longer an incident; "hotfix" no longer a hotfix label
        "PR_r#4": "hotfix_branch",
        "PR_r#5": "hotfix_branch",  # a null setting takes the default branch regex
        "PR_r#6": "hotfix_label",
        "PR_r#10": "hotfix_branch",
    }
    assert repository_settings.DEFAULTS["hotfix_label_regex"] == "(?i)^hot-?fix$"
    assert repository_settings.DEFAULTS["hotfix_branch_regex"] == "(?i)^hot-?fix[/_-]"


# -- attribution with evidence --------------------------------------------------------------------

def attribution_org() -> Organization:
    a = repo("a", prs=[
        pr("a", 1, "A", "2026-01-05 09:00"),                                  # shipped by D1
        pr("a", 2, 'Revert "A"', "2026-01-08 09:00", body=reverts(1)),       # shipped by D3
        pr("a", 3, "C", "2026-01-09 12:00"),                                  # never shipped
        pr("a", 4, 'Revert "C"', "2026-01-09 13:00"),                         # title only; never shipped
        pr("a", 5, "Fix the crash", "2026-01-08 13:00"),                      # shipped by D3
        pr("a", 6, "Abandoned", None, closed="2026-01-07 12:00"),
    ], deployments=[
        success("D1", "2026-01-05 10:00"),
        success("D2", "2026-01-07 10:00"),
        success("D3", "2026-01-09 10:00"),
    ], issues=[
        # Closed by a resolved revert: the reverted change's deployment, not the window's D2.
        closed_by(issue("I1", 11, ["incident"], "2026-01-08 08:00", "2026-01-08 09:00"), "PR_a#2"),
        # Closed by a revert of a change that never shipped: falls through to the window (D3).
        closed_by(issue("I2", 12, ["incident"], "2026-01-09 11:00", "2026-01-09 13:00"), "PR_a#4"),
        # Closed by a fix-forward: the window's deployment, with closing_reference evidence.
        closed_by(issue("I3", 13, ["incident"], "2026-01-08 12:00", "2026-01-08 13:00"), "PR_a#5"),
        # Closed by an unmerged pull request, or one not known: window evidence.
        closed_by(issue("I4", 14, ["incident"], "2026-01-07 11:00", "2026-01-07 12:00"), "PR_a#6"),
        closed_by(issue("I5", 15, ["incident"], "2026-01-07 11:30", "2026-01-07 12:00"), "PR_elsewhere"),
    ])
    b = repo("b", prs=[pr("b", 1, "Late fix", "2026-01-20 11:00")], deployments=[
        success("DB2", "2026-01-05 10:00"),
        success("DB1", "2026-01-05 10:00"),  # the same time: the greater id wins
    ], issues=[
        issue("J1", 1, ["incident"], "2026-01-19 10:00", None),     # exactly 14 days after: outside
        issue("J2", 2, ["incident"], "2026-01-19 09:59:59", None),  # a second inside
        issue("J3", 3, ["incident"], "2026-01-05 10:00", None),     # at the deployment: inside
        issue("J4", 4, ["incident"], "2026-01-05 09:59:59", None),  # before it: nothing
        # A closing pull request but no deployment in the window: unattributed.
        closed_by(issue("J5", 5, ["incident"], "2026-01-20 10:00", "2026-01-20 11:00"), "PR_b#1"),
    ])
    return organization(a, b)


def test_attribution_evidence_precedence_and_the_window_boundary():
    frames = truth.compute(attribution_org())
    inc = rows(frames["fct_incidents"], "incident_id")
    got = {i: (value(inc.loc[i, "deployment_id"]), value(inc.loc[i, "attribution_evidence"]),
               value(inc.loc[i, "closing_pull_request_id"])) for i in inc.index}
    assert got == {
        "PR_a#2": ("D1", "revert", None),
        "PR_a#4": (None, None, None),  # a revert of a change that never shipped: attributed to nothing
        "I1": ("D1", "revert", "PR_a#2"),
        "I2": ("D3", "closing_reference", "PR_a#4"),
        "I3": ("D2", "closing_reference", "PR_a#5"),
        "I4": ("D2", "window", None),
        "I5": ("D2", "window", None),
        "J1": (None, None, None),
        "J2": ("DB2", "window", None),
        "J3": ("DB2", "window", None),
        "J4": (None, None, None),
        "J5": (None, None, "PR_b#1"),
    }
    # The revert incident keeps its own restore time (reverted merge -> revert merge).
    assert inc.loc["PR_a#2", "restore_hours"] == pytest.approx(72)
    assert inc.loc["PR_a#4", "reverted_pull_request_id"] == "PR_a#3"
    prs = rows(frames["fct_pull_requests"], "pull_request_id")
    assert value(prs.loc["PR_a#4", "rework_reason"]) == "revert"  # still rework, though never shipped
    assert value(prs.loc["PR_a#5", "rework_reason"]) == "incident_fix"
    deps = rows(frames["fct_deployments"], "deployment_id")
    assert deps.loc["D1", "incident_count"] == 2 and deps.loc["D2", "incident_count"] == 3
    assert deps.loc["D3", "incident_count"] == 1 and deps.loc["DB2", "incident_count"] == 2
    assert deps.loc["DB1", "incident_count"] == 0
    assert {d: value(deps.loc[d, "failure_cause"]) for d in deps.index} == {
        "D1": "revert", "D2": "incident", "D3": "incident", "DB1": None, "DB2": "incident"}


def test_recovery_of_the_attribution_org():
    deps = rows(truth.compute(attribution_org())["fct_deployments"], "deployment_id")
    recovery = {d: (value(deps.loc[d, "recovery_deployment_id"]), value(deps.loc[d, "recovery_evidence"]),
                    value(deps.loc[d, "recovery_hours"])) for d in deps.index}
    assert recovery == {
        # Fixes of D1: PR_a#2 (reverts what it shipped, and closes I1): shipped by D3.
        "D1": ("D3", "fix", pytest.approx(96)),
        # Fixes of D2: PR_a#5 (closes I3, shipped by D3); I4 and I5 have no closing pull request.
        "D2": ("D3", "fix", pytest.approx(48)),
        # D3's fix PR_a#4 (closes I2) never shipped: not recovered, though nothing came after anyway.
        "D3": (None, None, None),
        "DB1": (None, None, None),  # does not fail a change
        # No fixes, and no successful deployment later than it (DB1 is at the same time).
        "DB2": (None, None, None),
    }
    assert deps.loc["D1", "recovered_at"] == pd.Timestamp("2026-01-09 10:00", tz="UTC")


# -- failure causes and recovery ------------------------------------------------------------------

def recovery_org() -> Organization:
    f = repo("f", prs=[
        pr("f", 1, "A", "2026-01-05 09:00"),                             # shipped by F1
        pr("f", 2, "B", "2026-01-06 09:00"),                             # shipped by F2
        pr("f", 3, 'Revert "A"', "2026-01-08 09:00", body=reverts(1)),  # merged after F2; shipped by F4
        pr("f", 4, "E", "2026-01-12 08:00"),                             # shipped by F6
        pr("f", 5, 'Revert "E"', "2026-01-12 09:00", body=reverts(4)),  # reverted before it shipped: F6 too
        pr("f", 6, "Fix the crash", "2026-01-13 09:00"),                 # closes K2; shipped by F8
        pr("f", 7, "Fix it later", "2026-01-20 09:00"),                  # closes K3; never shipped
    ], deployments=[
        success("F1", "2026-01-05 10:00"),
        success("F2", "2026-01-06 10:00"),
        failure("F3", "2026-01-07 10:00"),
        success("F4", "2026-01-08 10:00"),
        success("F6", "2026-01-12 10:00"),
        success("F7", "2026-01-12 20:00"),
        success("F8", "2026-01-13 10:00"),
        success("F9", "2026-01-15 10:00"),
    ], issues=[
        issue("K1", 1, ["incident"], "2026-01-06 12:00", "2026-01-06 18:00"),  # window: F2, no closer
        closed_by(issue("K2", 2, ["incident"], "2026-01-12 21:00", "2026-01-13 09:00"), "PR_f#6"),  # F7
        closed_by(issue("K3", 3, ["sev1"], "2026-01-15 11:00", "2026-01-20 09:00"), "PR_f#7"),  # F9
    ])
    g = repo("g", deployments=[
        failure("G0", "2026-01-05 10:00"),
        success("G2", "2026-01-06 10:00"),
        success("G1", "2026-01-06 10:00"),  # the same time as G2: the smaller id recovers
    ])
    return organization(f, g)


def test_failure_causes_and_recovery():
    frames = truth.compute(recovery_org())
    deps = rows(frames["fct_deployments"], "deployment_id")
    got = {d: (value(deps.loc[d, "failure_cause"]), value(deps.loc[d, "recovery_deployment_id"]),
               value(deps.loc[d, "recovery_evidence"]), value(deps.loc[d, "recovery_hours"]))
           for d in deps.index}
    assert got == {
        # The revert of A was merged after the next success F2: recovery is the fix's deployment.
        "F1": ("revert", "F4", "fix", pytest.approx(72)),
        # An incident with no closing pull request: the next success (F3 failed).
        "F2": ("incident", "F4", "next_success", pytest.approx(48)),
        "F3": ("status", "F4", "next_success", pytest.approx(24)),
        "F4": (None, None, None, None),
        # E and its revert shipped together: the only fix shipped in F6 itself, never after it.
        "F6": ("revert", None, None, None),
        # K2's closing pull request shipped in F8 (which is also the next success).
        "F7": ("incident", "F8", "fix", pytest.approx(14)),
        "F8": (None, None, None, None),
        # K3's fix never shipped: not recovered, though no success came after it anyway.
        "F9": ("incident", None, None, None),
        "G0": ("status", "G1", "next_success", pytest.approx(24)),
        "G1": (None, None, None, None),
        "G2": (None, None, None, None),
    }
    assert set(deps.index[deps["fails_change"]]) == {"F1", "F2", "F3", "F6", "F7", "F9", "G0"}
    assert set(deps.index[deps["is_rework"]]) == {"F4", "F6", "F8"}  # F3 failed: ships nothing
    assert not deps.loc["F3", "is_rework"]
    assert deps.loc["F1", "recovered_at"] == pd.Timestamp("2026-01-08 10:00", tz="UTC")
    assert pd.isna(deps.loc["F4", "recovered_at"])
    # The week of 5 Jan: F1, F2, F3 recovered (72, 48, 24 h), F4 is rework.
    weekly = frames["fct_dora_weekly"].set_index(["scope", "week_start"])
    week = weekly.loc[("acme/f", D("2026-01-05"))]
    assert week["recovered_deployments"] == 3 and week["median_recovery_hours"] == pytest.approx(48)
    assert week["rework_deployments"] == 1 and week["rework_rate"] == pytest.approx(0.25)
    # The week of 12 Jan: F6, F7, F8, F9; F7 recovered in 14 h; F6 and F8 are rework.
    week = weekly.loc[("acme/f", D("2026-01-12"))]
    assert week["recovered_deployments"] == 1 and week["median_recovery_hours"] == pytest.approx(14)
    assert week["rework_deployments"] == 2 and week["rework_rate"] == pytest.approx(0.5)
    # The two weeks: F1 F2 F3 F6 F7 F9 of 8 deployments fail a change; the median recovery of
    # 72, 48, 24 and 14 h is 36 h (band 4); 3 of 8 are rework.
    check_row(week, change_failure_rate_12w=6 / 8, recovery_hours_12w=36, rework_rate_12w=3 / 8,
              rework_rate_26w=3 / 8, recovery_band=4)


def check_row(row, **expected):
    for column, want in expected.items():
        if want is None:
            assert pd.isna(row[column]), column
        else:
            assert row[column] == pytest.approx(want), (column, row[column], want)


# -- trailing windows, user scopes ----------------------------------------------------------------

def window_org() -> Organization:
    x = repo("x", "merges", prs=[
        pr("x", 1, "x1", "2026-01-05 10:00"),
        pr("x", 2, "x2", "2026-01-05 11:00"),
        pr("x", 3, "x3", "2026-01-06 10:00"),
        pr("x", 4, "x4", "2026-04-06 10:00"),  # thirteen weeks later
    ])
    y = repo("y", "merges", prs=[
        pr("y", 1, "y1", "2026-01-05 12:00"),  # the same UTC date as x1, x2
        pr("y", 2, "y2", "2026-01-07 10:00", labels=["hotfix"]),
    ])
    # Ten deployments over five days, two a day: on demand.
    z = repo("z", "merges", prs=[pr("z", n, f"z{n}", f"2026-01-{5 + (n - 1) // 2:02d} {10 + n % 2}:00")
                                 for n in range(1, 11)])
    return organization(x, y, z, memberships={"u": ["acme/x", "acme/y"]})


def test_trailing_windows_and_user_pooling():
    bench = truth.load_benchmark()
    frames = truth.compute(window_org())
    weekly = frames["fct_dora_weekly"]
    user = weekly[weekly.scope == "u"].set_index("week_start")
    assert list(user.index) == [D("2026-01-05") + pd.Timedelta(weeks=k).to_pytimedelta() for k in range(14)]
    # 5 deployments on 3 distinct dates across x and y (5, 6, 7 Jan); lead times all 2 h.
    check_row(user.loc[D("2026-01-05")], deployments=5, deployment_days=3, rework_deployments=1, rework_rate=0.2,
              lead_time_hours_12w=2, deployment_days_per_week_12w=3, deployments_per_deployment_day_12w=5 / 3,
              change_failure_rate_12w=0, recovery_hours_12w=None, rework_rate_12w=0.2, rework_rate_26w=0.2,
              lead_time_band=5, deployment_frequency_band=4, recovery_band=None, lead_time_score=8,
              deployment_frequency_score=6, recovery_score=None, change_fail_score=10, rework_score=8,
              throughput_score=7, stability_score=9, overall_score=8,
              overall_vs_benchmark=8 - bench["overall"], throughput_vs_benchmark=7 - bench["throughput"],
              stability_vs_benchmark=9 - bench["stability"])
    # 23 Mar: the 12th week, whose window still holds 5 Jan: d = 3 / 12 >= 12 / 52.
    check_row(user.loc[D("2026-03-23")], deployments=0, rework_rate=None, deployment_days_per_week_12w=0.25,
              deployments_per_deployment_day_12w=5 / 3, deployment_frequency_band=3, rework_rate_12w=0.2,
              lead_time_hours_12w=2)
    # 30 Mar: nothing in the 12 weeks; the 26 weeks still hold 5 Jan.
    check_row(user.loc[D("2026-03-30")], deployment_days_per_week_12w=0, deployments_per_deployment_day_12w=None,
              change_failure_rate_12w=None, lead_time_hours_12w=None, rework_rate_12w=None, rework_rate_26w=0.2,
              lead_time_band=None, deployment_frequency_band=1, deployment_frequency_score=0, lead_time_score=None,
              change_fail_score=None, rework_score=None, throughput_score=0, stability_score=None,
              overall_score=0, overall_vs_benchmark=-bench["overall"], stability_vs_benchmark=None)
    # 6 Apr: one deployment day in 12 weeks: band 2; 1 rework deployment of 6 in 26 weeks.
    check_row(user.loc[D("2026-04-06")], deployment_days_per_week_12w=1 / 12, deployments_per_deployment_day_12w=1,
              deployment_frequency_band=2, rework_rate_12w=0, rework_rate_26w=1 / 6)
    x = weekly[weekly.scope == "acme/x"].set_index("week_start")
    check_row(x.loc[D("2026-01-05")], deployment_days_per_week_12w=2, deployments_per_deployment_day_12w=1.5,
              deployment_frequency_band=4, rework_rate_12w=0)
    z = weekly[weekly.scope == "acme/z"].set_index("week_start")
    check_row(z.loc[D("2026-01-05")], deployment_days_per_week_12w=5, deployments_per_deployment_day_12w=2,
              deployment_frequency_band=6, deployment_frequency_score=10)
    # Bands are integers (nullable ones as Python ints and None).
    assert {type(v) for v in weekly["lead_time_band"] if v is not None} == {int}
    assert weekly["deployment_frequency_band"].dtype == "int64"
    users = frames["dim_users"].set_index("login")
    assert users.loc["u", "overall_score"] == pytest.approx(user.iloc[-1]["overall_score"])
    repos = frames["dim_repositories"].set_index("repo_full_name")
    assert repos.loc["acme/z", "overall_score"] == pytest.approx(z.iloc[-1]["overall_score"])


# -- bands and scores -----------------------------------------------------------------------------

@pytest.mark.parametrize("hours, band", [
    (None, None), (0, 6), (0.999, 6), (1, 5), (23.999, 5), (24, 4), (167.999, 4), (168, 3), (719.999, 3),
    (720, 2), (4379.999, 2), (4380, 1), (100_000, 1),
])
def test_hours_bands_at_every_boundary(hours, band):
    assert truth.hours_band(hours) == band


@pytest.mark.parametrize("d, m, band", [
    (5, 2, 6), (7, 10, 6), (5, 1.999, 5), (5, 1, 5), (4.999, 3, 4), (1, 1, 4), (0.999, 2, 3),
    (12 / 52, 1, 3), (12 / 52 - 1e-12, 1, 2), (1 / 12, 1, 2), (0, None, 1),
])
def test_deployment_frequency_band_at_every_boundary(d, m, band):
    assert truth.deployment_frequency_band(d, m) == band


def test_score_arithmetic():
    scores = truth.quick_check_scores(4, 5, 3, 0.125, 0.05)
    assert scores == pytest.approx({
        "lead_time_score": 6, "deployment_frequency_score": 8, "recovery_score": 4, "change_fail_score": 8.75,
        "rework_score": 9.5, "throughput_score": 6, "stability_score": 9.125, "overall_score": 7.25,
    })
    # Null parts drop out of the means; the deployment frequency score is never null.
    scores = truth.quick_check_scores(None, 1, 6, None, 0.2)
    assert scores["throughput_score"] == pytest.approx(5) and scores["stability_score"] == pytest.approx(8)
    assert scores["overall_score"] == pytest.approx(6) and scores["lead_time_score"] is None
    scores = truth.quick_check_scores(None, 2, None, None, None)
    assert scores["throughput_score"] == 2 and scores["stability_score"] is None and scores["overall_score"] == 2
    assert [truth.band_score(b) for b in range(1, 7)] == [0, 2, 4, 6, 8, 10]


# -- benchmarks -----------------------------------------------------------------------------------

BENCHMARK_CSV = """segment_type,segment,segment_label,metric,mean,standard_deviation,scale
all,all,All industries,overall,4.3,1.5,score
all,all,All industries,throughput,6.0,2.0,score
all,all,All industries,instability,2.1,1.2,instability
industry,technology,Technology,overall,5.0,1.5,score
industry,technology,Technology,throughput,6.5,2.0,score
industry,technology,Technology,instability,1.5,1.2,instability
organization_size,1-19,1 to 19 employees,overall,3.0,1.5,score
organization_size,1-19,1 to 19 employees,throughput,4.0,2.0,score
organization_size,1-19,1 to 19 employees,instability,3.0,1.2,instability
"""


def test_the_seed_segments():
    # dbt_project/seeds/dora_benchmarks_2025.csv, keyed by segment (or its label).
    retail = {"overall": 4.5, "throughput": 6.3, "stability": 8.2}
    assert truth.load_benchmark("retail_consumer_ecommerce") == pytest.approx(retail)
    assert truth.load_benchmark("retail_consumer_ecommerce", "1_employee") == pytest.approx(retail)
    assert set(truth.load_benchmark(organization_size="10000_or_more_employees")) == {
        "overall", "throughput", "stability"}


def test_benchmark_segments(tmp_path, monkeypatch):
    # The all-industries means of DORA 2025 (the seed's, or the built-in ones without it).
    assert truth.load_benchmark() == pytest.approx({"overall": 4.3, "throughput": 6.0, "stability": 7.9})
    missing = tmp_path / "missing.csv"
    assert truth.load_benchmark(path=missing) == pytest.approx({"overall": 4.3, "throughput": 6.0, "stability": 7.9})
    with pytest.raises(ValueError, match="no benchmark file"):
        truth.load_benchmark("technology", path=missing)
    path = tmp_path / "dora_benchmarks_2025.csv"
    path.write_text(BENCHMARK_CSV)
    assert truth.load_benchmark(path=path) == pytest.approx({"overall": 4.3, "throughput": 6.0, "stability": 7.9})
    tech = {"overall": 5.0, "throughput": 6.5, "stability": 8.5}
    assert truth.load_benchmark("technology", path=path) == pytest.approx(tech)
    assert truth.load_benchmark("Technology", "1-19", path=path) == pytest.approx(tech)  # the industry wins
    assert truth.load_benchmark(None, "1-19", path=path) == pytest.approx(
        {"overall": 3.0, "throughput": 4.0, "stability": 7.0})
    with pytest.raises(ValueError, match="no benchmark"):
        truth.load_benchmark("farming", path=path)
    monkeypatch.setattr(truth, "BENCHMARKS_CSV", path)
    plain = truth.compute(window_org())["fct_dora_weekly"]
    chosen = truth.compute(window_org(), benchmark_industry="technology",
                           benchmark_organization_size="1-19")["fct_dora_weekly"]
    assert (plain["overall_vs_benchmark"] - chosen["overall_vs_benchmark"]).to_list() == pytest.approx(
        [0.7] * len(plain))
    assert (plain["stability_vs_benchmark"] - chosen["stability_vs_benchmark"]).dropna().to_list() == pytest.approx(
        [0.6] * plain["stability_vs_benchmark"].notna().sum())
