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

DORA's five metrics and the Quick Check scores follow docs/dora.md. Choices where it leaves room:
- Pull requests and deployments are looked up by node id across the whole organisation: an
  issue's closing pull request (`closedBy`) and a fix's shipping deployment need not be in the
  issue's repository.
- `closedBy` is read as recorded, whether or not the issue is closed now (a reopened issue keeps
  its latest ClosedEvent's closer).
- An issue incident whose closing pull request is given but whose window finds no deployment is
  unattributed (`attribution_evidence` null), like any unattributed incident.
- A deployment with identified fixes none of which shipped after it is not recovered: recovery
  columns and `recovery_evidence` are all null.
- The 26-week window of `rework_rate_26w` is the row and the 25 weeks before it that exist for
  the scope, as the 12-week one.

Bottlenecks (`fct_bottlenecks`, docs/dora.md) are computed from the pull-request rows, by calendar:
a pull request counts in the weeks whose 12-week window holds the week it shipped in. Choices:
- With no such pull requests the stage sums are 0 (the weekly rows are zero-filled); shares are
  null when the four stages' hours sum to 0, and then no stage is named either.
- A window half with no hours (no pull requests, or only 0 h ones) has a null share.

The trailing 12 weeks of each scope (`fct_trailing_12w`) are the scope's last 12 weekly rows:
counts summed over them, medians over the pull requests merged (non-bot) and the incidents
started in their weeks; lead time, change fail rate and review coverage are the latest row's.

AI assistance and its cohorts follow docs/ai.md, with the default rules of dbt_project.yml's ai_*
vars (restated below): a commit message is the one the API serves (`Commit <sha7>` when the
generator wrote none).
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ghmetrics_dagster.metrics import contracts, repository_settings
from ghmetrics_dagster.warehouse.dbt_env import DBT_PROJECT_DIR

from .model import GHOST, Organization, PullRequest, Repository

SOURCES = ("github_deployments", "workflow_runs", "releases", "merges")
ATTRIBUTION_WINDOW = dt.timedelta(days=14)
GRADE_WEEKS = 12
REWORK_LONG_WEEKS = 26
# Quick Check hour bands (docs/dora.md): (lower bound in hours, band); a month is 30 days and
# six months 182.5 days.
HOUR_BANDS = ((4380.0, 1), (720.0, 2), (168.0, 3), (24.0, 4), (1.0, 5))
BENCHMARKS_CSV = DBT_PROJECT_DIR / "seeds" / "dora_benchmarks_2025.csv"
# DORA 2025 Quick Check, all industries: used when the seed file is not there.
ALL_INDUSTRIES_BENCHMARK = {"overall": 4.3, "throughput": 6.0, "instability": 2.1}
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
# docs/dora.md: week values, trailing-window values, Quick Check bands, scores, benchmark deltas.
DORA_WEEK_COLUMNS = ["rework_deployments", "rework_rate", "recovered_deployments", "median_recovery_hours"]
DORA_WINDOW_COLUMNS = [
    "lead_time_hours_12w", "deployment_days_per_week_12w", "deployments_per_deployment_day_12w",
    "change_failure_rate_12w", "recovery_hours_12w", "rework_rate_12w", "rework_rate_26w",
]
BAND_COLUMNS = ["lead_time_band", "deployment_frequency_band", "recovery_band"]
SCORE_COLUMNS = [
    "lead_time_score", "deployment_frequency_score", "recovery_score", "change_fail_score", "rework_score",
    "throughput_score", "stability_score", "overall_score",
]
BENCHMARK_DELTA_COLUMNS = ["overall_vs_benchmark", "throughput_vs_benchmark", "stability_vs_benchmark"]
# docs/dora.md, Bottlenecks: the cycle stages of lead time, in tie-breaking order.
STAGES = ("coding", "pickup", "review", "deploy")
BOTTLENECK_MIN_PRS = 5  # dbt var bottleneck_min_prs
BOTTLENECK_HALF_WEEKS = 6  # the window's earlier and recent halves
# docs/ai.md: dbt_project.yml's ai_* vars (tests/test_dbt_truth.py checks they agree).
AI_COAUTHOR_EMAILS = [
    r"^[0-9]+\+copilot@users\.noreply\.github\.com$",
    r"^noreply@anthropic\.com$",
    r"^cursoragent@cursor\.com$",
    r"^noreply@aider\.chat$",
    r"^[0-9]+\+(devin-ai-integration|chatgpt-codex-connector|gemini-code-assist|claude)\[bot\]@users\.noreply\.github\.com$",
]
AI_AGENT_LOGINS = ["copilot-swe-agent[bot]", "Copilot", "devin-ai-integration[bot]", "chatgpt-codex-connector[bot]",
                   "claude[bot]"]
AI_TRAILER_KEYS = ["Made-with", "Generated-by", "Assisted-by"]
AI_TOOL_PATTERN = "(copilot|claude|cursor|codex|gemini|devin|windsurf|aider|chatgpt)"
AI_LABEL_PATTERN = "^ai[-_ ]?(assisted|generated)$"
AI_COHORT_MIN_PRS = 20
AI_ADOPTION_SHARE = 0.25
AI_ADOPTION_WINDOW_WEEKS = 12
AI_COHORTS = ("ai_assisted", "other")
AI_FIGURES = ["merged_prs", "is_too_small"] + [f"median_{s}_hours" for s in ("coding", "pickup", "review", "deploy")] + [
    "median_lead_time_hours", "median_pr_size", "review_coverage", "change_failure_rate", "rework_rate"]
BOTTLENECK_COLUMNS = (
    ["scope_type", "scope", "week_start", "prs_12w"] + [f"{s}_hours_12w" for s in STAGES]
    + [f"{s}_share_12w" for s in STAGES]
    + ["dominant_stage", "dominant_share_12w", "dominant_share_earlier_6w", "dominant_share_recent_6w",
       "dominant_share_change"]
)
# fct_trailing_12w: (column, the weekly row's 12-week value it repeats) for the latest week's.
TRAILING_FROM_LATEST = {
    "change_failure_rate_12w": "change_failure_rate_12w",
    "review_coverage_12w": "review_coverage_12w",
    "median_lead_time_hours_12w": "lead_time_hours_12w",
}
TRAILING_COLUMNS = [
    "scope_type", "scope", "week_start", "deployments_12w", "median_weekly_deployment_days_12w",
    "change_failure_rate_12w", "incidents_12w", "median_time_to_restore_hours_12w", "merged_prs_12w",
    "review_coverage_12w", "median_lead_time_hours_12w", "median_pr_size_12w",
] + [f"median_{s}_hours_12w" for s in STAGES]
MART_COLUMNS: dict[str, list[str]] = {
    "fct_pull_requests": [
        "pull_request_id", "repo_full_name", "number", "title", "author_login", "is_bot", "is_ai_agent",
        "is_draft", "state", "created_at", "ready_for_review_at", "first_commit_at", "first_review_at",
        "merged_at", "closed_at", "shipped_at", "shipping_deployment_id", "coding_hours",
        "pickup_hours", "review_hours", "deploy_hours", "lead_time_hours", "additions",
        "deletions", "pr_size", "review_count", "is_revert", "rework_reason", "ai_assisted", "ai_evidence",
    ],
    "fct_ai_cohorts_weekly": ["scope_type", "scope", "week_start", "cohort"] + AI_FIGURES
    + [f"{f}_12w" for f in AI_FIGURES],
    "fct_ai_adoption": ["scope_type", "scope", "adoption_week", "adoption_week_share", "window_weeks"]
    + [f"{f}_before" for f in AI_FIGURES] + [f"{f}_after" for f in AI_FIGURES],
    "fct_deployments": [
        "deployment_id", "repo_full_name", "source", "environment", "deployed_at", "week_start",
        "is_failed", "incident_count", "fails_change", "failure_cause", "is_rework", "recovered_at",
        "recovery_hours", "recovery_deployment_id", "recovery_evidence",
    ],
    "fct_incidents": [
        "incident_id", "repo_full_name", "kind", "started_at", "restored_at", "restore_hours",
        "week_start", "deployment_id", "reverted_pull_request_id", "closing_pull_request_id",
        "attribution_evidence",
    ],
    "fct_dora_weekly": ["scope_type", "scope", "week_start"] + WEEKLY_NUMERIC + GRADE_COLUMNS
    + ["review_coverage_12w", "legacy_performance_score"] + DORA_WEEK_COLUMNS + DORA_WINDOW_COLUMNS
    + BAND_COLUMNS + SCORE_COLUMNS + BENCHMARK_DELTA_COLUMNS,
    "dim_repositories": [
        "repo_full_name", "repository_id", "default_branch", "is_archived", "deployment_source",
        "first_week", "last_week",
    ] + GRADE_COLUMNS + ["legacy_performance_score", "overall_score"],
    "dim_users": ["login", "display_name", "repository_count", "first_week", "last_week"]
    + GRADE_COLUMNS + ["legacy_performance_score", "overall_score"],
    "ml_weekly_features": ["scope_type", "scope", "week_start", *contracts.FEATURE_COLUMNS],
    "fct_bottlenecks": BOTTLENECK_COLUMNS,
    "fct_trailing_12w": TRAILING_COLUMNS,
    "anomalies": ["scope_type", "scope", "week_start", "metric", "factor"],
}
TIMESTAMP_COLUMNS = {
    "fct_pull_requests": ["created_at", "ready_for_review_at", "first_commit_at", "first_review_at",
                          "merged_at", "closed_at", "shipped_at"],
    "fct_deployments": ["deployed_at", "recovered_at"],
    "fct_incidents": ["started_at", "restored_at"],
}

INTEGER_COLUMNS = {
    "fct_dora_weekly": BAND_COLUMNS,
    "fct_bottlenecks": ["prs_12w"],
    "fct_trailing_12w": ["deployments_12w", "incidents_12w", "merged_prs_12w"],
}


# -- small helpers --------------------------------------------------------------------------

def hours(later: dt.datetime | None, earlier: dt.datetime | None) -> float | None:
    """Hours from `earlier` to `later`, negative spans clamped to 0; None when either is None."""
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds() / 3600.0)


def week_start(moment: dt.datetime) -> dt.date:
    day = moment.astimezone(dt.UTC).date()
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


_CO_AUTHOR_LINE = re.compile(r"^[ \t]*co-authored-by[ \t]*:[ \t]*([^<\n]*)<([^>\n]*)>", re.IGNORECASE | re.MULTILINE)
_TRAILER_LINE = re.compile(rf"^[ \t]*({'|'.join(AI_TRAILER_KEYS)})[ \t]*:[ \t]*([^\n]*)", re.IGNORECASE | re.MULTILINE)


def is_ai_agent(login: str | None) -> bool:
    return login is not None and login.lower() in {agent.lower() for agent in AI_AGENT_LOGINS}


def ai_evidence(pr: PullRequest) -> str | None:
    """docs/ai.md: the first rule that finds AI assistance (agent author, AI co-author, AI
    trailer, label), with what it found; None when none does. Commit rules take the earliest
    commit (authored, then sha) and its first matching line."""
    if is_ai_agent(pr.author_login):
        return f"agent author {pr.author_login}"
    commits = sorted(pr.commits, key=lambda c: (c.authored_at, c.sha))
    for commit in commits:
        for line in _CO_AUTHOR_LINE.finditer(commit.message or f"Commit {commit.sha[:7]}"):
            name, email = line[1].strip(" \t"), line[2].strip(" \t")
            if any(re.search(pattern, email, re.IGNORECASE) for pattern in AI_COAUTHOR_EMAILS):
                return f"co-author {f'{name} <{email}>'.strip(' ')} in commit {commit.sha[:7]}"
    for commit in commits:
        for line in _TRAILER_LINE.finditer(commit.message or f"Commit {commit.sha[:7]}"):
            value = line[2].strip(" \t")
            if re.search(AI_TOOL_PATTERN, value, re.IGNORECASE):
                return f"trailer {line[1]}: {value} in commit {commit.sha[:7]}"
    for label in pr.labels:
        if re.search(AI_LABEL_PATTERN, label, re.IGNORECASE):
            return f"label {label}"
    return None


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
    revert_incident_count: int = 0  # incidents attributed with `revert` evidence
    is_rework: bool = False
    recovery: _Deployment | None = None
    recovery_evidence: str | None = None

    @property
    def fails_change(self) -> bool:
        return self.is_failed or self.incident_count > 0

    @property
    def failure_cause(self) -> str | None:
        if self.is_failed:
            return "status"
        if self.revert_incident_count:
            return "revert"
        return "incident" if self.incident_count else None

    @property
    def recovered_at(self) -> dt.datetime | None:
        return self.recovery.deployed_at if self.recovery else None

    @property
    def recovery_hours(self) -> float | None:
        return hours(self.recovered_at, self.deployed_at)


@dataclass
class _Incident:
    id: str
    repo: str
    kind: str
    started_at: dt.datetime
    restored_at: dt.datetime | None
    reverted_pull_request_id: str | None
    deployment_id: str | None = None
    closed_by: str | None = None  # an issue's `closedBy` pull request node id, as recorded
    closing_pull_request_id: str | None = None  # closed_by when that pull request is merged
    attribution_evidence: str | None = None

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
    cfg: dict[str, str] = field(default_factory=dict)
    # merged revert pull request id -> the pull request it resolves to (resolved reverts only)
    reverts: dict[str, str] = field(default_factory=dict)


def _settings_for(repo: Repository, settings: dict[str, dict] | None) -> dict[str, str]:
    merged = dict(repository_settings.DEFAULTS)
    for name, values in (settings or {}).items():
        if name.lower() == repo.full_name.lower():
            merged.update({k: v for k, v in values.items() if v is not None and k in repository_settings.DEFAULTS})
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
        agent = is_ai_agent(pr.author_login)
        # An AI agent's pull request has a person's cycle stages (docs/ai.md).
        cycle = pr.merged_at is not None and (not bot or agent)
        prs.append({
            "pull_request_id": pr.node_id,
            "repo_full_name": repo.full_name,
            "number": pr.number,
            "title": pr.title,
            "author_login": pr.author_login if pr.author_login is not None else GHOST,
            "is_bot": bot,
            "is_ai_agent": agent,
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
            "ai_assisted": ai_evidence(pr) is not None,
            "ai_evidence": ai_evidence(pr),
        })

    incidents: list[_Incident] = []
    for issue in repo.issues:
        if any(incident_label(label) for label in issue.labels):
            incidents.append(_Incident(issue.node_id, repo.full_name, "issue", issue.created_at,
                                       issue.closed_at, None, closed_by=issue.closed_by_pull_request))
    reverts: dict[str, str] = {}
    for pr in repo.pull_requests:
        if pr.merged_at is None or not is_revert(pr):
            continue
        target = _reverted_pull_request(repo, pr)
        if target is None:
            continue  # an unresolvable revert is not an incident
        reverts[pr.node_id] = target.node_id
        incidents.append(_Incident(pr.node_id, repo.full_name, "revert", target.merged_at,
                                   pr.merged_at, target.node_id))
    incidents.sort(key=lambda i: (i.started_at, i.id))

    moments = [p["created_at"] for p in prs] + [d.deployed_at for d in deployments]
    last = moments + [p["merged_at"] for p in prs if p["merged_at"]] + [p["closed_at"] for p in prs if p["closed_at"]]
    last += [i.started_at for i in incidents]
    return _RepoFacts(repo, source, deployments, prs, incidents,
                      first_activity=min(moments) if moments else None,
                      last_activity=max(last) if last else None, cfg=cfg, reverts=reverts)


def _window_deployment(successful: list[_Deployment], started_at: dt.datetime) -> _Deployment | None:
    """Rule 3: the latest successful deployment in (started_at - 14 days, started_at]."""
    candidates = [d for d in successful if started_at - ATTRIBUTION_WINDOW < d.deployed_at <= started_at]
    return max(candidates, key=lambda d: (d.deployed_at, d.id)) if candidates else None


def _link(facts: list[_RepoFacts]) -> None:
    """docs/dora.md across the organisation: rework reasons, attribution with evidence, recovery.

    Pull requests and deployments are found by node id anywhere in the organisation.
    """
    prs = {p["pull_request_id"]: p for f in facts for p in f.prs}
    pr_objects = {pr.node_id: (pr, f.cfg) for f in facts for pr in f.repo.pull_requests}
    deployments = {d.id: d for f in facts for d in f.deployments}
    reverts = {revert: target for f in facts for revert, target in f.reverts.items()}

    def shipping(pr_id: str | None) -> _Deployment | None:
        row = prs.get(pr_id) if pr_id else None
        return deployments.get(row["shipping_deployment_id"]) if row and row["shipping_deployment_id"] else None

    # Closing pull requests of issue incidents (merged ones only).
    for f in facts:
        for incident in f.incidents:
            closer = prs.get(incident.closed_by) if incident.closed_by else None
            if closer is not None and closer["merged_at"] is not None:
                incident.closing_pull_request_id = closer["pull_request_id"]
    incident_fixes = {i.closing_pull_request_id for f in facts for i in f.incidents if i.closing_pull_request_id}

    # Rework reasons of merged pull requests, first rule that matches.
    for row in prs.values():
        reason = None
        if row["merged_at"] is not None:
            pr, cfg = pr_objects[row["pull_request_id"]]
            if row["pull_request_id"] in reverts:
                reason = "revert"
            elif row["pull_request_id"] in incident_fixes:
                reason = "incident_fix"
            elif any(_search(cfg["hotfix_label_regex"])(label) for label in pr.labels):
                reason = "hotfix_label"
            elif pr.head_ref is not None and _search(cfg["hotfix_branch_regex"])(pr.head_ref):
                reason = "hotfix_branch"
        row["rework_reason"] = reason
        if reason is not None:
            shipped = shipping(row["pull_request_id"])
            if shipped is not None:
                shipped.is_rework = True  # a shipping deployment is a successful one

    # Attribution, strongest evidence first.
    for f in facts:
        successful = [d for d in f.deployments if not d.is_failed]
        for incident in f.incidents:
            chosen, evidence = None, None
            if incident.kind == "revert":
                chosen = shipping(incident.reverted_pull_request_id)
                evidence = "revert" if chosen else None  # never shipped: attributed to nothing
            else:
                if incident.closing_pull_request_id in reverts:
                    chosen = shipping(reverts[incident.closing_pull_request_id])
                    evidence = "revert" if chosen else None
                if chosen is None:
                    chosen = _window_deployment(successful, incident.started_at)
                    if chosen is not None:
                        evidence = "closing_reference" if incident.closing_pull_request_id else "window"
            if chosen is not None:
                incident.deployment_id = chosen.id
                incident.attribution_evidence = evidence
                chosen.incident_count += 1
                if evidence == "revert":
                    chosen.revert_incident_count += 1

    # Recovery of the deployments that fail a change.
    fixes: dict[str, set[str]] = {}
    for revert, target in reverts.items():
        failed = shipping(target)
        if failed is not None:
            fixes.setdefault(failed.id, set()).add(revert)
    for f in facts:
        for incident in f.incidents:
            if incident.kind == "issue" and incident.deployment_id and incident.closing_pull_request_id:
                fixes.setdefault(incident.deployment_id, set()).add(incident.closing_pull_request_id)
    for f in facts:
        successful = [d for d in f.deployments if not d.is_failed]
        for dep in f.deployments:
            if not dep.fails_change:
                continue
            if dep.id in fixes:
                shipped = [s for s in (shipping(pr_id) for pr_id in fixes[dep.id])
                           if s is not None and s.deployed_at > dep.deployed_at]
                evidence = "fix"
            else:
                shipped = [s for s in successful if s.deployed_at > dep.deployed_at]
                evidence = "next_success"
            if shipped:
                dep.recovery = min(shipped, key=lambda s: (s.deployed_at, s.id))
                dep.recovery_evidence = evidence


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


# -- Quick Check bands and scores (docs/dora.md) ----------------------------------------------------

def hours_band(value: float | None) -> int | None:
    """Lead time and failed deployment recovery time: band 1 (>= six months) .. 6 (< one hour)."""
    if value is None:
        return None
    for lower, band in HOUR_BANDS:
        if value >= lower:
            return band
    return 6


def deployment_frequency_band(days_per_week: float, deployments_per_day: float | None) -> int:
    """`d` deployment days per week and `m` deployments per deployment day; the first rule that holds."""
    d, m = days_per_week, deployments_per_day
    if d >= 5 and m is not None and m >= 2:
        return 6
    if d >= 5:
        return 5
    if d >= 1:
        return 4
    if d >= 12 / 52:
        return 3
    return 2 if d > 0 else 1


def band_score(band: int | None) -> float | None:
    return None if band is None else float((band - 1) * 2)


def rate_score(rate: float | None) -> float | None:
    """A percentage p scores 10 - p / 10, i.e. 10 - 10 * rate."""
    return None if rate is None else 10.0 - 10.0 * rate


def _mean(values) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def quick_check_scores(lead_time_band: int | None, deployment_frequency_band: int, recovery_band: int | None,
                       change_failure_rate: float | None, rework_rate: float | None) -> dict[str, float | None]:
    """The eight scores of a scope-week from its bands and its 12-week rates."""
    scores = {
        "lead_time_score": band_score(lead_time_band),
        "deployment_frequency_score": band_score(deployment_frequency_band),
        "recovery_score": band_score(recovery_band),
        "change_fail_score": rate_score(change_failure_rate),
        "rework_score": rate_score(rework_rate),
    }
    scores["throughput_score"] = _mean(
        [scores["lead_time_score"], scores["deployment_frequency_score"], scores["recovery_score"]])
    scores["stability_score"] = _mean([scores["change_fail_score"], scores["rework_score"]])
    scores["overall_score"] = _mean(list(scores.values())[:5])
    return scores


def load_benchmark(industry: str | None = None, organization_size: str | None = None,
                   path: str | Path | None = None) -> dict[str, float]:
    """The chosen segment's benchmark means on the score scale: overall, throughput, stability.

    The segment is all industries unless an industry or an organisation size is given (the
    industry wins when both are). Stability is 10 - the published instability mean. Without
    the seed file, only all industries is known (DORA 2025's means).
    """
    path = Path(path) if path is not None else BENCHMARKS_CSV
    if industry:
        wanted = ("industry", industry)
    elif organization_size:
        wanted = ("organization_size", organization_size)
    else:
        wanted = None
    if not path.exists():
        if wanted is not None:
            raise ValueError(f"no benchmark file {path} for {wanted[0]} {wanted[1]!r}")
        means = dict(ALL_INDUSTRIES_BENCHMARK)
    else:
        means = {}
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
                segment_type = row.get("segment_type", "").lower().replace("organisation", "organization")
                names = {row.get("segment", "").lower(), row.get("segment_label", "").lower()}
                if wanted is None:
                    hit = segment_type in ("all", "all_industries") or names & {"all", "all_industries",
                                                                                "all industries"}
                else:
                    hit = segment_type == wanted[0] and wanted[1].lower() in names
                if hit and row.get("metric"):
                    means[row["metric"].lower()] = float(row["mean"])
        if not means:
            raise ValueError(f"{path}: no benchmark for "
                             + (f"{wanted[0]} {wanted[1]!r}" if wanted else "all industries"))
    missing = {"overall", "throughput", "instability"} - set(means)
    if missing:
        raise ValueError(f"{path}: benchmark metrics missing: {sorted(missing)}")
    return {"overall": means["overall"], "throughput": means["throughput"],
            "stability": 10.0 - means["instability"]}


def _weekly_rows(scope_type: str, scope: str, facts: list[_RepoFacts], last_week: dt.date,
                 bench: dict[str, float]) -> list[dict]:
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
    successes_by_week: dict[dt.date, int] = {}
    for index, w in enumerate(weeks):
        deps = deps_w.get(w, [])
        prs = merged_w.get(w, [])
        shipped = shipped_w.get(w, [])
        incs = incidents_w.get(w, [])
        successful_days = {d.deployed_at.astimezone(dt.UTC).date() for d in deps if not d.is_failed}
        days_by_week[w] = len(successful_days)
        successes_by_week[w] = sum(1 for d in deps if not d.is_failed)
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
            "legacy_deployment_frequency_grade": grades["deployment_frequency"],
            "legacy_lead_time_grade": grades["lead_time"],
            "legacy_change_failure_rate_grade": grades["change_failure_rate"],
            "legacy_time_to_restore_grade": grades["time_to_restore"],
            "review_coverage_12w": coverage,
            "legacy_performance_score": performance_score(grades, coverage),
        })

        # docs/dora.md: the week's rework and recovery, then the trailing windows (the row and
        # the weeks before it that exist for the scope), bands, scores and benchmark deltas.
        rework = sum(1 for d in deps if d.is_rework)
        recovered = [d.recovery_hours for d in deps if d.fails_change and d.recovery is not None]
        row.update({
            "rework_deployments": rework,
            "rework_rate": rework / len(deps) if deps else None,
            "recovered_deployments": len(recovered),
            "median_recovery_hours": _median(recovered),
        })
        window12 = weeks[max(0, index - (GRADE_WEEKS - 1)):index + 1]
        window26 = weeks[max(0, index - (REWORK_LONG_WEEKS - 1)):index + 1]
        deps12 = [d for x in window12 for d in deps_w.get(x, [])]
        deps26 = [d for x in window26 for d in deps_w.get(x, [])]
        days12 = sum(days_by_week[x] for x in window12)  # weeks are disjoint: distinct dates
        successes12 = sum(successes_by_week[x] for x in window12)
        d = days12 / len(window12)
        m = successes12 / days12 if days12 else None
        recovery12 = _median([dep.recovery_hours for dep in deps12 if dep.fails_change and dep.recovery is not None])
        rework12 = sum(1 for dep in deps12 if dep.is_rework) / len(deps12) if deps12 else None
        row.update({
            "lead_time_hours_12w": lead,
            "deployment_days_per_week_12w": d,
            "deployments_per_deployment_day_12w": m,
            "change_failure_rate_12w": cfr,
            "recovery_hours_12w": recovery12,
            "rework_rate_12w": rework12,
            "rework_rate_26w": sum(1 for dep in deps26 if dep.is_rework) / len(deps26) if deps26 else None,
            "lead_time_band": hours_band(lead),
            "deployment_frequency_band": deployment_frequency_band(d, m),
            "recovery_band": hours_band(recovery12),
        })
        row.update(quick_check_scores(row["lead_time_band"], row["deployment_frequency_band"],
                                      row["recovery_band"], cfr, rework12))
        for name in ("overall", "throughput", "stability"):
            score = row[f"{name}_score"]
            row[f"{name}_vs_benchmark"] = None if score is None else score - bench[name]
        rows.append(row)
    return rows


# -- bottlenecks (docs/dora.md) ---------------------------------------------------------------------

def bottleneck_rows(scope_type: str, scope: str, prs: list[dict], weeks: list[dt.date],
                    min_prs: int = BOTTLENECK_MIN_PRS) -> list[dict]:
    """One row per week of `weeks` (a scope's weekly rows): the stage hours of the pull requests
    counted in its lead time over the 12 weeks ending with that week (non-bot, shipped in one of
    them, with a lead time) that have all four stage durations, their shares, the dominant stage
    and its share in the window's earlier and recent 6 weeks. `prs` are the scope's pull-request
    rows (fct_pull_requests' columns)."""
    items = [
        p for p in prs
        if not p["is_bot"] and p["shipped_at"] is not None and p["lead_time_hours"] is not None
        and all(p[f"{stage}_hours"] is not None for stage in STAGES)
    ]
    shipped_weeks = [week_start(p["shipped_at"]) for p in items]

    def stage_hours(first: dt.date, last: dt.date) -> tuple[int, dict[str, float]]:
        """(pull requests, hours per stage) of those shipped in the weeks first..last."""
        chosen = [p for p, w in zip(items, shipped_weeks, strict=False) if first <= w <= last]
        return len(chosen), {stage: math.fsum(p[f"{stage}_hours"] for p in chosen) for stage in STAGES}

    def share(stage: str | None, sums: dict[str, float]) -> float | None:
        total = math.fsum(sums.values())
        return sums[stage] / total if stage is not None and total > 0 else None

    week = dt.timedelta(days=7)
    rows = []
    for w in weeks:
        first = w - (GRADE_WEEKS - 1) * week
        count, sums = stage_hours(first, w)
        total = math.fsum(sums.values())
        dominant = None
        if count >= min_prs and total > 0:
            for stage in STAGES:  # strictly larger only: a tie stays with the earlier stage
                if dominant is None or sums[stage] > sums[dominant]:
                    dominant = stage
        _, earlier = stage_hours(first, first + (BOTTLENECK_HALF_WEEKS - 1) * week)
        _, recent = stage_hours(w - (BOTTLENECK_HALF_WEEKS - 1) * week, w)
        earlier_share, recent_share = share(dominant, earlier), share(dominant, recent)
        row = {"scope_type": scope_type, "scope": scope, "week_start": w, "prs_12w": count}
        row.update({f"{stage}_hours_12w": sums[stage] for stage in STAGES})
        row.update({f"{stage}_share_12w": share(stage, sums) for stage in STAGES})
        row.update({
            "dominant_stage": dominant,
            "dominant_share_12w": share(dominant, sums),
            "dominant_share_earlier_6w": earlier_share,
            "dominant_share_recent_6w": recent_share,
            "dominant_share_change": (recent_share - earlier_share
                                      if recent_share is not None and earlier_share is not None else None),
        })
        rows.append(row)
    return rows


# -- the trailing 12 weeks ------------------------------------------------------------------------

def trailing_row(scope_type: str, scope: str, rows: list[dict], prs: list[dict],
                 incidents: list[_Incident]) -> dict | None:
    """The scope's figures over its last 12 weekly rows (`rows`, oldest first); `prs` and
    `incidents` are those of the scope's repositories. None without weekly rows."""
    if not rows:
        return None
    window = rows[-GRADE_WEEKS:]
    first = window[0]["week_start"]
    merged = [p for p in prs if not p["is_bot"] and p["merged_at"] is not None and week_start(p["merged_at"]) >= first]
    row = {
        "scope_type": scope_type,
        "scope": scope,
        "week_start": window[-1]["week_start"],
        "deployments_12w": sum(r["deployments"] for r in window),
        "median_weekly_deployment_days_12w": _median([float(r["deployment_days"]) for r in window]),
        "incidents_12w": sum(r["incidents"] for r in window),
        "median_time_to_restore_hours_12w": _median([
            i.restore_hours for i in incidents if week_start(i.started_at) >= first and i.restore_hours is not None]),
        "merged_prs_12w": sum(r["merged_prs"] for r in window),
        "median_pr_size_12w": _median([float(p["pr_size"]) for p in merged]),
    }
    row.update({column: window[-1][weekly] for column, weekly in TRAILING_FROM_LATEST.items()})
    row.update({f"median_{stage}_hours_12w": _median([p[f"{stage}_hours"] for p in merged
                                                       if p[f"{stage}_hours"] is not None]) for stage in STAGES})
    return row


# -- AI cohorts and adoption (docs/ai.md) -------------------------------------------------------------

def ai_items(prs: list[dict], fails: dict[str, bool]) -> list[dict]:
    """The cohorts' items: merged pull requests by people and by AI agents, with their merge and
    shipping weeks and whether their shipping deployment fails a change (`fails`, by deployment id)."""
    return [{
        **p,
        "cohort": "ai_assisted" if p["ai_assisted"] else "other",
        "merged_week": week_start(p["merged_at"]),
        "shipped_week": week_start(p["shipped_at"]) if p["shipped_at"] is not None else None,
        "fails_change": fails.get(p["shipping_deployment_id"], False),
    } for p in prs if p["merged_at"] is not None and (not p["is_bot"] or p["is_ai_agent"])]


def ai_figures(merged: list[dict], shipped: list[dict], suffix: str = "") -> dict:
    """A cohort's figures over the pull requests merged and shipped in a window; all null
    under AI_COHORT_MIN_PRS merged ones."""
    n = len(merged)
    enough = n >= AI_COHORT_MIN_PRS

    def median(items: list[dict], column: str) -> float | None:
        return _median([float(p[column]) for p in items if p[column] is not None]) if enough else None

    def share(items: list[dict], flag: str) -> float | None:
        return sum(1 for p in items if p[flag]) / len(items) if enough and items else None

    row = {"merged_prs": n, "is_too_small": not enough}
    row.update({f"median_{stage}_hours": median(merged, f"{stage}_hours") for stage in STAGES})
    row["median_lead_time_hours"] = median(shipped, "lead_time_hours")
    row["median_pr_size"] = median(merged, "pr_size")
    row["review_coverage"] = share([{"x": p["first_review_at"] is not None} for p in merged], "x")
    row["change_failure_rate"] = share(shipped, "fails_change")
    row["rework_rate"] = share([{"x": p["rework_reason"] is not None} for p in merged], "x")
    return {f"{column}{suffix}": value for column, value in row.items()}


def ai_cohort_rows(scope_type: str, scope: str, items: list[dict], weeks: list[dt.date]) -> list[dict]:
    """fct_ai_cohorts_weekly: per week of the scope's weekly rows and cohort, the week's and the
    trailing 12 weeks' figures."""
    rows = []
    for week in weeks:
        first = week - dt.timedelta(weeks=GRADE_WEEKS - 1)
        for cohort in AI_COHORTS:
            mine = [p for p in items if p["cohort"] == cohort]
            row = {"scope_type": scope_type, "scope": scope, "week_start": week, "cohort": cohort}
            row.update(ai_figures([p for p in mine if p["merged_week"] == week],
                                  [p for p in mine if p["shipped_week"] == week]))
            row.update(ai_figures([p for p in mine if first <= p["merged_week"] <= week],
                                  [p for p in mine if p["shipped_week"] is not None and first <= p["shipped_week"] <= week],
                                  "_12w"))
            rows.append(row)
    return rows


def ai_adoption_row(scope_type: str, scope: str, items: list[dict]) -> dict:
    """fct_ai_adoption: the first week whose AI-assisted share of merged pull requests reaches
    AI_ADOPTION_SHARE, and the figures of the pull requests merged (shipped) in the
    AI_ADOPTION_WINDOW_WEEKS weeks before it and in as many from it on."""
    weeks: dict[dt.date, list[dict]] = {}
    for p in items:
        weeks.setdefault(p["merged_week"], []).append(p)
    adoption, share = None, None
    for week in sorted(weeks):
        ai = sum(1 for p in weeks[week] if p["cohort"] == "ai_assisted") / len(weeks[week])
        if ai >= AI_ADOPTION_SHARE:
            adoption, share = week, ai
            break

    def period(before: bool) -> tuple[list[dict], list[dict]]:
        if adoption is None:
            return [], []
        window = dt.timedelta(weeks=AI_ADOPTION_WINDOW_WEEKS)
        first, end = (adoption - window, adoption) if before else (adoption, adoption + window)
        merged = [p for p in items if first <= p["merged_week"] < end]
        shipped = [p for p in items if p["shipped_week"] is not None and first <= p["shipped_week"] < end]
        return merged, shipped

    row = {"scope_type": scope_type, "scope": scope, "adoption_week": adoption, "adoption_week_share": share,
           "window_weeks": AI_ADOPTION_WINDOW_WEEKS}
    row.update(ai_figures(*period(True), "_before"))
    row.update(ai_figures(*period(False), "_after"))
    return row


# -- the marts ------------------------------------------------------------------------------------

def _frame(name: str, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=MART_COLUMNS[name])
    for column in TIMESTAMP_COLUMNS.get(name, []):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in INTEGER_COLUMNS.get(name, []):
        if frame[column].isna().any():  # integers with nulls: Python ints and None, not floats
            frame[column] = pd.Series([None if pd.isna(v) else int(v) for v in frame[column]],
                                      index=frame.index, dtype=object)
        else:
            frame[column] = frame[column].astype("int64")
    return frame


def compute(org: Organization, settings: dict[str, dict] | None = None, *,
            benchmark_industry: str | None = None,
            benchmark_organization_size: str | None = None) -> dict[str, pd.DataFrame]:
    """Every mart of docs/contracts.md and docs/dora.md, plus the injected anomaly labels, keyed by mart name.

    `settings` maps a repository full name to `app.repository_settings` values
    (deployment_source and the regexes); missing or null values take the defaults. The
    benchmark segment is all industries unless an industry or an organisation size is given
    (the industry wins when both are).
    """
    benchmark = load_benchmark(benchmark_industry, benchmark_organization_size)
    facts = [_repo_facts(org, repo, _settings_for(repo, settings)) for repo in org.repositories]
    _link(facts)
    by_name = {f.repo.full_name: f for f in facts}
    lasts = [f.last_activity for f in facts if f.last_activity is not None]
    last_week = week_start(max(lasts)) if lasts else None

    pr_rows = [p for f in facts for p in f.prs]
    deployment_rows = [{
        "deployment_id": d.id, "repo_full_name": d.repo, "source": d.source,
        "environment": d.environment, "deployed_at": d.deployed_at,
        "week_start": week_start(d.deployed_at), "is_failed": d.is_failed,
        "incident_count": d.incident_count, "fails_change": d.fails_change,
        "failure_cause": d.failure_cause, "is_rework": d.is_rework, "recovered_at": d.recovered_at,
        "recovery_hours": d.recovery_hours, "recovery_deployment_id": d.recovery.id if d.recovery else None,
        "recovery_evidence": d.recovery_evidence,
    } for f in facts for d in f.deployments]
    incident_rows = [{
        "incident_id": i.id, "repo_full_name": i.repo, "kind": i.kind, "started_at": i.started_at,
        "restored_at": i.restored_at, "restore_hours": i.restore_hours,
        "week_start": week_start(i.started_at), "deployment_id": i.deployment_id,
        "reverted_pull_request_id": i.reverted_pull_request_id,
        "closing_pull_request_id": i.closing_pull_request_id,
        "attribution_evidence": i.attribution_evidence,
    } for f in facts for i in f.incidents]

    fails = {d.id: d.fails_change for f in facts for d in f.deployments}
    cohorts: list[dict] = []
    adoption: list[dict] = []
    weekly: list[dict] = []
    bottlenecks: list[dict] = []
    trailing: list[dict | None] = []
    repo_rows, user_rows = [], []
    for f in facts:
        rows = _weekly_rows("repository", f.repo.full_name, [f], last_week, benchmark) if last_week else []
        weekly += rows
        bottlenecks += bottleneck_rows("repository", f.repo.full_name, f.prs, [r["week_start"] for r in rows])
        trailing.append(trailing_row("repository", f.repo.full_name, rows, f.prs, f.incidents))
        if rows:
            items = ai_items(f.prs, fails)
            cohorts += ai_cohort_rows("repository", f.repo.full_name, items, [r["week_start"] for r in rows])
            adoption.append(ai_adoption_row("repository", f.repo.full_name, items))
        repo_rows.append(_dimension_row({
            "repo_full_name": f.repo.full_name, "repository_id": f.repo.node_id,
            "default_branch": f.repo.default_branch, "is_archived": f.repo.is_archived,
            "deployment_source": f.source,
        }, rows))
    for login, repos in org.memberships.items():
        mine = [by_name[name] for name in dict.fromkeys(repos) if name in by_name]
        rows = _weekly_rows("user", login, mine, last_week, benchmark) if last_week else []
        weekly += rows
        bottlenecks += bottleneck_rows("user", login, [p for f in mine for p in f.prs],
                                       [r["week_start"] for r in rows])
        trailing.append(trailing_row("user", login, rows, [p for f in mine for p in f.prs],
                                     [i for f in mine for i in f.incidents]))
        if rows:
            items = ai_items([p for f in mine for p in f.prs], fails)
            cohorts += ai_cohort_rows("user", login, items, [r["week_start"] for r in rows])
            adoption.append(ai_adoption_row("user", login, items))
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
        "fct_bottlenecks": _frame("fct_bottlenecks", bottlenecks),
        "fct_trailing_12w": _frame("fct_trailing_12w", [row for row in trailing if row is not None]),
        "fct_ai_cohorts_weekly": _frame("fct_ai_cohorts_weekly", cohorts),
        "fct_ai_adoption": _frame("fct_ai_adoption", adoption),
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
        "legacy_performance_score": latest.get("legacy_performance_score"),
        "overall_score": latest.get("overall_score"),
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
