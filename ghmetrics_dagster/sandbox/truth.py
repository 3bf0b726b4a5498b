"""Ground truth: every mart of docs/contracts.md computed in plain Python from the event model.

This is deliberately independent of the API server, the ingestion client and dbt: it reads the
generator's objects and applies the metric rules of docs/contracts.md literally, so the marts
dbt builds from ingested API responses can be compared with it value by value.

Choices where the contract leaves room (keep dbt in step):
- `author_login` of a deleted user is `ghost`; `environment` is null for deployments that are
  not GitHub Deployments; `review_count` counts every review of the pull request.
- `merges` deployments include merged bot pull requests (the contract excludes bots from PR
  metrics only).
- A revert's `This reverts commit <sha>` resolves among merged pull requests only; the title
  fallback picks the latest merged PR with that title merged at or before the revert.
- Pooled window items (lead times, deployments, incidents, merged PRs) of the 12-week grades
  are those whose week lies in the 12 weeks ending with the row's week.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ghmetrics_dagster import contracts

from .model import GHOST, Organization, PullRequest, Repository

SOURCES = ("github_deployments", "workflow_runs", "releases", "merges")
DEFAULT_SETTINGS = {
    "deployment_source": "auto",
    "production_environment_regex": r"(?i)^prod(uction)?$",
    "deploy_workflow_regex": r"(?i)deploy",
    "incident_label_regex": r"(?i)^(incident|outage|sev[0-9].*)$",
}
ATTRIBUTION_WINDOW = dt.timedelta(days=14)
GRADE_WEEKS = 12
POINTS = {"elite": 100.0, "high": 75.0, "medium": 50.0, "low": 25.0}
SCORE_WEIGHTS = {
    "deployment_frequency": 0.25,
    "lead_time": 0.25,
    "change_failure_rate": 0.2,
    "time_to_restore": 0.15,
    "review_coverage": 0.15,
}
REVERTS_COMMIT = re.compile(r"This reverts commit ([0-9a-fA-F]{7,40})")
REVERT_TITLE = re.compile(r'^Revert "(.*)"', re.DOTALL)

WEEKLY_NUMERIC = list(contracts.WEEKLY_METRICS)
GRADE_COLUMNS = list(contracts.GRADE_COLUMNS)
MART_COLUMNS: dict[str, list[str]] = {
    "fct_pull_requests": [
        "pull_request_id", "repo_full_name", "number", "title", "author_login", "is_bot", "is_draft",
        "state", "created_at", "ready_for_review_at", "first_commit_at", "first_review_at",
        "merged_at", "closed_at", "shipped_at", "shipping_deployment_id", "coding_hours",
        "pickup_hours", "review_hours", "deploy_hours", "lead_time_hours", "additions",
        "deletions", "pr_size", "review_count", "is_revert",
    ],
    "fct_deployments": [
        "deployment_id", "repo_full_name", "source", "environment", "deployed_at", "week_start",
        "is_failed", "incident_count", "fails_change",
    ],
    "fct_incidents": [
        "incident_id", "repo_full_name", "kind", "started_at", "restored_at", "restore_hours",
        "week_start", "deployment_id", "reverted_pull_request_id",
    ],
    "fct_dora_weekly": ["scope_type", "scope", "week_start"] + WEEKLY_NUMERIC + GRADE_COLUMNS
    + ["review_coverage_12w", "performance_score"],
    "dim_repositories": [
        "repo_full_name", "repository_id", "default_branch", "is_archived", "deployment_source",
        "first_week", "last_week",
    ] + GRADE_COLUMNS + ["performance_score"],
    "dim_users": ["login", "display_name", "repository_count", "first_week", "last_week"]
    + GRADE_COLUMNS + ["performance_score"],
    "ml_weekly_features": ["scope_type", "scope", "week_start", *contracts.FEATURE_COLUMNS],
    "anomalies": ["scope_type", "scope", "week_start", "metric", "factor"],
}
TIMESTAMP_COLUMNS = {
    "fct_pull_requests": ["created_at", "ready_for_review_at", "first_commit_at", "first_review_at",
                          "merged_at", "closed_at", "shipped_at"],
    "fct_deployments": ["deployed_at"],
    "fct_incidents": ["started_at", "restored_at"],
}


# -- small helpers --------------------------------------------------------------------------

def hours(later: dt.datetime | None, earlier: dt.datetime | None) -> float | None:
    """Hours from `earlier` to `later`, negative spans clamped to 0; None when either is None."""
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds() / 3600.0)


def week_start(moment: dt.datetime) -> dt.date:
    day = moment.astimezone(dt.timezone.utc).date()
    return day - dt.timedelta(days=day.weekday())


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """Postgres percentile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def _median(values: list[float]) -> float | None:
    return percentile_cont(values, 0.5)


def _search(pattern: str):
    # Postgres `~` finds the pattern anywhere, like re.search; (?i) works in Python as is.
    return re.compile(pattern).search


def is_bot(org: Organization, login: str | None) -> bool:
    if login is None:
        return False  # GitHub's deleted user is not a bot
    user = org.users.get(login)
    return login.endswith("[bot]") or bool(user and user.is_bot)


def is_revert(pr: PullRequest) -> bool:
    return pr.title.startswith("Revert") or REVERTS_COMMIT.search(pr.body or "") is not None


def first_review_at(pr: PullRequest) -> dt.datetime | None:
    """Earliest non-pending review by someone other than the author (a null author counts)."""
    times = [
        r.submitted_at for r in pr.reviews
        if r.state != "PENDING" and r.submitted_at is not None
        and (r.author_login is None or r.author_login != pr.author_login)
    ]
    return min(times) if times else None


# -- per-repository facts ---------------------------------------------------------------------

@dataclass
class _Deployment:
    id: str
    repo: str
    source: str
    environment: str | None
    deployed_at: dt.datetime
    is_failed: bool
    incident_count: int = 0

    @property
    def fails_change(self) -> bool:
        return self.is_failed or self.incident_count > 0


@dataclass
class _Incident:
    id: str
    repo: str
    kind: str
    started_at: dt.datetime
    restored_at: dt.datetime | None
    reverted_pull_request_id: str | None
    deployment_id: str | None = None

    @property
    def restore_hours(self) -> float | None:
        return hours(self.restored_at, self.started_at)


@dataclass
class _RepoFacts:
    repo: Repository
    source: str | None
    deployments: list[_Deployment]
    prs: list[dict]
    incidents: list[_Incident]
    first_activity: dt.datetime | None
    last_activity: dt.datetime | None = None


def _settings_for(repo: Repository, settings: dict[str, dict] | None) -> dict[str, str]:
    merged = dict(DEFAULT_SETTINGS)
    for name, values in (settings or {}).items():
        if name.lower() == repo.full_name.lower():
            merged.update({k: v for k, v in values.items() if v is not None and k in DEFAULT_SETTINGS})
    source = merged["deployment_source"]
    if source != "auto" and source not in SOURCES:
        raise ValueError(f"{repo.full_name}: unknown deployment_source {source!r}; "
                         f"use auto or one of {', '.join(SOURCES)}")
    return merged


def deployments_from(repo: Repository, source: str, cfg: dict[str, str]) -> list[_Deployment]:
    """The repository's deployments according to one source (contracts.md)."""
    out: list[_Deployment] = []
    name = repo.full_name
    if source == "github_deployments":
        production = _search(cfg["production_environment_regex"])
        for dep in repo.deployments:
            if not production(dep.environment):
                continue
            statuses = sorted((s for s in dep.statuses if s.state != "INACTIVE"), key=lambda s: s.created_at)
            if not statuses:
                continue
            successes = [s for s in statuses if s.state == "SUCCESS"]
            failed = statuses[-1].state in ("FAILURE", "ERROR")
            if successes:
                deployed_at = successes[0].created_at
            elif failed:
                deployed_at = statuses[-1].created_at
            else:
                continue  # only pending/queued/in progress: not a deployment yet
            out.append(_Deployment(dep.node_id, name, source, dep.environment, deployed_at, failed))
    elif source == "workflow_runs":
        deploy = _search(cfg["deploy_workflow_regex"])
        for run in repo.workflow_runs:
            if run.head_branch != repo.default_branch or not deploy(run.name) or run.status != "completed":
                continue
            if run.conclusion == "success":
                out.append(_Deployment(str(run.database_id), name, source, None, run.updated_at, False))
            elif run.conclusion == "failure":
                out.append(_Deployment(str(run.database_id), name, source, None, run.updated_at, True))
    elif source == "releases":
        for rel in repo.releases:
            if rel.published_at is not None and not rel.is_draft and not rel.is_prerelease:
                out.append(_Deployment(rel.node_id, name, source, None, rel.published_at, False))
    elif source == "merges":
        for pr in repo.pull_requests:
            if pr.merged_at is not None and pr.base_ref == repo.default_branch:
                out.append(_Deployment(pr.node_id, name, source, None, pr.merged_at, False))
    else:
        raise ValueError(f"unknown deployment source {source!r}")
    out.sort(key=lambda d: (d.deployed_at, d.id))
    return out


def effective_deployments(repo: Repository, cfg: dict[str, str]) -> tuple[str | None, list[_Deployment]]:
    source = cfg["deployment_source"]
    if source != "auto":
        return source, deployments_from(repo, source, cfg)
    for candidate in SOURCES:
        found = deployments_from(repo, candidate, cfg)
        if found:
            return candidate, found
    return None, []


def _reverted_pull_request(repo: Repository, revert: PullRequest) -> PullRequest | None:
    merged = [p for p in repo.pull_requests if p.merged_at is not None and p is not revert]
    match = REVERTS_COMMIT.search(revert.body or "")
    if match:
        prefix = match.group(1).lower()
        holders = [p for p in merged if any(c.sha.lower().startswith(prefix) for c in p.commits)]
        if holders:
            return min(holders, key=lambda p: (p.merged_at, p.number))
    title = REVERT_TITLE.match(revert.title)
    if title:
        same = [p for p in merged if p.title == title.group(1)]
        before = [p for p in same if p.merged_at <= revert.merged_at]
        if before or same:
            return max(before or same, key=lambda p: (p.merged_at, p.number))
    return None


def _repo_facts(org: Organization, repo: Repository, cfg: dict[str, str]) -> _RepoFacts:
    source, deployments = effective_deployments(repo, cfg)
    successful = [d for d in deployments if not d.is_failed]
    success_times = [d.deployed_at for d in successful]
    incident_label = _search(cfg["incident_label_regex"])

    prs: list[dict] = []
    for pr in repo.pull_requests:
        bot = is_bot(org, pr.author_login)
        first_commit = min((c.authored_at for c in pr.commits), default=None)
        first_review = first_review_at(pr)
        shipping = None
        if pr.merged_at is not None:
            i = bisect.bisect_left(success_times, pr.merged_at)
            shipping = successful[i] if i < len(successful) else None
        shipped_at = shipping.deployed_at if shipping else None
        cycle = pr.merged_at is not None and not bot
        prs.append({
            "pull_request_id": pr.node_id,
            "repo_full_name": repo.full_name,
            "number": pr.number,
            "title": pr.title,
            "author_login": pr.author_login if pr.author_login is not None else GHOST,
            "is_bot": bot,
            "is_draft": pr.is_draft,
            "state": pr.state,
            "created_at": pr.created_at,
            "ready_for_review_at": pr.ready_for_review_at,
            "first_commit_at": first_commit,
            "first_review_at": first_review,
            "merged_at": pr.merged_at,
            "closed_at": pr.closed_at,
            "shipped_at": shipped_at,
            "shipping_deployment_id": shipping.id if shipping else None,
            "coding_hours": hours(pr.created_at, first_commit) if cycle else None,
            "pickup_hours": hours(first_review, pr.ready_for_review_at or pr.created_at) if cycle else None,
            "review_hours": hours(pr.merged_at, first_review) if cycle else None,
            "deploy_hours": hours(shipped_at, pr.merged_at) if cycle else None,
            "lead_time_hours": hours(shipped_at, first_commit) if cycle else None,
            "additions": pr.additions,
            "deletions": pr.deletions,
            "pr_size": pr.additions + pr.deletions,
            "review_count": len(pr.reviews),
            "is_revert": is_revert(pr),
        })

    incidents: list[_Incident] = []
    for issue in repo.issues:
        if any(incident_label(label) for label in issue.labels):
            incidents.append(_Incident(issue.node_id, repo.full_name, "issue", issue.created_at,
                                       issue.closed_at, None))
    for pr in repo.pull_requests:
        if pr.merged_at is None or not is_revert(pr):
            continue
        target = _reverted_pull_request(repo, pr)
        if target is None:
            continue  # an unresolvable revert is not an incident
        incidents.append(_Incident(pr.node_id, repo.full_name, "revert", target.merged_at,
                                   pr.merged_at, target.node_id))
    for incident in incidents:
        candidates = [d for d in successful
                      if incident.started_at - ATTRIBUTION_WINDOW < d.deployed_at <= incident.started_at]
        if candidates:
            chosen = max(candidates, key=lambda d: (d.deployed_at, d.id))
            incident.deployment_id = chosen.id
            chosen.incident_count += 1
    incidents.sort(key=lambda i: (i.started_at, i.id))

    moments = [p["created_at"] for p in prs] + [d.deployed_at for d in deployments]
    last = moments + [p["merged_at"] for p in prs if p["merged_at"]] + [p["closed_at"] for p in prs if p["closed_at"]]
    last += [i.started_at for i in incidents]
    return _RepoFacts(repo, source, deployments, prs, incidents,
                      first_activity=min(moments) if moments else None,
                      last_activity=max(last) if last else None)


# -- weekly metrics -----------------------------------------------------------------------------

def _grade_deployment_frequency(weekly_days: list[int]) -> str:
    median = percentile_cont([float(d) for d in weekly_days], 0.5) or 0.0
    if median >= 5:
        return "elite"
    if median >= 1:
        return "high"
    if weekly_days and sum(weekly_days) / len(weekly_days) >= 12 / 52:
        return "medium"
    return "low"


def _grade_lead_time(value: float | None) -> str | None:
    if value is None:
        return None
    return "elite" if value < 24 else "high" if value < 168 else "medium" if value < 720 else "low"


def _grade_change_failure_rate(value: float | None) -> str | None:
    if value is None:
        return None
    return "elite" if value <= 0.05 else "high" if value <= 0.10 else "medium" if value <= 0.15 else "low"


def _grade_time_to_restore(value: float | None) -> str | None:
    if value is None:
        return None
    return "elite" if value < 1 else "high" if value < 24 else "medium" if value < 168 else "low"


def performance_score(grades: dict[str, str | None], review_coverage: float | None) -> float | None:
    parts = []
    for name in ("deployment_frequency", "lead_time", "change_failure_rate", "time_to_restore"):
        grade = grades.get(name)
        if grade is not None:
            parts.append((POINTS[grade], SCORE_WEIGHTS[name]))
    if review_coverage is not None:
        parts.append((review_coverage * 100.0, SCORE_WEIGHTS["review_coverage"]))
    if not parts:
        return None
    return sum(p * w for p, w in parts) / sum(w for _, w in parts)


def _weekly_rows(scope_type: str, scope: str, facts: list[_RepoFacts], last_week: dt.date) -> list[dict]:
    firsts = [f.first_activity for f in facts if f.first_activity is not None]
    if not firsts:
        return []
    first_week = week_start(min(firsts))
    deployments = [d for f in facts for d in f.deployments]
    merged = [p for f in facts for p in f.prs if p["merged_at"] is not None and not p["is_bot"]]
    incidents = [i for f in facts for i in f.incidents]

    def by_week(items, when):
        grouped: dict[dt.date, list] = {}
        for item in items:
            grouped.setdefault(week_start(when(item)), []).append(item)
        return grouped

    deps_w = by_week(deployments, lambda d: d.deployed_at)
    merged_w = by_week(merged, lambda p: p["merged_at"])
    shipped_w = by_week([p for p in merged if p["shipped_at"] is not None and p["lead_time_hours"] is not None],
                        lambda p: p["shipped_at"])
    incidents_w = by_week(incidents, lambda i: i.started_at)

    rows: list[dict] = []
    week = first_week
    weeks: list[dt.date] = []
    while week <= last_week:
        weeks.append(week)
        week += dt.timedelta(days=7)
    days_by_week: dict[dt.date, int] = {}
    for w in weeks:
        deps = deps_w.get(w, [])
        prs = merged_w.get(w, [])
        shipped = shipped_w.get(w, [])
        incs = incidents_w.get(w, [])
        successful_days = {d.deployed_at.astimezone(dt.timezone.utc).date() for d in deps if not d.is_failed}
        days_by_week[w] = len(successful_days)
        failed = sum(1 for d in deps if d.fails_change)
        reviewed = sum(1 for p in prs if p["first_review_at"] is not None)
        sizes = [float(p["pr_size"]) for p in prs]
        row = {
            "scope_type": scope_type,
            "scope": scope,
            "week_start": w,
            "deployments": len(deps),
            "deployment_days": len(successful_days),
            "median_lead_time_hours": _median([p["lead_time_hours"] for p in shipped]),
            "change_failure_rate": failed / len(deps) if deps else None,
            "failed_changes": failed,
            "incidents": len(incs),
            "median_time_to_restore_hours": _median([i.restore_hours for i in incs if i.restore_hours is not None]),
            "merged_prs": len(prs),
            "review_coverage": reviewed / len(prs) if prs else None,
            "median_pr_size": _median(sizes),
            "p90_pr_size": percentile_cont(sizes, 0.9),
            "median_coding_hours": _median([p["coding_hours"] for p in prs if p["coding_hours"] is not None]),
            "median_pickup_hours": _median([p["pickup_hours"] for p in prs if p["pickup_hours"] is not None]),
            "median_review_hours": _median([p["review_hours"] for p in prs if p["review_hours"] is not None]),
            "median_deploy_hours": _median([p["deploy_hours"] for p in prs if p["deploy_hours"] is not None]),
        }
        # Grades over the trailing 12 weeks ending with this week.
        window = [x for x in weeks if w - dt.timedelta(days=7 * (GRADE_WEEKS - 1)) <= x <= w]
        window_deps = [d for x in window for d in deps_w.get(x, [])]
        window_prs = [p for x in window for p in merged_w.get(x, [])]
        lead = _median([p["lead_time_hours"] for x in window for p in shipped_w.get(x, [])])
        cfr = (sum(1 for d in window_deps if d.fails_change) / len(window_deps)) if window_deps else None
        ttr = _median([i.restore_hours for x in window for i in incidents_w.get(x, [])
                       if i.restore_hours is not None])
        coverage = (sum(1 for p in window_prs if p["first_review_at"] is not None) / len(window_prs)
                    if window_prs else None)
        grades = {
            "deployment_frequency": _grade_deployment_frequency([days_by_week[x] for x in window]),
            "lead_time": _grade_lead_time(lead),
            "change_failure_rate": _grade_change_failure_rate(cfr),
            "time_to_restore": _grade_time_to_restore(ttr),
        }
        row.update({
            "deployment_frequency_grade": grades["deployment_frequency"],
            "lead_time_grade": grades["lead_time"],
            "change_failure_rate_grade": grades["change_failure_rate"],
            "time_to_restore_grade": grades["time_to_restore"],
            "review_coverage_12w": coverage,
            "performance_score": performance_score(grades, coverage),
        })
        rows.append(row)
    return rows


# -- the marts ------------------------------------------------------------------------------------

def _frame(name: str, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=MART_COLUMNS[name])
    for column in TIMESTAMP_COLUMNS.get(name, []):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def compute(org: Organization, settings: dict[str, dict] | None = None) -> dict[str, pd.DataFrame]:
    """Every mart of docs/contracts.md, plus the injected anomaly labels, keyed by mart name.

    `settings` maps a repository full name to `app.repository_settings` values
    (deployment_source and the three regexes); missing or null values take the defaults.
    """
    facts = [_repo_facts(org, repo, _settings_for(repo, settings)) for repo in org.repositories]
    by_name = {f.repo.full_name: f for f in facts}
    lasts = [f.last_activity for f in facts if f.last_activity is not None]
    last_week = week_start(max(lasts)) if lasts else None

    pr_rows = [p for f in facts for p in f.prs]
    deployment_rows = [{
        "deployment_id": d.id, "repo_full_name": d.repo, "source": d.source,
        "environment": d.environment, "deployed_at": d.deployed_at,
        "week_start": week_start(d.deployed_at), "is_failed": d.is_failed,
        "incident_count": d.incident_count, "fails_change": d.fails_change,
    } for f in facts for d in f.deployments]
    incident_rows = [{
        "incident_id": i.id, "repo_full_name": i.repo, "kind": i.kind, "started_at": i.started_at,
        "restored_at": i.restored_at, "restore_hours": i.restore_hours,
        "week_start": week_start(i.started_at), "deployment_id": i.deployment_id,
        "reverted_pull_request_id": i.reverted_pull_request_id,
    } for f in facts for i in f.incidents]

    weekly: list[dict] = []
    repo_rows, user_rows = [], []
    for f in facts:
        rows = _weekly_rows("repository", f.repo.full_name, [f], last_week) if last_week else []
        weekly += rows
        repo_rows.append(_dimension_row({
            "repo_full_name": f.repo.full_name, "repository_id": f.repo.node_id,
            "default_branch": f.repo.default_branch, "is_archived": f.repo.is_archived,
            "deployment_source": f.source,
        }, rows))
    for login, repos in org.memberships.items():
        mine = [by_name[name] for name in dict.fromkeys(repos) if name in by_name]
        rows = _weekly_rows("user", login, mine, last_week) if last_week else []
        weekly += rows
        user = org.users.get(login)
        user_rows.append(_dimension_row({
            "login": login, "display_name": user.name if user else login,
            "repository_count": len(mine),
        }, rows))

    frames = {
        "fct_pull_requests": _frame("fct_pull_requests", pr_rows),
        "fct_deployments": _frame("fct_deployments", deployment_rows),
        "fct_incidents": _frame("fct_incidents", incident_rows),
        "fct_dora_weekly": _frame("fct_dora_weekly", weekly),
        "dim_repositories": _frame("dim_repositories", repo_rows),
        "dim_users": _frame("dim_users", user_rows),
        "ml_weekly_features": _frame("ml_weekly_features", weekly),
        "anomalies": _frame("anomalies", [{
            "scope_type": a.scope_type, "scope": a.scope, "week_start": a.week_start,
            "metric": a.metric, "factor": float(a.factor),
        } for a in org.anomalies]),
    }
    return frames


def _dimension_row(base: dict, rows: list[dict]) -> dict:
    latest = rows[-1] if rows else {}
    base.update({
        "first_week": rows[0]["week_start"] if rows else None,
        "last_week": latest.get("week_start"),
        **{column: latest.get(column) for column in GRADE_COLUMNS},
        "performance_score": latest.get("performance_score"),
    })
    return base


def write_csv(org_or_frames: Organization | dict[str, pd.DataFrame], out_dir: str | Path,
              settings: dict[str, dict] | None = None) -> list[Path]:
    """One CSV per mart (named after it) plus anomalies.csv; returns the paths written."""
    frames = compute(org_or_frames, settings) if isinstance(org_or_frames, Organization) else org_or_frames
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in frames.items():
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    return written
