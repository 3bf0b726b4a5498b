"""The synthetic organisation: deterministic, realistic, and able to move forward in time."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import time

import pytest

from ghmetrics_dagster.sandbox import generator, model, truth
from ghmetrics_dagster.sandbox.model import Organization

ZERO = dt.timedelta(0)


def plain(value):
    # dataclasses.asdict deep-copies everything: far slower for a whole organisation.
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def serialise(org: Organization) -> str:
    return json.dumps(plain(org), sort_keys=True, ensure_ascii=False)


@pytest.fixture(scope="module")
def org() -> Organization:
    return generator.generate(7)


def all_prs(org):
    return [pr for repo in org.repositories for pr in repo.pull_requests]


def every_timestamp(org):
    for repo in org.repositories:
        yield from (repo.created_at, repo.updated_at, repo.pushed_at)
        for pr in repo.pull_requests:
            yield from (m for m in (pr.created_at, pr.updated_at, pr.ready_for_review_at,
                                    pr.merged_at, pr.closed_at) if m)
            for c in pr.commits:
                yield from (c.authored_at, c.committed_at)
            for r in pr.reviews:
                yield from (r.submitted_at, r.created_at)
            yield from (c.created_at for c in pr.comments)
        for d in repo.deployments:
            yield from (d.created_at, d.updated_at)
            yield from (s.created_at for s in d.statuses)
        for r in repo.releases:
            yield from (m for m in (r.created_at, r.published_at) if m)
        for r in repo.workflow_runs:
            yield from (r.created_at, r.run_started_at, r.updated_at)
        for i in repo.issues:
            yield from (m for m in (i.created_at, i.updated_at, i.closed_at) if m)


def test_same_seed_same_organisation_and_different_seed_differs(org):
    again = generator.generate(7)
    assert serialise(again) == serialise(org)
    assert serialise(generator.generate(8)) != serialise(org)
    # The clock is a fixed anchor, never the machine's.
    assert org.now == generator.ANCHOR and org.now.weekday() == 0 and org.seed == 7


def test_same_seed_same_organisation_in_other_processes(org):
    # String-seeded generators only: nothing may depend on the per-process hash seed.
    script = (
        "import hashlib, sys\n"
        f"sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
        "from test_sandbox_generator import serialise\n"
        "from ghmetrics_dagster.sandbox import generator\n"
        "print(hashlib.sha256(serialise(generator.generate(7)).encode()).hexdigest())\n"
    )
    digests = {
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": hash_seed}).stdout.strip()
        for hash_seed in ("1", "2")
    }
    assert digests == {hashlib.sha256(serialise(org).encode()).hexdigest()}


def test_shape_ids_and_timestamps(org):
    assert len(org.repositories) == 6
    prs = all_prs(org)
    assert 6 * 130 <= len(prs) <= 6 * 170
    ids = [u.database_id for u in org.users.values()] + [r.database_id for r in org.repositories]
    node_ids = [r.node_id for r in org.repositories]
    for repo in org.repositories:
        numbers = [p.number for p in repo.pull_requests] + [i.number for i in repo.issues]
        # Issues and pull requests share one gap-free number sequence per repository.
        assert sorted(numbers) == list(range(1, len(numbers) + 1))
        items = sorted(repo.pull_requests + repo.issues, key=lambda x: x.number)
        assert [x.created_at for x in items] == sorted(x.created_at for x in items)
        for pr in repo.pull_requests:
            ids.append(pr.database_id)
            node_ids.append(pr.node_id)
            assert pr.node_id.startswith("PR_")
            ids += [r.database_id for r in pr.reviews] + [c.database_id for c in pr.comments]
            node_ids += [r.node_id for r in pr.reviews]
            assert all(re.fullmatch(r"[0-9a-f]{40}", c.sha) for c in pr.commits)
            events = [pr.created_at] + [c.committed_at for c in pr.commits] + \
                [r.submitted_at for r in pr.reviews] + [c.created_at for c in pr.comments] + \
                [m for m in (pr.ready_for_review_at, pr.merged_at, pr.closed_at) if m]
            assert pr.updated_at == max(events)
            if pr.merged_at:
                assert pr.closed_at == pr.merged_at
        for dep in repo.deployments:
            ids.append(dep.database_id)
            node_ids.append(dep.node_id)
            ids += [s.database_id for s in dep.statuses]
            times = [s.created_at for s in dep.statuses]
            assert times == sorted(times) and dep.updated_at == max(times)
        ids += [r.database_id for r in repo.releases] + [r.database_id for r in repo.workflow_runs]
        ids += [i.database_id for i in repo.issues]
        node_ids += [i.node_id for i in repo.issues] + [r.node_id for r in repo.releases]
    assert len(ids) == len(set(ids))
    assert len(node_ids) == len(set(node_ids))
    stamps = list(every_timestamp(org))
    assert all(t.tzinfo is not None and t.utcoffset() == ZERO and t.microsecond == 0 for t in stamps)
    assert max(stamps) <= org.now


def test_required_features_present(org):
    prs = all_prs(org)
    assert max(len(p.reviews) for p in prs) > 25
    assert max(len(p.commits) for p in prs) > 100
    bots = [u for u in org.users.values() if u.is_bot]
    assert bots and all(u.login.endswith("[bot]") for u in bots)
    assert any(p.author_login and p.author_login.endswith("[bot]") and p.merged_at for p in prs)
    assert any(p.author_login is None for p in prs)
    assert any(r.author_login is None for p in prs for r in p.reviews)
    assert any(p.ready_for_review_at and not p.is_draft for p in prs)
    assert any(p.is_draft and p.state == "OPEN" for p in prs)
    assert any(p.state == "CLOSED" for p in prs) and any(p.state == "OPEN" for p in prs)
    assert any(r.author_login == p.author_login for p in prs for r in p.reviews)  # self-reviews
    assert any(c.author_login == p.author_login for p in prs for c in p.comments)  # author comments
    by_sha = {c.sha: p for p in prs for c in p.commits}
    reverts = [p for p in prs if p.title.startswith('Revert "') and p.merged_at]
    assert reverts
    for p in reverts:
        match = re.fullmatch(r"This reverts commit ([0-9a-f]{40})\.", p.body)
        if match:
            target = by_sha[match.group(1)]
            assert p.title == f'Revert "{target.title}"' and target.commits[-1].sha == match.group(1)
            assert target.merged_at < p.merged_at
    assert any("This reverts commit" not in p.body for p in reverts)  # resolvable by title only
    labels = {label for repo in org.repositories for i in repo.issues for label in i.labels}
    assert {"incident", "sev2", "bug", "incident-review"} <= labels
    assert any(re.search(r"[^\x00-\x7f]", p.title) for p in prs)
    assert {"github_deployments", "workflow_runs", "releases", "merges"} == {r.deployment_style for r in org.repositories}
    assert all(p.base_ref == p.base_ref.strip() for p in prs)

    deployments = [d for r in org.repositories for d in r.deployments]
    finals = [[s.state for s in d.statuses if s.state != "INACTIVE"][-1] for d in deployments]
    assert {"FAILURE", "ERROR", "SUCCESS"} <= set(finals) and set(finals) & {"PENDING", "QUEUED"}
    assert any(d.environment == "staging" for d in deployments)
    assert any(d.statuses[-1].state == "INACTIVE" and any(s.state == "SUCCESS" for s in d.statuses)
               for d in deployments)
    runs = [w for r in org.repositories for w in r.workflow_runs]
    assert {"CI", "Deploy"} <= {w.name for w in runs}
    assert any(w.name == "Deploy" and w.head_branch != "main" for w in runs)
    assert {"success", "failure", "cancelled"} <= {w.conclusion for w in runs}
    releases = [rel for r in org.repositories for rel in r.releases]
    assert any(rel.is_draft and rel.published_at is None for rel in releases)
    assert any(rel.is_prerelease for rel in releases)

    # Overlapping memberships of human users only.
    assert set(org.memberships) == {u.login for u in org.users.values() if not u.is_bot}
    sets = [set(v) for v in org.memberships.values()]
    assert all(sets) and any(a & b and a != b for a in sets for b in sets)


def test_auto_deployment_source_equals_each_repository_style(org):
    frames = truth.compute(org)
    repos = frames["dim_repositories"].set_index("repo_full_name")
    for repo in org.repositories:
        assert repos.loc[repo.full_name, "deployment_source"] == repo.deployment_style


def test_quiet_weekends(org):
    created = [p.created_at for p in all_prs(org)]
    merged = [p.merged_at for p in all_prs(org) if p.merged_at]
    reviews = [r.submitted_at for p in all_prs(org) for r in p.reviews]
    for moments in (created, merged, reviews):
        weekend = sum(1 for m in moments if m.weekday() >= 5) / len(moments)
        assert weekend < 0.12  # a uniform spread would put 2/7 = 29% there


def test_anomalies_move_exactly_one_metric_week_by_their_factor():
    seed = 11
    with_anomalies = generator.generate(seed)
    without = generator.generate(seed, inject_anomalies=False)
    assert not without.anomalies
    anomalies = with_anomalies.anomalies
    weeks = 26
    # About one per repository per ten weeks, each in a distinct repository-week.
    assert len(anomalies) >= len(with_anomalies.repositories) * 2
    assert len({(a.scope, a.week_start) for a in anomalies}) == len(anomalies)
    a_rows = truth.compute(with_anomalies)["ml_weekly_features"].set_index(["scope_type", "scope", "week_start"])
    b_rows = truth.compute(without)["ml_weekly_features"].set_index(["scope_type", "scope", "week_start"])
    for anomaly in anomalies:
        assert anomaly.scope_type == "repository" and anomaly.metric in a_rows.columns
        assert 2.5 <= anomaly.factor <= 5.0
        key = ("repository", anomaly.scope, anomaly.week_start)
        moved = a_rows.loc[key, anomaly.metric] / b_rows.loc[key, anomaly.metric]
        assert moved == pytest.approx(anomaly.factor, rel=1e-3)
        assert anomaly.week_start >= (generator.ANCHOR - weeks * generator.WEEK).date()
    # Normal weeks vary far less than an anomaly moves a metric.
    for metric in ("median_review_hours", "median_pickup_hours", "median_coding_hours", "median_pr_size"):
        repo_rows = b_rows.loc["repository"]
        for scope, group in repo_rows.groupby(level=0):
            values = group[metric].dropna()
            ratio = values / values.median()
            assert ratio.max() < 2.5 and ratio.min() > 1 / 2.5, (metric, scope)


def test_advance_adds_events_and_only_moves_forward():
    org = generator.generate(3, repos=4, prs_per_repo=60, weeks=8)
    before = serialise(org)
    old_now = org.now
    counts = lambda o: (  # noqa: E731
        len(all_prs(o)),
        sum(len(p.reviews) for p in all_prs(o)),
        sum(len(r.deployments) + len(r.workflow_runs) + len(r.releases) for r in o.repositories),
        sum(len(r.issues) for r in o.repositories),
    )
    n_before = counts(org)
    old_prs = {p.node_id: (p.created_at, p.merged_at, p.updated_at, p.state) for p in all_prs(org)}
    old_ids = {d.node_id for r in org.repositories for d in r.deployments}
    assert generator.advance(org, days=14) is org
    assert org.now == old_now + dt.timedelta(days=14)
    n_after = counts(org)
    assert all(a > b for a, b in zip(n_after, n_before, strict=False)), (n_before, n_after)
    changed_existing = 0
    for pr in all_prs(org):
        if pr.node_id in old_prs:
            created, merged, updated, state = old_prs[pr.node_id]
            assert pr.created_at == created and pr.updated_at >= updated
            if merged is not None:
                assert pr.merged_at == merged
            if pr.updated_at != updated:
                changed_existing += 1
                assert old_now < pr.updated_at <= org.now
        else:
            assert old_now < pr.created_at <= org.now
            assert all(old_now < r.submitted_at <= org.now for r in pr.reviews)
    assert changed_existing > 0  # late reviews, merges or closes of older pull requests
    assert any(p.node_id in old_prs and old_prs[p.node_id][3] == "OPEN" and p.state == "MERGED"
               for p in all_prs(org))
    for repo in org.repositories:
        for dep in repo.deployments:
            if dep.node_id not in old_ids:
                assert all(old_now < s.created_at <= org.now for s in dep.statuses)
    stamps = list(every_timestamp(org))
    assert max(stamps) <= org.now
    # Deterministic: the same organisation advanced the same way is the same.
    again = generator.generate(3, repos=4, prs_per_repo=60, weeks=8)
    assert serialise(again) == before
    assert serialise(generator.advance(again, days=14)) == serialise(org)
    # Ground truth follows: the weekly rows now reach into the new weeks.
    weekly = truth.compute(org)["fct_dora_weekly"]
    assert max(weekly["week_start"]) >= (old_now + dt.timedelta(days=7)).date()


def test_touch_pull_requests_changes_that_fraction():
    org = generator.generate(5, repos=4, prs_per_repo=50, weeks=6)
    total = len(all_prs(org))
    before = {p.node_id: (p.title, len(p.reviews), p.updated_at) for p in all_prs(org)}
    touched = generator.touch_pull_requests(org, 0.1, seed=1)
    assert len(touched) == round(0.1 * total)
    touched_ids = {p.node_id for p in touched}
    for pr in all_prs(org):
        title, reviews, updated = before[pr.node_id]
        if pr.node_id in touched_ids:
            assert pr.updated_at == org.now
            assert pr.title != title or len(pr.reviews) == reviews + 1
        else:
            assert (pr.title, len(pr.reviews), pr.updated_at) == (title, reviews, updated)


def test_bad_arguments_fail_with_one_clear_line():
    with pytest.raises(ValueError, match="repos >= 1"):
        generator.generate(1, repos=0)
    with pytest.raises(ValueError, match="unknown deployment style"):
        generator.generate(1, styles=["ftp"])
    with pytest.raises(ValueError, match="days >= 1"):
        generator.advance(generator.generate(1, repos=1, prs_per_repo=10, weeks=2), days=0)


def test_styles_argument_and_performance():
    started = time.perf_counter()
    org = generator.generate(2, repos=20, prs_per_repo=100)
    generated = time.perf_counter() - started
    assert generated < 5
    started = time.perf_counter()
    frames = truth.compute(org)
    assert time.perf_counter() - started < 15
    assert len(frames["fct_pull_requests"]) == sum(len(r.pull_requests) for r in org.repositories)
    only = generator.generate(2, repos=3, prs_per_repo=20, weeks=4, styles=["releases"])
    assert {r.deployment_style for r in only.repositories} == {"releases"}


HOTFIX_LABEL = re.compile(r"^hot-?fix$", re.IGNORECASE)  # the default hotfix regexes (docs/dora.md)
HOTFIX_BRANCH = re.compile(r"^hot-?fix[/_-]", re.IGNORECASE)
INCIDENT_LABEL = re.compile(r"^(incident|outage|sev[0-9].*)$", re.IGNORECASE)


def check_labels(org):
    for pr in all_prs(org):
        times = [e.created_at for e in pr.label_events]
        assert times == sorted(times) and all(pr.created_at <= t <= pr.updated_at for t in times)
        assert all(e.kind in (model.LABELED, model.UNLABELED) for e in pr.label_events)
        assert pr.labels == model.replay_labels(pr.label_events)


@pytest.mark.parametrize("seed, size", [(7, {}), (1, dict(repos=4, prs_per_repo=50, weeks=12, users=6)),
                                        (12, dict(repos=5, prs_per_repo=60, weeks=12))])
def test_hotfixes_and_pull_requests_that_close_incidents(seed, size):
    org = generator.generate(seed, **size)
    check_labels(org)
    merged = [p for p in all_prs(org) if p.merged_at]
    by_label = [p for p in merged if any(HOTFIX_LABEL.match(name) for name in p.labels)]
    by_branch = [p for p in merged if HOTFIX_BRANCH.match(p.head_ref)]
    hotfixes = {p.node_id for p in by_label + by_branch}
    assert by_label and by_branch and 0.02 <= len(hotfixes) / len(merged) <= 0.08
    assert {name for p in by_label for name in p.labels if HOTFIX_LABEL.match(name)} - {"hotfix"}  # other cases
    events = lambda p: [(e.kind, e.name) for e in p.label_events]  # noqa: E731
    # A hotfix label removed again (no longer a hotfix), and one removed and added back.
    assert any(p.node_id not in hotfixes and any(HOTFIX_LABEL.match(n) and k == model.UNLABELED for k, n in events(p))
               for p in merged)
    assert any(any(k == model.UNLABELED and HOTFIX_LABEL.match(n) for k, n in events(p)) for p in by_label)
    assert any(HOTFIX_BRANCH.match(p.head_ref) is None and "hotfix" in p.head_ref.lower() for p in merged)  # near miss
    assert {"feature", "chore"} & {name for p in all_prs(org) for name in p.labels}
    closing_reverts = 0
    for repo in org.repositories:
        prs = {p.node_id: p for p in repo.pull_requests}
        incidents = [i for i in repo.issues if any(INCIDENT_LABEL.match(name) for name in i.labels)]
        closed = [i for i in incidents if i.closed_by_pull_request]
        assert closed, repo.full_name
        assert any(i.closed_at and not i.closed_by_pull_request for i in incidents)  # closed by hand
        for issue in closed:
            pr = prs[issue.closed_by_pull_request]
            assert pr.merged_at is not None and issue.closed_at == pr.merged_at == issue.updated_at
            assert re.search(rf"(^|\n)Fixes #{issue.number}$", pr.body), pr.body
            assert issue.created_at < pr.merged_at and pr.base_ref == repo.default_branch
            match = re.search(r"This reverts commit ([0-9a-f]{40})", pr.body)
            if match:
                reverted = next(p for p in repo.pull_requests if any(c.sha == match.group(1) for c in p.commits))
                assert pr.title == f'Revert "{reverted.title}"' and reverted.merged_at < issue.created_at
                closing_reverts += 1
        assert not [i for i in repo.issues if i.closed_by_pull_request and i not in closed]
    assert closing_reverts >= 1


def test_failed_deployments_recover_in_every_style():
    for seed in (3, 7):
        org = generator.generate(seed, repos=8, prs_per_repo=40, weeks=10)
        deployments = truth.compute(org)["fct_deployments"]
        failed = deployments[deployments["is_failed"]]
        assert len(failed) and set(failed["source"]) == {"github_deployments", "workflow_runs"}
        for _, row in failed.iterrows():
            later = deployments[(deployments["repo_full_name"] == row["repo_full_name"])
                                & ~deployments["is_failed"] & (deployments["deployed_at"] > row["deployed_at"])]
            assert len(later), (row["repo_full_name"], row["deployed_at"])


def test_advance_keeps_labels_the_replay_of_their_events():
    org = generator.generate(4, repos=4, prs_per_repo=40, weeks=6)
    old = {p.node_id for p in all_prs(org)}
    generator.advance(org, days=21)
    check_labels(org)
    new = [p for p in all_prs(org) if p.node_id not in old]
    assert any(p.labels for p in new)


def test_ai_assistance_follows_an_adoption_curve_and_changes_delivery(org):
    """docs/ai.md: few AI-assisted pull requests in the first weeks, a majority in the last;
    every kind of evidence and of near miss; AI-assisted ones coded faster and larger."""
    first = org.now - 26 * generator.WEEK
    merged = [pr for pr in all_prs(org) if pr.merged_at and not truth.is_bot(org, pr.author_login)]

    def share(prs):
        return sum(1 for pr in prs if truth.ai_evidence(pr)) / len(prs)

    early = [pr for pr in merged if pr.merged_at < first + 6 * generator.WEEK]
    late = [pr for pr in merged if pr.merged_at >= org.now - 6 * generator.WEEK]
    assert share(early) < 0.12 < 0.6 < share(late), (share(early), share(late))
    evidence = [truth.ai_evidence(pr) or "" for pr in all_prs(org)]
    for prefix in ("agent author copilot-swe-agent[bot]", "agent author devin-ai-integration[bot]",
                   "co-author Copilot <", "co-author Claude <", "co-author Cursor Agent <", "trailer ", "label "):
        assert any(e.startswith(prefix) for e in evidence), prefix
    messages = [c.message for pr in all_prs(org) for c in pr.commits]
    for near_miss in [f"Co-authored-by: {name} <{email}>" for name, email in generator.HUMAN_CO_AUTHORS] \
            + generator.NOT_AI_TRAILERS:
        assert any(near_miss in m for m in messages), near_miss
    ai = [pr for pr in merged if truth.ai_evidence(pr)]
    other = [pr for pr in merged if not truth.ai_evidence(pr)]

    def median(prs, value):
        return sorted(value(pr) for pr in prs)[len(prs) // 2]

    def coding(pr):
        return pr.created_at - min(c.authored_at for c in pr.commits)

    assert median(ai, coding) < median(other, coding)
    assert median(ai, lambda pr: pr.additions + pr.deletions) > median(other, lambda pr: pr.additions + pr.deletions)
