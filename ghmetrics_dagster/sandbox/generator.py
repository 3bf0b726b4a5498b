"""A deterministic synthetic GitHub organisation.

`generate(seed, ...)` builds an `Organization` of the event model (model.py) whose history
ends at a fixed clock (`ANCHOR`, never the real time); `advance(org, days)` moves that clock
forward with new activity and updates to existing objects; `touch_pull_requests` changes a
fraction of pull requests for incremental-refresh tests. Everything is drawn from
`random.Random` instances seeded from strings (never the global generator nor `hash()`), so the
same arguments give the same organisation in every process.

Merged pull requests are built backwards from their merge time out of independent stage
durations (coding, draft, pickup, review). That keeps the set of pull requests merged in a week
fixed when an injected anomaly scales one stage, so the weekly median of that stage moves by
exactly the recorded factor and nothing else about the week changes.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import math
import random
import re
import statistics
from dataclasses import dataclass, field

from .model import (
    LABELED,
    UNLABELED,
    Anomaly,
    Commit,
    Deployment,
    DeploymentStatus,
    Issue,
    IssueComment,
    LabelEvent,
    Organization,
    PullRequest,
    Release,
    Repository,
    Review,
    User,
    WorkflowRun,
    replay_labels,
)

UTC = dt.UTC
ANCHOR = dt.datetime(2026, 6, 1, tzinfo=UTC)  # a Monday: the default organisation's "now"
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)

STYLES = ("github_deployments", "workflow_runs", "releases", "merges")
# ml_weekly_features columns an injected anomaly can move.
ANOMALY_METRICS = (
    "median_review_hours",
    "median_pickup_hours",
    "median_coding_hours",
    "median_pr_size",
    "deployments",
)
ANOMALY_FACTOR_RANGE = (2.5, 5.0)
# Below these counts a week's median (or count) is too noisy to carry an anomaly.
MIN_PRS_FOR_ANOMALY = 5
MIN_DEPLOYMENTS_FOR_ANOMALY = 3
STAGE_SIGMA = 0.3  # log-normal sigma of per-PR stage durations: moderate week-to-week noise

HUMANS = [
    ("alice", "Alice Martin"),
    ("bjorn", "Björn Andersson"),
    ("chen", "陈伟"),
    ("dara", "Dara Ó Briain"),
    ("emre", "Emre Yılmaz"),
    ("fatima", "Fatima Zahra"),
    ("gabriel", "Gabriel García"),
    ("hana", "佐藤 花"),
    ("ines", "Inês Costa"),
    ("jonas", "Jonas Müller"),
    ("kwame", "Kwame Mensah"),
    ("lena", "Lena Novak"),
    ("mateo", "Mateo Rossi"),
    ("nadia", "Надя Петрова"),
    ("olu", "Olúwaseun Adéyẹmí"),
    ("priya", "Priya Raman"),
    ("quinn", "Quinn Taylor"),
    ("rafael", "Rafael Souza"),
    ("sofia", "Sofía Herrera"),
    ("tomas", "Tomáš Novotný"),
]
BOTS = [
    ("dependabot[bot]", "dependabot"),
    ("renovate[bot]", "renovate"),
    ("github-actions[bot]", "github-actions"),
]
REPO_NAMES = [
    "api", "web", "billing", "infra", "mobile", "search", "auth", "payments",
    "notifications", "analytics", "gateway", "docs-site", "scheduler", "ledger",
    "checkout", "catalog", "identity", "reports", "edge-proxy", "data-pipeline",
]
VERBS = ["Add", "Fix", "Refactor", "Improve", "Remove", "Update", "Support", "Speed up",
         "Document", "Handle", "Simplify", "Harden"]
OBJECTS = ["retry logic", "pagination", "rate limiter", "login flow", "cache invalidation",
           "CSV export", "webhook delivery", "dark mode", "search ranking", "timezone handling",
           "error messages", "feature flags", "audit log", "metrics endpoint", "session expiry",
           "bulk import", "invoice rounding", "health checks", "connection pooling", "i18n strings"]
CONTEXTS = ["", " in checkout", " for admins", " on mobile", " in the scheduler",
            " for EU customers", " in the API client", " on startup", " in background jobs"]
UNICODE_TITLES = [
    "修复登录页面的崩溃",
    "Améliorer la géolocalisation des requêtes",
    "🚀 Ship the new onboarding",
    "Fix ü/ö/ß handling in CSV export",
    "ログ出力を改善する",
    "🐛 Fix flaky test in worker",
    "Añadir validación de teléfono",
    "Поддержка нового API платежей",
    "Crème brûlée theme ✨",
    "한국어 번역 업데이트",
]
BOT_PACKAGES = ["lodash", "requests", "urllib3", "react", "pyyaml", "axios", "django", "express"]
INCIDENT_LABELS = [["incident"], ["sev2", "bug"], ["outage"], ["Incident"], ["sev1"], ["SEV3"]]
OTHER_LABELS = [["bug"], ["enhancement"], ["incident-review"], ["documentation"], ["question"],
                ["bug", "good first issue"]]
# The default incident label regex of docs/contracts.md: which generated issues are incidents.
INCIDENT_LABEL = re.compile(r"^(incident|outage|sev[0-9].*)$", re.IGNORECASE)
# Rework (docs/dora.md): hotfix labels and head branches that the default regexes
# (?i)^hot-?fix$ and (?i)^hot-?fix[/_-] match, and near misses they must not.
HOTFIX_LABELS = ["hotfix", "Hotfix", "HOTFIX", "hot-fix"]
NOT_HOTFIX_LABELS = ["hotfix-candidate", "no-hotfix"]
HOTFIX_BRANCHES = ["hotfix/{}", "hot-fix-{}", "Hotfix_{}", "hotfix-{}"]
NOT_HOTFIX_BRANCHES = ["hotfixes/{}", "revert-hotfix-{}", "nothotfix/{}"]
HOTFIX_SLUGS = ["login-timeout", "payments-retry", "cache-stampede", "null-session", "queue-backlog",
                "tz-offset", "db-pool", "webhook-storm", "csv-export", "token-refresh"]
PR_LABELS = ["feature", "chore", "enhancement", "documentation"]
FIX_TITLES = ["Raise the connection pool limit", "Fix 5xx on checkout after the cache change",
              "Restore queue consumers after failover", "Stop the payments retry storm",
              "Fix login timeout behind the proxy", "Roll forward: handle null sessions",
              "Shorten the DNS TTL for failover", "Guard the webhook fan-out"]
FIX_BODIES = ["Roll forward instead of reverting.", "The on-call fix; a follow-up adds tests.",
              "Root cause in the incident.", ""]
# AI assistance (issue #17): the evidence the default rules of dbt_project.yml detect (AI
# co-authors, Made-with-style trailers, labels, agent accounts) and near misses they must not.
AI_CO_AUTHORS = [
    ("Copilot", "175728472+Copilot@users.noreply.github.com"),
    ("Claude", "noreply@anthropic.com"),
    ("Claude Sonnet 4.5", "noreply@anthropic.com"),
    ("Cursor Agent", "cursoragent@cursor.com"),
    ("aider (gpt-4.1)", "noreply@aider.chat"),
]
AI_TRAILERS = ["Made-with: Cursor", "Made-with: Claude Code", "made-with: Windsurf", "Generated-by: GitHub Copilot"]
AI_LABELS = ["ai-assisted", "AI-assisted", "ai-generated"]
# People, one named like an AI product; trailers naming no AI tool; labels about AI that do
# not say the pull request was assisted.
HUMAN_CO_AUTHORS = [
    ("Claude Moreau", "claude.moreau@acme-corp.example"),
    ("Claude", "claude@acme-corp.example"),
    ("Priya Raman", "priya@users.noreply.github.com"),
    ("Jonas Müller", "jonas.mueller@acme-corp.example"),
]
NOT_AI_TRAILERS = ["Made-with: Vim", "Made-with: love", "Reviewed-by: Lena Novak <lena@users.noreply.github.com>"]
NOT_AI_LABELS = ["ai-review-wanted", "not-ai-assisted"]
# Agent accounts that author pull requests: GitHub's Copilot coding agent (GraphQL calls the
# app copilot-swe-agent) and Devin.
AI_AGENTS = [("copilot-swe-agent[bot]", "Copilot"), ("devin-ai-integration[bot]", "Devin")]
COMMIT_HEADLINES = ["Address review comments", "Fix the tests", "Tidy up", "Handle the empty case"]
# The share of a week's pull requests that are AI-assisted: a logistic adoption curve from
# about 4% in the first weeks to about 78% in the last (x = the week's position in 0..1).
AI_SHARE_LOW, AI_SHARE_HIGH, AI_SHARE_MIDPOINT, AI_SHARE_STEEPNESS = 0.04, 0.74, 0.55, 10.0

INCIDENT_TITLES = ["Elevated 5xx on checkout", "Login outage", "Queue backlog growing", "Database failover",
                   "Payments timing out 💥", "支付接口超时"]


class _Ids:
    """Database ids: one increasing sequence for the whole organisation."""

    def __init__(self, last: int):
        self.last = last

    def next(self) -> int:
        self.last += 1
        return self.last


def _node_id(prefix: str, *parts: object) -> str:
    raw = ":".join(str(part) for part in parts).encode()
    return f"{prefix}_kwDO" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def _seconds(hours: float) -> int:
    return max(60, int(round(hours * 3600)))


def _lognormal_s(rng: random.Random, median_hours: float, sigma: float = STAGE_SIGMA) -> int:
    return _seconds(median_hours * math.exp(rng.gauss(0.0, sigma)))


def _at_seconds(moment: dt.datetime) -> dt.datetime:
    # GitHub timestamps have whole seconds; anything finer would not survive the API.
    return moment.replace(microsecond=0)


def _work_time(rng: random.Random, day: dt.datetime, first_hour: int = 8, last_hour: int = 19) -> dt.datetime:
    seconds = rng.randrange(first_hour * 3600, last_hour * 3600)
    return day + dt.timedelta(seconds=seconds)


def _is_weekend(moment: dt.datetime) -> bool:
    return moment.weekday() >= 5


def _weekday_in_week(rng: random.Random, week_start: dt.datetime) -> dt.datetime:
    """A day of the week, weekdays far more likely than the weekend."""
    weights = [1.0, 1.0, 1.0, 1.0, 0.9, 0.06, 0.04]
    day = rng.choices(range(7), weights=weights)[0]
    return week_start + day * DAY


@dataclass
class _Params:
    """A repository's typical stage durations (hours) and PR size."""

    coding_h: float
    pickup_h: float
    review_h: float
    size: float


def _repo_params(seed: int, index: int) -> _Params:
    rng = random.Random(f"{seed}:params:{index}")
    return _Params(
        coding_h=math.exp(rng.uniform(math.log(8), math.log(36))),
        pickup_h=math.exp(rng.uniform(math.log(2), math.log(7))),
        review_h=math.exp(rng.uniform(math.log(4), math.log(14))),
        size=math.exp(rng.uniform(math.log(60), math.log(220))),
    )


@dataclass
class _Plan:
    """A pull request before it becomes events.

    Backward plans (`anchor` = merge or close time) derive earlier times from the durations;
    forward plans (`anchor` = creation time) derive later ones and are cut at the clock.
    """

    kind: str  # human, bot, revert
    author: str | None
    anchor: dt.datetime
    backward: bool
    outcome: str  # merged, closed (forward plans end open when the clock stops first)
    coding_s: int
    draft_s: int | None  # None: never a draft
    pickup_s: int | None  # None: nobody but the author reviews
    review_s: int  # first review (or ready) to merge/close
    additions: int
    deletions: int
    n_commits: int
    extra_reviews: int
    self_review: bool
    author_comment: bool
    base_ref: str
    title: str = ""
    body: str = ""
    revert_of: _Plan | None = None
    revert_by_title: bool = False
    pr: PullRequest | None = None
    # Label events as (fraction of the pull request's life from creation to merge/close,
    # LABELED or UNLABELED, name); those after the clock have not happened yet.
    labels: list = field(default_factory=list)
    head_ref: str | None = None  # the head branch; None: "<author>/<slug>-<id>"
    fixes_incident: bool = False  # a fix-forward: its merge closes an incident (Fixes #n)
    # Trailer lines of its commits' messages, by commit position (AI evidence and near misses).
    trailers: dict[int, list[str]] = field(default_factory=dict)

    def times(self) -> dict[str, dt.datetime | None]:
        if self.backward:
            end = self.anchor
            first_review = end - dt.timedelta(seconds=self.review_s) if self.pickup_s is not None else None
            if self.pickup_s is not None:
                ready = first_review - dt.timedelta(seconds=self.pickup_s)
            else:
                ready = end - dt.timedelta(seconds=self.review_s)
            created = ready - dt.timedelta(seconds=self.draft_s) if self.draft_s is not None else ready
        else:
            created = self.anchor
            ready = created + dt.timedelta(seconds=self.draft_s) if self.draft_s is not None else created
            first_review = ready + dt.timedelta(seconds=self.pickup_s) if self.pickup_s is not None else None
            end = (first_review or ready) + dt.timedelta(seconds=self.review_s)
        return {
            "first_commit": created - dt.timedelta(seconds=self.coding_s),
            "created": created,
            "ready": ready if self.draft_s is not None else None,
            "first_review": first_review,
            "merged": end if self.outcome == "merged" else None,
            "closed": end,
        }


class _Builder:
    """Turns plans into model objects for one repository."""

    def __init__(self, org: Organization, repo: Repository, rng: random.Random, ids: _Ids,
                 members: list[str]):
        self.org = org
        self.repo = repo
        self.rng = rng
        self.ids = ids
        self.members = members
        self.titles = {pr.title for pr in repo.pull_requests}

    # -- people -------------------------------------------------------------------------
    def human(self) -> str | None:
        if self.rng.random() < 0.03:
            return None  # a deleted account: GitHub's ghost
        return self.rng.choice(self.members)

    def reviewer(self, author: str | None) -> str | None:
        if self.rng.random() < 0.04:
            return None
        others = [m for m in self.members if m != author]
        return self.rng.choice(others or self.members)

    def _identity(self, login: str | None) -> tuple[str, str]:
        if login is None:
            return "Former Employee", "former.employee@example.com"
        user = self.org.users.get(login)
        return (user.name if user else login), f"{login}@users.noreply.github.com"

    # -- titles -------------------------------------------------------------------------
    def title(self) -> str:
        rng = self.rng
        for attempt in range(30):
            if rng.random() < 0.07:
                base = rng.choice(UNICODE_TITLES)
            else:
                base = f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(CONTEXTS)}"
            title = base if attempt < 10 else f"{base} (part {attempt - 8})"
            if title not in self.titles:
                self.titles.add(title)
                return title
        raise AssertionError("unreachable: titles exhausted")

    def bot_title(self) -> str:
        for _ in range(50):
            package = self.rng.choice(BOT_PACKAGES)
            major = self.rng.randint(1, 9)
            minor = self.rng.randint(0, 40)
            title = f"Bump {package} from {major}.{minor}.0 to {major}.{minor}.{self.rng.randint(1, 9)}"
            if title not in self.titles:
                self.titles.add(title)
                return title
        raise AssertionError("unreachable: bot titles exhausted")

    # -- pull requests ------------------------------------------------------------------
    def plan(self, params: _Params, anchor: dt.datetime, *, backward: bool, outcome: str = "merged",
             kind: str = "human") -> _Plan:
        rng = self.rng
        if kind == "bot":
            author = rng.choice([login for login, _ in BOTS[:2]])
            size = max(2, int(rng.lognormvariate(math.log(12), 0.6)))
            additions = max(1, size // 2)
            return _Plan(
                kind="bot", author=author, anchor=anchor, backward=backward, outcome=outcome,
                coding_s=rng.randint(20, 240), draft_s=None,
                pickup_s=_lognormal_s(rng, 8.0, 0.6) if rng.random() < 0.85 else None,
                review_s=_lognormal_s(rng, 1.0, 0.6), additions=additions,
                deletions=size - additions, n_commits=1, extra_reviews=0, self_review=False,
                author_comment=False, base_ref=self.repo.default_branch,
                title=self.bot_title(),
                body="Bumps the dependency.\n\nDependabot will resolve any conflicts with this PR.",
            )
        author = self.human()
        size = max(2, int(round(params.size * math.exp(rng.gauss(0.0, 0.35)))))
        additions = max(1, int(round(size * rng.uniform(0.55, 0.85))))
        n_commits = 1
        while n_commits < 15 and rng.random() < 0.6:
            n_commits += 1
        draft_s = _lognormal_s(rng, 10.0, 0.8) if rng.random() < 0.15 else None
        return _Plan(
            kind=kind, author=author, anchor=anchor, backward=backward, outcome=outcome,
            coding_s=_lognormal_s(rng, params.coding_h),
            draft_s=draft_s,
            pickup_s=_lognormal_s(rng, params.pickup_h) if rng.random() < 0.92 else None,
            review_s=_lognormal_s(rng, params.review_h),
            additions=additions, deletions=max(0, size - additions), n_commits=n_commits,
            extra_reviews=rng.choices([0, 1, 2], weights=[4, 4, 2])[0],
            self_review=author is not None and rng.random() < 0.1,
            author_comment=author is not None and rng.random() < 0.25,
            base_ref=self.repo.default_branch,
        )

    def materialize(self, plan: _Plan, cutoff: dt.datetime) -> PullRequest:
        """Events of a plan up to `cutoff`; later ones have not happened yet."""
        rng = self.rng
        t = {k: (_at_seconds(v) if v is not None else None) for k, v in plan.times().items()}
        created = t["created"]
        end = t["closed"]
        if plan.kind == "revert" and plan.revert_of is not None and plan.revert_of.pr is not None:
            target = plan.revert_of.pr
            plan.title = f'Revert "{target.title}"'
            if plan.revert_by_title:
                plan.body = "Rolling this back: it broke checkout for some customers."
            else:
                plan.body = f"This reverts commit {target.commits[-1].sha}."
        if not plan.title:
            plan.title = self.title()
        if not plan.body:
            plan.body = rng.choice([
                "",
                "Closes a long-standing TODO.",
                "See the linked issue for context.\n\n- [x] tests\n- [x] docs",
                "Small change; should be safe to merge.",
            ])
        if plan.kind == "revert":
            self.titles.add(plan.title)
        author_name, author_email = self._identity(plan.author)
        slug = plan.title.split(" ")[0].lower().strip('"') or "change"
        db_id = self.ids.next()
        pr = PullRequest(
            node_id="",  # set when numbers are assigned
            database_id=db_id,
            number=0,
            title=plan.title,
            body=plan.body,
            author_login=plan.author,
            created_at=created,
            updated_at=created,
            base_ref=plan.base_ref,
            head_ref=plan.head_ref or f"{plan.author or 'ghost'}/{slug}-{db_id}",
            additions=plan.additions,
            deletions=plan.deletions,
            changed_files=max(1, round((plan.additions + plan.deletions) / rng.uniform(15, 40))),
        )
        # Commits: the first at the first-commit time, the rest spread up to just before the end.
        first = t["first_commit"]
        last_commit_at = max(first + dt.timedelta(seconds=1), end - dt.timedelta(minutes=10))
        span = (last_commit_at - first).total_seconds()
        offsets = sorted([0.0] + [rng.random() * span for _ in range(plan.n_commits - 1)])
        adds = _split(rng, plan.additions, plan.n_commits)
        dels = _split(rng, plan.deletions, plan.n_commits)
        for i, offset in enumerate(offsets):
            authored = _at_seconds(first + dt.timedelta(seconds=offset))
            committed = min(end, authored + dt.timedelta(seconds=rng.randint(0, 300))) if i else authored
            if committed > cutoff:
                break
            headline = plan.title if i == 0 else COMMIT_HEADLINES[i % len(COMMIT_HEADLINES)]
            trailers = plan.trailers.get(i)
            pr.commits.append(Commit(
                sha=_sha(rng), authored_at=authored, committed_at=committed,
                additions=adds[i], deletions=dels[i], author_login=plan.author,
                author_name=author_name, author_email=author_email,
                message=f"{headline}\n\n" + "\n".join(trailers) if trailers else headline,
            ))
        ready = t["ready"]
        start_review = ready or created
        if plan.draft_s is not None:
            if ready is not None and ready <= cutoff:
                pr.ready_for_review_at = ready
            else:
                pr.is_draft = True
        first_review = t["first_review"]
        if first_review is not None and first_review <= cutoff and not pr.is_draft:
            reviewer = self.reviewer(plan.author)
            state = rng.choices(["APPROVED", "CHANGES_REQUESTED", "COMMENTED"], weights=[5, 3, 2])[0]
            self._review(pr, reviewer, state, first_review)
            window = (end - first_review).total_seconds()
            for k in range(plan.extra_reviews):
                when = first_review + dt.timedelta(seconds=max(1, int(window * (k + 1) / (plan.extra_reviews + 2))))
                if when <= cutoff:
                    other = reviewer if rng.random() < 0.6 else self.reviewer(plan.author)
                    self._review(pr, other, rng.choice(["COMMENTED", "CHANGES_REQUESTED", "APPROVED"]), when)
            if plan.outcome == "merged" and state != "APPROVED":
                when = end - dt.timedelta(seconds=min(600, max(1, int(window / 10))))
                if when <= cutoff and when > first_review:
                    self._review(pr, reviewer, "APPROVED", when)
            if rng.random() < 0.3:
                when = first_review + dt.timedelta(seconds=max(1, int(window / 3)))
                if when <= cutoff:
                    self._comment(pr, reviewer, when, "Could we add a test for the empty case?")
        if plan.self_review and plan.author is not None:
            # Before anybody else looks: must never count as pickup.
            gap = ((first_review or end) - start_review).total_seconds()
            when = start_review + dt.timedelta(seconds=max(1, int(gap * rng.uniform(0.2, 0.8))))
            if when <= cutoff and not pr.is_draft:
                self._review(pr, plan.author, "COMMENTED", when)
        if plan.author_comment and plan.author is not None:
            gap = ((first_review or end) - created).total_seconds()
            when = created + dt.timedelta(seconds=max(1, int(gap * rng.uniform(0.1, 0.7))))
            if when <= cutoff:
                self._comment(pr, plan.author, when, "Ready for a look when someone has time 🙏")
        if not pr.is_draft and end <= cutoff:
            pr.closed_at = end
            if plan.outcome == "merged":
                pr.merged_at = end
                if first_review is not None and rng.random() < 0.03:
                    # A late look after the merge; never the first review (that would be noise
                    # of 10x in a week's pickup median).
                    late = end + dt.timedelta(hours=rng.uniform(1, 72))
                    if late <= cutoff:
                        self._review(pr, self.reviewer(plan.author), "COMMENTED", _at_seconds(late))
        pr.reviews.sort(key=lambda r: (r.submitted_at, r.database_id))
        pr.comments.sort(key=lambda c: (c.created_at, c.database_id))
        if plan.labels:
            life = end - created
            events = [LabelEvent(_at_seconds(created + life * fraction), kind, name) for fraction, kind, name in plan.labels]
            # Stable: events at the same second keep the plan's order.
            pr.label_events = sorted((e for e in events if e.created_at <= cutoff), key=lambda e: e.created_at)
            pr.labels = replay_labels(pr.label_events)
        refresh_pull_request(pr)
        plan.pr = pr
        self.repo.pull_requests.append(pr)
        return pr

    def _review(self, pr: PullRequest, login: str | None, state: str, when: dt.datetime) -> Review:
        db_id = self.ids.next()
        review = Review(
            node_id=_node_id("PRR", self.repo.full_name, db_id), database_id=db_id,
            author_login=login, state=state, submitted_at=_at_seconds(when),
            # A review is started (created) a little before it is submitted, never before the PR.
            created_at=max(pr.created_at, _at_seconds(when) - dt.timedelta(seconds=self.rng.randint(0, 900))),
        )
        pr.reviews.append(review)
        return review

    def _comment(self, pr: PullRequest, login: str | None, when: dt.datetime, body: str) -> IssueComment:
        db_id = self.ids.next()
        comment = IssueComment(
            node_id=_node_id("IC", self.repo.full_name, db_id), database_id=db_id,
            author_login=login, created_at=_at_seconds(when), body=body,
        )
        pr.comments.append(comment)
        return comment

    # -- deployments ----------------------------------------------------------------------
    def head_sha(self, when: dt.datetime) -> str:
        merged = sorted(
            (pr.merged_at, pr.commits[-1].sha)
            for pr in self.repo.pull_requests
            if pr.merged_at is not None and pr.commits and pr.base_ref == self.repo.default_branch
        )
        i = bisect.bisect_right([m for m, _ in merged], when)
        return merged[i - 1][1] if i else _sha(self.rng)

    def deployment(self, environment: str, when: dt.datetime, outcome: str,
                   creator: str | None) -> Deployment:
        """A GitHub deployment whose last status (`outcome`) is at `when`."""
        rng = self.rng
        db_id = self.ids.next()
        created = when - dt.timedelta(seconds=rng.randint(120, 900))
        dep = Deployment(
            node_id=_node_id("DE", self.repo.full_name, db_id), database_id=db_id,
            environment=environment, sha=self.head_sha(created), ref=self.repo.default_branch,
            creator_login=creator, created_at=created, updated_at=created,
        )
        self._status(dep, "PENDING", created)
        if outcome == "pending":
            if rng.random() < 0.5:
                self._status(dep, "QUEUED", created + dt.timedelta(seconds=5))
        else:
            self._status(dep, "IN_PROGRESS", created + dt.timedelta(seconds=30))
            final = {"success": "SUCCESS", "failure": "FAILURE", "error": "ERROR"}[outcome]
            if final == "SUCCESS":
                # A newer success in the environment makes the previous one inactive.
                for previous in reversed(self.repo.deployments):
                    if previous.environment == environment and previous.statuses \
                            and previous.statuses[-1].state == "SUCCESS" \
                            and previous.statuses[-1].created_at < _at_seconds(when):
                        self._status(previous, "INACTIVE", when)
                        break
            self._status(dep, final, when)
        self.repo.deployments.append(dep)
        return dep

    def _status(self, dep: Deployment, state: str, when: dt.datetime) -> None:
        db_id = self.ids.next()
        dep.statuses.append(DeploymentStatus(
            node_id=_node_id("DES", self.repo.full_name, db_id), database_id=db_id,
            state=state, created_at=_at_seconds(when),
        ))
        dep.updated_at = max(dep.updated_at, _at_seconds(when))

    def run(self, name: str, workflow_id: int, branch: str, event: str, when: dt.datetime,
            conclusion: str | None, sha: str | None = None) -> WorkflowRun:
        """A workflow run that completes at `when` (or is still running when conclusion is None)."""
        rng = self.rng
        created = when - dt.timedelta(seconds=rng.randint(90, 600))
        run = WorkflowRun(
            database_id=self.ids.next(), name=name, workflow_id=workflow_id, head_branch=branch,
            head_sha=sha or self.head_sha(created), event=event,
            status="completed" if conclusion else "in_progress", conclusion=conclusion,
            run_attempt=1, created_at=created,
            run_started_at=created + dt.timedelta(seconds=rng.randint(2, 20)),
            updated_at=when if conclusion else created + dt.timedelta(seconds=25),
        )
        self.repo.workflow_runs.append(run)
        return run

    def release(self, tag: str, when: dt.datetime, *, draft: bool = False, prerelease: bool = False,
                author: str | None = None) -> Release:
        db_id = self.ids.next()
        rel = Release(
            node_id=_node_id("RE", self.repo.full_name, db_id), database_id=db_id,
            name=tag if self.rng.random() < 0.7 else f"{tag} — {self.rng.choice(OBJECTS)}",
            tag_name=tag, is_draft=draft, is_prerelease=prerelease,
            created_at=when - dt.timedelta(seconds=self.rng.randint(60, 1800)),
            published_at=None if draft else when, author_login=author,
        )
        self.repo.releases.append(rel)
        return rel

    # -- issues -----------------------------------------------------------------------------
    def issue(self, title: str, labels: list[str], created: dt.datetime, closed: dt.datetime | None,
              author: str | None) -> Issue:
        db_id = self.ids.next()
        issue = Issue(
            node_id="", database_id=db_id, number=0, title=title,
            body="Reported via the on-call rotation." if labels else "",
            author_login=author, created_at=created, updated_at=closed or created,
            closed_at=closed, labels=list(labels),
        )
        self.repo.issues.append(issue)
        return issue


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    weights = [rng.random() + 0.05 for _ in range(parts)]
    scale = total / sum(weights)
    values = [int(w * scale) for w in weights]
    values[0] += total - sum(values)
    return values


def _poisson(rng: random.Random, mean: float) -> int:
    limit, n, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        n += 1
        product *= rng.random()
    return n


def refresh_pull_request(pr: PullRequest) -> None:
    """updated_at = the latest event on the pull request."""
    moments = [pr.created_at]
    moments += [c.committed_at for c in pr.commits]
    moments += [r.submitted_at or r.created_at for r in pr.reviews]
    moments += [c.created_at for c in pr.comments]
    moments += [m for m in (pr.ready_for_review_at, pr.merged_at, pr.closed_at) if m is not None]
    moments += [event.created_at for event in pr.label_events]
    pr.updated_at = max(moments)


def _refresh_repository(repo: Repository) -> None:
    commits = [c.committed_at for pr in repo.pull_requests for c in pr.commits]
    moments = [repo.created_at] + commits
    repo.pushed_at = max(moments)
    moments += [pr.updated_at for pr in repo.pull_requests] + [i.updated_at for i in repo.issues]
    moments += [d.updated_at for d in repo.deployments] + [r.created_at for r in repo.releases]
    repo.updated_at = max(moments)


def _number_new_items(repo: Repository) -> None:
    """Issues and pull requests share one number sequence per repository, in creation order."""
    last = max([p.number for p in repo.pull_requests] + [i.number for i in repo.issues] + [0])
    fresh = [p for p in repo.pull_requests if p.number == 0] + [i for i in repo.issues if i.number == 0]
    fresh.sort(key=lambda item: (item.created_at, item.database_id))
    for item in fresh:
        last += 1
        item.number = last
        prefix = "PR" if isinstance(item, PullRequest) else "I"
        item.node_id = _node_id(prefix, repo.full_name, last)
    repo.pull_requests.sort(key=lambda p: p.number)
    repo.issues.sort(key=lambda i: i.number)


def _spread(rng: random.Random, total: int, weeks: int) -> list[int]:
    """`total` items over `weeks` with little week-to-week variation."""
    base = total / weeks
    offset = rng.random()
    counts = [math.floor((w + 1) * base + offset) - math.floor(w * base + offset) for w in range(weeks)]
    low, high = max(1, math.floor(base) - 1), math.ceil(base) + 1
    for _ in range(weeks // 4):
        a = rng.randrange(weeks)
        b = a + 1 if a + 1 < weeks else a - 1
        if b >= 0 and counts[a] > low and counts[b] < high:
            counts[a] -= 1
            counts[b] += 1
    return counts


def _deploy_plan(rng: random.Random, style: str, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, str]]:
    """(time, outcome) of the repository's production shipping events in [start, end).

    Outcomes success/failure/error count as deployments; pending/cancelled/draft/prerelease
    are there to be ignored.
    """
    plan: list[tuple[dt.datetime, str]] = []
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        weekend = day.weekday() >= 5
        if style in ("github_deployments", "workflow_runs"):
            n = 0
            if weekend:
                n = 1 if rng.random() < 0.04 else 0
            else:
                n = (1 if rng.random() < 0.92 else 0) + (1 if rng.random() < 0.15 else 0)
            for k in range(n):
                when = _work_time(rng, day, 9 + 5 * k, 14 + 4 * k)
                if style == "github_deployments":
                    outcome = rng.choices(["success", "failure", "error", "pending"], weights=[90, 5, 2, 2])[0]
                else:
                    outcome = rng.choices(["success", "failure", "cancelled"], weights=[89, 7, 4])[0]
                plan.append((when, outcome))
        elif style == "releases":
            if day.weekday() in (0, 2, 4) and rng.random() < 0.88:
                plan.append((_work_time(rng, day, 10, 16), "success"))
            if day.weekday() == 1 and rng.random() < 0.12:
                plan.append((_work_time(rng, day, 10, 16), "prerelease"))
            if day.weekday() == 3 and rng.random() < 0.06:
                plan.append((_work_time(rng, day, 10, 16), "draft"))
        day += DAY
    if end - start >= dt.timedelta(days=14):
        # A history long enough shows every kind of event the metrics must handle.
        required = {"github_deployments": ("failure", "error", "pending"),
                    "workflow_runs": ("failure", "cancelled"),
                    "releases": ("prerelease", "draft")}.get(style, ())
        for outcome in required:
            if not any(o == outcome for _, o in plan):
                day = start.replace(hour=0, minute=0, second=0, microsecond=0) + rng.randint(2, (end - start).days - 2) * DAY
                if day.weekday() >= 5:
                    day -= 2 * DAY
                plan.append((_work_time(rng, day, 19, 21), outcome))
    plan.sort(key=lambda e: e[0])
    plan = [(when, outcome) for when, outcome in plan if start < when < end]
    # Every failed deployment recovers: a success follows it before the clock (a redeploy of
    # the fix 40 minutes later when no later deployment succeeds).
    last_success = max((when for when, outcome in plan if outcome == "success"), default=None)
    failures = [when for when, outcome in plan if outcome in ("failure", "error")]
    if failures and (last_success is None or last_success < failures[-1]):
        recovery = failures[-1] + dt.timedelta(minutes=40)
        if recovery < end:
            plan.append((recovery, "success"))
            plan.sort(key=lambda e: e[0])
    return plan


COUNTED = ("success", "failure", "error")


def generate(seed: int, repos: int = 6, prs_per_repo: int = 150, weeks: int = 26, users: int = 14,
             owner: str = "acme", styles: list[str] | None = None, *,
             inject_anomalies: bool = True) -> Organization:
    """A synthetic organisation whose history spans `weeks` weeks before `ANCHOR`.

    `inject_anomalies=False` gives the same organisation without the injected anomalies (the
    randomness of everything else is drawn apart from them), which lets tests measure what an
    anomaly did.
    """
    if repos < 1 or prs_per_repo < 10 or weeks < 2 or users < 3:
        raise ValueError(
            "generate needs repos >= 1, prs_per_repo >= 10, weeks >= 2 and users >= 3; "
            f"got repos={repos}, prs_per_repo={prs_per_repo}, weeks={weeks}, users={users}"
        )
    for style in styles or []:
        if style not in STYLES:
            raise ValueError(f"unknown deployment style {style!r}: use one of {', '.join(STYLES)}")
    rng = random.Random(f"{seed}:org")
    org = Organization(login=owner, now=ANCHOR, seed=seed)
    ids = _Ids(1000)
    for i in range(users):
        login, name = HUMANS[i % len(HUMANS)]
        if i >= len(HUMANS):
            login, name = f"{login}{i // len(HUMANS) + 1}", f"{name} {i // len(HUMANS) + 1}"
        db_id = ids.next()
        org.users[login] = User(login=login, name=name, node_id=_node_id("U", login), database_id=db_id)
    for login, name in BOTS:
        db_id = ids.next()
        org.users[login] = User(login=login, name=name, node_id=_node_id("BOT", login),
                                database_id=db_id, is_bot=True)
    start = ANCHOR - weeks * WEEK
    style_cycle = list(styles) if styles else list(STYLES)
    for i in range(repos):
        name = REPO_NAMES[i % len(REPO_NAMES)]
        if i >= len(REPO_NAMES):
            name = f"{name}-{i // len(REPO_NAMES) + 1}"
        style = style_cycle[i % len(style_cycle)]
        full = f"{owner}/{name}"
        created = start - dt.timedelta(days=90 + 7 * i)
        org.repositories.append(Repository(
            node_id=_node_id("R", full), database_id=ids.next(), owner=owner, name=name,
            default_branch="master" if i % 5 == 3 else "main", created_at=created,
            updated_at=created, pushed_at=created, deployment_style=style,
            is_private=i % 3 == 1,
        ))
    humans = [login for login, user in org.users.items() if not user.is_bot]
    repo_names = [repo.full_name for repo in org.repositories]
    members_of: dict[str, list[str]] = {full: [] for full in repo_names}
    for u, login in enumerate(humans):
        chosen = {u % repos}
        extra = rng.randint(0, min(3, repos - 1))
        chosen.update(rng.sample(range(repos), extra))
        for r in sorted(chosen):
            members_of[repo_names[r]].append(login)
    for full in repo_names:
        while len(members_of[full]) < min(3, len(humans)):
            candidate = rng.choice(humans)
            if candidate not in members_of[full]:
                members_of[full].append(candidate)
    for login in humans:
        org.memberships[login] = [full for full in repo_names if login in members_of[full]]
    for login, name in AI_AGENTS:
        # Database ids after the history's: the rest of the organisation keeps its ids.
        org.users[login] = User(login=login, name=name, node_id=_node_id("BOT", login), database_id=0, is_bot=True)
    for i, repo in enumerate(org.repositories):
        _generate_history(org, repo, i, ids, prs_per_repo, weeks, sorted(members_of[repo.full_name]),
                          inject_anomalies)
    for login, _ in AI_AGENTS:
        org.users[login].database_id = ids.next()
    return org


def _generate_history(org: Organization, repo: Repository, index: int, ids: _Ids, prs: int,
                      weeks: int, members: list[str], inject_anomalies: bool) -> None:
    rng = random.Random(f"{org.seed}:repo:{index}")
    params = _repo_params(org.seed, index)
    b = _Builder(org, repo, rng, ids, members)
    start = org.now - weeks * WEEK
    week_starts = [start + w * WEEK for w in range(weeks)]

    n_bot = max(1, round(prs * 0.06))
    n_closed = max(1, round(prs * 0.07))
    n_open = max(2, round(prs * 0.03))
    n_merged = max(4, prs - n_bot - n_closed - n_open)

    plans: list[_Plan] = []
    for w, count in enumerate(_spread(rng, n_merged, weeks)):
        for _ in range(count):
            day = _weekday_in_week(rng, week_starts[w])
            plans.append(_weekday_plan(b, params, _work_time(rng, day)))
    for _ in range(n_closed):
        day = _weekday_in_week(rng, rng.choice(week_starts))
        plans.append(_weekday_plan(b, params, _work_time(rng, day), outcome="closed"))
    for _ in range(n_bot):
        day = start + rng.randrange(weeks * 7) * DAY
        outcome = "merged" if rng.random() < 0.8 else "closed"
        plans.append(b.plan(params, _work_time(rng, day, 6, 12), backward=True, outcome=outcome, kind="bot"))
    for k in range(n_open):
        # Created in the last days: those still in flight at the clock stay open.
        day = org.now - rng.randint(1, 3) * DAY
        plan = b.plan(params, _work_time(rng, day), backward=False)
        if k == 0:
            plan.draft_s = 60 * 24 * 3600  # still a draft at the clock
        end = plan.times()["closed"]
        if end <= org.now:
            # Still waiting at the clock: advance() merges or closes it later.
            plan.review_s += int((org.now - end).total_seconds()) + rng.randint(3600, 3 * 86400)
        plans.append(plan)
    merged_human = sorted((p for p in plans if p.backward and p.outcome == "merged" and p.kind == "human"),
                          key=lambda p: p.anchor)
    if index == 0 and len(merged_human) > 10:
        # Pagination overflow: GraphQL nests only 25 reviews and commits per pull request.
        merged_human[3].extra_reviews = 29
        merged_human[3].pickup_s = merged_human[3].pickup_s or _lognormal_s(rng, params.pickup_h)
        merged_human[5].n_commits = 120
        merged_human[7].title = "Revert the cache TTL tweak"  # says Revert, but reverts nothing
        merged_human[7].body = "We decided to keep the old TTL after all."
        merged_human[8].base_ref = "release/2026.1"  # merged, but not into the default branch
    # Reverts: a later merged PR undoes one merged a few hours or days before.
    n_reverts = max(1, round(weeks / 8))
    candidates = merged_human[10:]
    rng.shuffle(candidates)
    merged_any = sorted((p for p in plans if p.backward and p.outcome == "merged"), key=lambda p: p.anchor)
    made = 0
    for q in candidates:
        if made >= n_reverts:
            break
        if q.title or q.extra_reviews > 25 or q.n_commits > 100:
            continue
        targets = [p for p in merged_any if p is not q and p.revert_of is None and p.kind != "revert"
                   and dt.timedelta(minutes=30) <= q.anchor - p.anchor <= dt.timedelta(hours=72)
                   and p.base_ref == repo.default_branch and not p.title.startswith("Revert")]
        if not targets:
            continue
        q.kind = "revert"
        q.revert_of = rng.choice(targets)
        q.revert_by_title = index == 0 and made == 0
        made += 1
    # Labels, hotfixes and fix-forwards of incidents, from their own generator: the rest of
    # the history is the one it would be without them.
    drng = random.Random(f"{org.seed}:rework:{index}")
    reserved = merged_human[3:9] if index == 0 and len(merged_human) > 10 else []
    fixes, revert_closer = _plan_rework(b, drng, plans, merged_human, reserved, week_starts, org.now, weeks, index)

    # AI assistance from its own generator too, before the anomalies (which then move the
    # AI-assisted pull requests of a week like the others).
    arng = random.Random(f"{org.seed}:ai:{index}")
    _plan_ai(arng, plans, reserved, week_starts)

    deploy_events = _deploy_plan(rng, repo.deployment_style, start, org.now)
    if inject_anomalies:
        _inject_anomalies(org, repo, random.Random(f"{org.seed}:anomalies:{index}"), plans,
                          deploy_events, week_starts, weeks)
    plans += _plan_agents(b, arng, params, week_starts, org.now)

    for plan in sorted(plans, key=lambda p: (p.anchor, p.backward)):
        if plan.fixes_incident or plan.kind == "agent":
            # new pull requests draw from their own generators only
            b.rng = drng if plan.fixes_incident else arng
            b.materialize(plan, org.now)
            b.rng = rng
        else:
            b.materialize(plan, org.now)
    _materialize_deployments(b, deploy_events, start, org.now)
    known = len(repo.issues)
    _generate_issues(b, start, org.now, weeks)
    links = _close_incidents_by_pull_requests(b, drng, fixes, revert_closer, repo.issues[known:], start)
    _number_new_items(repo)
    for issue, pr in links:
        issue.closed_by_pull_request = pr.node_id
        if REVERT_BODY.search(pr.body):
            pr.body = f"{pr.body}\n\nFixes #{issue.number}"
        else:
            intro = drng.choice(FIX_BODIES)
            pr.body = f"{intro}\n\nFixes #{issue.number}" if intro else f"Fixes #{issue.number}"
    _refresh_repository(repo)


REVERT_BODY = re.compile(r"This reverts commit [0-9a-f]{7,40}")


def ai_share(position: float) -> float:
    """The adoption curve: the chance that a pull request at `position` (0 = the history's
    first week, 1 = its last) is AI-assisted."""
    steep = AI_SHARE_STEEPNESS * (position - AI_SHARE_MIDPOINT)
    return AI_SHARE_LOW + AI_SHARE_HIGH / (1.0 + math.exp(-steep))


def _assist(rng: random.Random, plan: _Plan, share: float) -> None:
    """Makes `plan` AI-assisted with chance `share` (an AI co-author, a Made-with-style trailer,
    a label, or several), and adds near misses to others: human co-authors, trailers that name
    no AI tool, labels about AI. An AI-assisted pull request is coded faster, larger, and a
    little more often a hotfix."""
    if rng.random() < share:
        evidence = rng.choices(["co_author", "trailer", "label", "co_author_label"], weights=[55, 20, 15, 10])[0]
        commit = rng.randrange(plan.n_commits)
        if evidence.startswith("co_author"):
            name, email = rng.choice(AI_CO_AUTHORS)
            plan.trailers.setdefault(commit, []).append(f"Co-authored-by: {name} <{email}>")
        if evidence == "trailer":
            plan.trailers.setdefault(commit, []).append(rng.choice(AI_TRAILERS))
        if evidence.endswith("label"):
            plan.labels.append((0.0, LABELED, rng.choice(AI_LABELS)))
        plan.coding_s = max(60, int(plan.coding_s * 0.55))
        plan.additions = int(round(plan.additions * 1.4))
        plan.deletions = int(round(plan.deletions * 1.4))
        if rng.random() < 0.05 and plan.outcome == "merged":
            plan.labels.append((0.0, LABELED, rng.choice(HOTFIX_LABELS)))
    roll = rng.random()
    if roll < 0.08:
        name, email = rng.choice(HUMAN_CO_AUTHORS)
        # Before any AI trailer of the same commit: the first trailer is not always the one.
        plan.trailers.setdefault(rng.randrange(plan.n_commits), []).insert(0, f"Co-authored-by: {name} <{email}>")
    elif roll < 0.11:
        plan.trailers.setdefault(rng.randrange(plan.n_commits), []).append(rng.choice(NOT_AI_TRAILERS))
    elif roll < 0.12:
        plan.labels.append((0.0, LABELED, rng.choice(NOT_AI_LABELS)))


def _plan_ai(rng: random.Random, plans: list[_Plan], reserved: list[_Plan], week_starts: list[dt.datetime]) -> None:
    """AI assistance of the history's pull requests by people, along the adoption curve."""
    skip = {id(p) for p in reserved}
    first, span = week_starts[0], max(WEEK, week_starts[-1] - week_starts[0])
    eligible = [p for p in plans if p.kind == "human" and not p.fixes_incident and id(p) not in skip]
    for plan in eligible:
        position = min(1.0, max(0.0, (plan.anchor - first) / span))
        _assist(rng, plan, ai_share(position))
    # Every repository has a person named Claude among its co-authors, on its first merged one.
    merged = [p for p in eligible if p.outcome == "merged" and p.backward]
    if merged:
        name, email = HUMAN_CO_AUTHORS[1]
        min(merged, key=lambda p: p.anchor).trailers.setdefault(0, []).insert(0, f"Co-authored-by: {name} <{email}>")


def _plan_agents(b: _Builder, rng: random.Random, params: _Params, week_starts: list[dt.datetime],
                 end: dt.datetime) -> list[_Plan]:
    """Pull requests authored by AI agent accounts, more of them as adoption grows: merged
    after a person's review, their commits co-authored by the person who assigned the task."""
    out = []
    for w, week in enumerate(week_starts):
        if rng.random() >= 0.6 * ai_share(w / max(1, len(week_starts) - 1)):
            continue
        anchor = _work_time(rng, week + rng.randrange(5) * DAY, 10, 18)
        if anchor >= end - dt.timedelta(hours=1):
            continue
        login, _ = rng.choice(AI_AGENTS)
        assigner = rng.choice(b.members)
        size = max(4, int(round(params.size * 1.5 * math.exp(rng.gauss(0.0, 0.35)))))
        additions = max(1, int(size * 0.75))
        n_commits = rng.randint(1, 4)
        user = b.org.users.get(assigner)
        out.append(_Plan(
            kind="agent", author=login, anchor=anchor, backward=True, outcome="merged",
            coding_s=_lognormal_s(rng, 0.5, 0.5), draft_s=_lognormal_s(rng, 0.3, 0.5),
            pickup_s=_lognormal_s(rng, params.pickup_h), review_s=_lognormal_s(rng, params.review_h),
            additions=additions, deletions=size - additions, n_commits=n_commits, extra_reviews=0,
            self_review=False, author_comment=False, base_ref=b.repo.default_branch,
            trailers={k: [f"Co-authored-by: {user.name if user else assigner} <{assigner}@users.noreply.github.com>"]
                      for k in range(n_commits)},
        ))
    return out


def _plan_rework(b: _Builder, rng: random.Random, plans: list[_Plan], merged_human: list[_Plan],
                 reserved: list[_Plan], week_starts: list[dt.datetime], end: dt.datetime, weeks: int,
                 index: int) -> tuple[list[_Plan], _Plan | None]:
    """What docs/dora.md's rework and recovery rules read: pull-request labels (a few feature
    or chore labels, hotfix labels in several spellings, some added and removed again), hotfix
    head branches, near misses of both, and fix-forward pull requests of incidents (new plans,
    merged within hours) plus one revert that closes an incident. Returns (fix plans, the
    revert that closes an incident or None); the incidents are linked once issues exist."""
    repo = b.repo
    for plan in plans:
        if plan.kind == "bot":
            plan.labels.append((0.0, LABELED, "dependencies"))
        elif rng.random() < 0.15:
            late = plan.backward and rng.random() < 0.3
            plan.labels.append((rng.uniform(0.1, 0.6) if late else 0.0, LABELED, rng.choice(PR_LABELS)))
    slugs = list(HOTFIX_SLUGS)
    rng.shuffle(slugs)
    used: set[str] = set()

    def branch(pattern: str) -> str:
        name = pattern.format(slugs[len(used) % len(slugs)])
        while name in used:
            name += "-2"
        used.add(name)
        return name

    skip = {id(p) for p in reserved}
    eligible = [p for p in merged_human if p.kind == "human" and id(p) not in skip and p.base_ref == repo.default_branch]
    rng.shuffle(eligible)
    n_hot = max(1, round(len(merged_human) * 0.025))
    n_near = max(1, round(len(merged_human) * 0.015))
    for k, plan in enumerate(eligible[:n_hot]):
        variant = (k + index) % 3
        if variant == 0:
            plan.labels.append((0.0, LABELED, rng.choice(HOTFIX_LABELS)))
        elif variant == 1:
            plan.head_ref = branch(rng.choice(HOTFIX_BRANCHES))
        else:  # added, removed, added again: only the replay of the events says it is one now
            name = rng.choice(HOTFIX_LABELS)
            plan.labels += [(0.05, LABELED, name), (0.3, UNLABELED, name), (0.7, LABELED, name)]
    for k, plan in enumerate(eligible[n_hot:n_hot + n_near]):
        variant = (k + index) % 3
        if variant == 0:  # a hotfix label added, then removed: not a hotfix
            name = rng.choice(HOTFIX_LABELS)
            plan.labels += [(0.1, LABELED, name), (0.5, UNLABELED, name)]
        elif variant == 1:
            plan.head_ref = branch(rng.choice(NOT_HOTFIX_BRANCHES))
        else:
            plan.labels.append((0.0, LABELED, rng.choice(NOT_HOTFIX_LABELS)))
    if reserved:
        # More timeline events than the pull-request page nests (25): the client pages the rest.
        plan = merged_human[4]
        for k in range(13):
            plan.labels += [(0.02 + 0.06 * k, LABELED, "needs-rebase"), (0.05 + 0.06 * k, UNLABELED, "needs-rebase")]
        plan.labels.append((0.85, LABELED, "hotfix"))

    # Incidents closed by a merged pull request: fix-forwards, and a revert; one incident at
    # least stays closed by hand (as _generate_issues will make about this many).
    n_incidents = max(1, round(weeks / 3))
    spare = n_incidents - 1
    revert_closer = None
    if spare >= 2:
        reverts = sorted((p for p in plans if p.kind == "revert" and not p.revert_by_title and p.revert_of),
                         key=lambda p: p.anchor)
        revert_closer = reverts[0] if reverts else None
    n_fix = min(spare - (revert_closer is not None), max(1, round(n_incidents * 0.3)))
    fixes = []
    for k in range(max(0, n_fix)):
        day = week_starts[rng.randrange(1, weeks)] + rng.randrange(5) * DAY
        anchor = _work_time(rng, day, 11, 18)
        title = rng.choice(FIX_TITLES)
        while title in b.titles:
            title += " (again)"
        size = max(4, int(rng.lognormvariate(math.log(30), 0.6)))
        additions = max(1, int(size * 0.7))
        plan = _Plan(
            kind="human", author=rng.choice(b.members), anchor=anchor, backward=True, outcome="merged",
            coding_s=_lognormal_s(rng, 1.0, 0.5), draft_s=None, pickup_s=_lognormal_s(rng, 0.4, 0.5),
            review_s=_lognormal_s(rng, 0.7, 0.5), additions=additions, deletions=size - additions,
            n_commits=rng.randint(1, 3), extra_reviews=0, self_review=False, author_comment=False,
            base_ref=repo.default_branch, title=title, body="Fixes the incident.", fixes_incident=True,
        )
        if anchor >= end - dt.timedelta(hours=1):
            continue
        b.titles.add(title)
        variant = (k + index) % 3
        if variant == 0:
            plan.labels.append((0.0, LABELED, rng.choice(HOTFIX_LABELS)))
        elif variant == 1:
            plan.head_ref = branch(rng.choice(HOTFIX_BRANCHES))
        # variant 2: neither; it is rework because it closed an incident
        plans.append(plan)
        fixes.append(plan)
    return fixes, revert_closer


def _close_incidents_by_pull_requests(b: _Builder, rng: random.Random, fixes: list[_Plan],
                                      revert_closer: _Plan | None, issues: list[Issue],
                                      start: dt.datetime) -> list[tuple[Issue, PullRequest]]:
    """Each merged fix (and the revert) closes an incident: an incident issue of this pass is
    moved to open shortly before the fix's first commit (or after the reverted pull request
    merged) and closed when the fix merges; one incident at least stays closed by hand.
    Returns (issue, pull request) pairs; the caller writes `Fixes #n` once numbers exist."""
    incidents = [i for i in issues if any(INCIDENT_LABEL.match(label) for label in i.labels)]
    rng.shuffle(incidents)
    closers = [(p.pr, None) for p in fixes if p.pr is not None and p.pr.merged_at is not None]
    if revert_closer is not None and revert_closer.pr is not None and revert_closer.pr.merged_at is not None:
        closers.append((revert_closer.pr, revert_closer.revert_of.pr))
    links = []
    for pr, reverted in closers:
        if reverted is not None and reverted.merged_at is not None:
            span = (pr.merged_at - reverted.merged_at) / 2
            opened = reverted.merged_at + min(dt.timedelta(minutes=rng.randint(20, 120)), span)
        else:
            first = min([pr.created_at] + [c.authored_at for c in pr.commits])
            opened = first - dt.timedelta(minutes=rng.randint(10, 45))
        opened = _at_seconds(opened)
        if opened <= start or opened >= pr.merged_at:
            continue
        if len(incidents) > 1:
            issue = incidents.pop()
        else:
            author = "github-actions[bot]" if rng.random() < 0.2 else rng.choice(b.members)
            issue = b.issue(rng.choice(INCIDENT_TITLES), list(rng.choice(INCIDENT_LABELS)), opened, None, author)
        issue.created_at = opened
        issue.closed_at = issue.updated_at = pr.merged_at
        links.append((issue, pr))
    return links


def _weekday_plan(b: _Builder, params: _Params, anchor: dt.datetime, outcome: str = "merged") -> _Plan:
    """A backward plan redrawn a few times so that it opens and gets its review on weekdays."""
    for _ in range(8):
        plan = b.plan(params, anchor, backward=True, outcome=outcome)
        times = plan.times()
        if not _is_weekend(times["created"]) and not (times["first_review"] and _is_weekend(times["first_review"])):
            break
    return plan


def _inject_anomalies(org: Organization, repo: Repository, rng: random.Random, plans: list[_Plan],
                      deploy_events: list[tuple[dt.datetime, str]], week_starts: list[dt.datetime],
                      weeks: int) -> None:
    """Move one metric of a few repository-weeks by a factor in [2.5, 5], at the event level."""

    def week_of(moment: dt.datetime) -> int:
        return int((moment - week_starts[0]) // WEEK)

    by_week: dict[int, list[_Plan]] = {}
    for plan in plans:
        # Exactly the PRs the weekly medians are over: merged, not bots, merged that week.
        if plan.backward and plan.outcome == "merged" and plan.kind != "bot":
            by_week.setdefault(week_of(plan.anchor), []).append(plan)
    deploys_by_week: dict[int, list[int]] = {}
    for i, (when, outcome) in enumerate(deploy_events):
        if outcome in COUNTED:
            deploys_by_week.setdefault(week_of(when), []).append(i)

    def typical(values: list[float]) -> float:
        return statistics.median(values) if values else 0.0

    # A week's value of each metric before injection, and the repository's usual value: only
    # weeks at least close to usual get an anomaly, so the moved value stands out of the noise.
    week_value: dict[str, dict[int, float]] = {m: {} for m in ANOMALY_METRICS}
    for w, week_plans in by_week.items():
        reviewed = [p for p in week_plans if p.pickup_s is not None]
        if reviewed:
            week_value["median_review_hours"][w] = statistics.median([p.review_s for p in reviewed])
            week_value["median_pickup_hours"][w] = statistics.median([p.pickup_s for p in reviewed])
        week_value["median_coding_hours"][w] = statistics.median([p.coding_s for p in week_plans])
        week_value["median_pr_size"][w] = statistics.median([p.additions + p.deletions for p in week_plans])
    for w, indices in deploys_by_week.items():
        week_value["deployments"][w] = len(indices)
    usual = {m: typical(list(values.values())) for m, values in week_value.items()}

    def near_usual(metric: str, w: int) -> bool:
        return week_value[metric].get(w, 0.0) >= 0.9 * usual[metric]

    first, last = max(3, weeks // 6), weeks - 4  # history before, and no partial-looking tail
    eligible = list(range(first, last + 1))
    rng.shuffle(eligible)
    wanted = max(1, round(weeks / 10))
    chosen: list[int] = []
    for w in eligible:
        if len(chosen) >= wanted:
            break
        if any(abs(w - c) < 2 for c in chosen):
            continue
        week_plans = by_week.get(w, [])
        reviewed = [p for p in week_plans if p.pickup_s is not None]
        metrics = []
        if len(reviewed) >= MIN_PRS_FOR_ANOMALY:
            metrics += ["median_review_hours", "median_pickup_hours"]
        if len(week_plans) >= MIN_PRS_FOR_ANOMALY:
            metrics += ["median_coding_hours", "median_pr_size"]
        if repo.deployment_style != "merges" and len(deploys_by_week.get(w, [])) >= MIN_DEPLOYMENTS_FOR_ANOMALY:
            metrics.append("deployments")
        metrics = [m for m in metrics if near_usual(m, w)]
        if not metrics:
            continue
        metric = rng.choice(metrics)
        factor = rng.uniform(2.6, 4.9)
        if metric == "deployments":
            indices = deploys_by_week[w]
            n = len(indices)
            total = round(factor * n)
            while total / n < ANOMALY_FACTOR_RANGE[0]:
                total += 1
            while total / n > ANOMALY_FACTOR_RANGE[1]:
                total -= 1
            successes = [i for i in indices if deploy_events[i][1] == "success"] or indices
            for k in range(total - n):
                base_when = deploy_events[successes[k % len(successes)]][0]
                # Redeploys minutes after a deployment: same day, ship nothing new.
                deploy_events.append((base_when + dt.timedelta(minutes=3 + 2 * (k // len(successes)) + rng.random()), "success"))
            actual = total / n
        else:
            targets = reviewed if metric in ("median_review_hours", "median_pickup_hours") else week_plans
            before, after = [], []
            for p in targets:
                if metric == "median_review_hours":
                    before.append(p.review_s)
                    p.review_s = int(round(p.review_s * factor))
                    after.append(p.review_s)
                elif metric == "median_pickup_hours":
                    before.append(p.pickup_s)
                    p.pickup_s = int(round(p.pickup_s * factor))
                    after.append(p.pickup_s)
                elif metric == "median_coding_hours":
                    before.append(p.coding_s)
                    p.coding_s = int(round(p.coding_s * factor))
                    after.append(p.coding_s)
                else:
                    before.append(p.additions + p.deletions)
                    p.additions = int(round(p.additions * factor))
                    p.deletions = int(round(p.deletions * factor))
                    after.append(p.additions + p.deletions)
            actual = statistics.median(after) / statistics.median(before)
        chosen.append(w)
        org.anomalies.append(Anomaly(
            scope_type="repository", scope=repo.full_name, week_start=week_starts[w].date(),
            metric=metric, factor=round(actual, 4),
        ))
    org.anomalies.sort(key=lambda a: (a.scope, a.week_start))


def _materialize_deployments(b: _Builder, events: list[tuple[dt.datetime, str]], start: dt.datetime,
                             end: dt.datetime) -> None:
    repo, rng = b.repo, b.rng
    style = repo.deployment_style
    deployers = b.members + ["github-actions[bot]"]
    # Workflow ids: stable per repository and workflow file.
    deploy_id, ci_id, docs_id = (90_000 + repo.database_id * 10 + k for k in range(3))
    release_no = sum(1 for r in repo.releases if not r.is_prerelease and not r.is_draft)
    for when, outcome in sorted(events, key=lambda e: e[0]):
        when = _at_seconds(when)
        if style == "github_deployments":
            if outcome == "success" and rng.random() < 0.7:
                b.deployment("staging", when - dt.timedelta(minutes=rng.randint(20, 90)), "success", "github-actions[bot]")
            environment = "production" if rng.random() < 0.9 else "Production"
            b.deployment(environment, when, outcome, rng.choice(deployers))
        elif style == "workflow_runs":
            if outcome == "success" and rng.random() < 0.5:
                # Actions also records a staging deployment: it must not count.
                b.deployment("staging", when - dt.timedelta(minutes=rng.randint(20, 90)), "success", "github-actions[bot]")
            b.run("Deploy", deploy_id, repo.default_branch, "push", when, outcome)
        elif style == "releases":
            release_no += 1 if outcome == "success" else 0
            tag = f"v1.{release_no}.0"
            if outcome == "prerelease":
                b.release(f"v1.{release_no + 1}.0-rc.1", when, prerelease=True, author=rng.choice(b.members))
            elif outcome == "draft":
                b.release(f"v1.{release_no + 1}.0", when, draft=True, author=rng.choice(b.members))
            else:
                if any(r.tag_name == tag for r in repo.releases):
                    tag = f"v1.{release_no}.{sum(1 for r in repo.releases if r.tag_name.startswith(f'v1.{release_no}.'))}"
                b.release(tag, when, author=rng.choice(b.members))
    # Noise every source must ignore: CI on pull requests, deploys of other branches,
    # pull-request preview environments.
    for pr in repo.pull_requests:
        if not (start < pr.created_at <= end) or rng.random() > 0.25:
            continue
        when = pr.created_at + dt.timedelta(minutes=rng.randint(4, 20))
        if when >= end:
            continue
        sha = pr.commits[-1].sha if pr.commits else None
        b.run("CI", ci_id, pr.head_ref, "pull_request", when,
              rng.choices(["success", "failure", "cancelled"], weights=[85, 10, 5])[0], sha)
        if style == "workflow_runs" and rng.random() < 0.15:
            b.run("Deploy", deploy_id, pr.head_ref, "workflow_dispatch", when + dt.timedelta(minutes=30), "success", sha)
        if style == "github_deployments" and rng.random() < 0.1:
            b.deployment(f"preview-{pr.database_id}", when + dt.timedelta(minutes=10), "success", "github-actions[bot]")
    if style == "releases":
        day = start + dt.timedelta(days=2)
        while day < end:
            # Documentation deploys on a side branch: named deploy, never the default branch.
            if rng.random() < 0.3:
                b.run("Deploy docs", docs_id, "gh-pages", "push", _work_time(rng, day), "success")
            day += WEEK
    if style == "merges" and end - start > dt.timedelta(days=10) and rng.random() < 0.5:
        b.release("v0.1.0", _work_time(rng, start + dt.timedelta(days=5)), draft=True, author=rng.choice(b.members))
    if end - start <= dt.timedelta(days=31) or rng.random() < 0.5:
        # A run still in progress at the clock.
        b.run("CI", ci_id, repo.default_branch, "push", end - dt.timedelta(minutes=1), None)
    repo.deployments.sort(key=lambda d: (d.created_at, d.database_id))
    repo.workflow_runs.sort(key=lambda r: (r.created_at, r.database_id))
    repo.releases.sort(key=lambda r: (r.created_at, r.database_id))


def _generate_issues(b: _Builder, start: dt.datetime, end: dt.datetime, weeks: float) -> None:
    rng = b.rng
    n_incidents = max(1, round(weeks / 3)) if weeks >= 1 else (1 if rng.random() < weeks * 0.35 else 0)
    n_other = max(1, round(weeks / 2)) if weeks >= 1 else (1 if rng.random() < weeks * 0.5 else 0)
    span = (end - start).total_seconds()
    for k in range(n_incidents + n_other):
        incident = k < n_incidents
        created = _at_seconds(start + dt.timedelta(seconds=rng.random() * span))
        if _is_weekend(created) and rng.random() < 0.8:
            created -= 2 * DAY
            if created <= start:
                created += 4 * DAY
        if created >= end:
            continue
        if incident:
            labels = rng.choice(INCIDENT_LABELS)
            duration = dt.timedelta(seconds=_lognormal_s(rng, 3.0, 0.9))
            title = rng.choice(INCIDENT_TITLES)
            author = "github-actions[bot]" if rng.random() < 0.2 else b.human()
        else:
            labels = rng.choice(OTHER_LABELS)
            duration = dt.timedelta(days=rng.uniform(0.5, 20))
            title = rng.choice(["Typo in README", "Support SSO with Okta", "Flaky integration test",
                                "Post-incident review: login outage", "Dark mode colours are off"])
            author = b.human()
        closed = _at_seconds(created + duration)
        b.issue(title, labels, created, closed if closed <= end else None, author)


def advance(org: Organization, days: int, seed: int | None = None) -> Organization:
    """Move the organisation's clock forward by `days` with new activity; returns `org`."""
    if days < 1:
        raise ValueError(f"advance needs days >= 1, got {days}")
    base = org.seed if seed is None else seed
    start, end = org.now, org.now + dt.timedelta(days=days)
    ids = _Ids(_max_database_id(org))
    for index, repo in enumerate(org.repositories):
        rng = random.Random(f"{base}:advance:{start.isoformat()}:{days}:{index}")
        members = sorted(login for login, names in org.memberships.items() if repo.full_name in names) \
            or [login for login, user in org.users.items() if not user.is_bot]
        b = _Builder(org, repo, rng, ids, members)
        params = _repo_params(org.seed, index)
        # Labels and hotfix branches of the new pull requests (set when they open).
        lrng = random.Random(f"{base}:advance-labels:{start.isoformat()}:{days}:{index}")
        arng = random.Random(f"{base}:advance-ai:{start.isoformat()}:{days}:{index}")
        _update_existing(b, start, end)
        # New pull requests at the repository's usual pace, created after the old clock.
        recent = [p for p in repo.pull_requests if p.created_at > start - 8 * WEEK]
        per_weekday = max(0.4, len(recent) / 8 / 5)
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < end:
            rate = per_weekday if day.weekday() < 5 else per_weekday * 0.05
            n = _poisson(rng, rate)
            for _ in range(n):
                created = _work_time(rng, day)
                if start < created < end:
                    plan = _label_new(lrng, b.plan(params, created, backward=False))
                    _assist(arng, plan, ai_share(1.0))
                    b.materialize(plan, end)
            if day.weekday() == 0 and rng.random() < 0.3:
                created = _work_time(rng, day, 6, 8)
                if start < created < end:
                    b.materialize(_label_new(lrng, b.plan(params, created, backward=False, kind="bot")), end)
            day += DAY
        # Now and then a revert of something merged recently.
        if rng.random() < min(0.9, days / 40):
            recent_merged = sorted((p for p in repo.pull_requests
                                    if p.merged_at and p.merged_at > start - 3 * DAY and p.commits
                                    and p.base_ref == repo.default_branch
                                    and not p.title.startswith("Revert")), key=lambda p: p.merged_at)
            if recent_merged:
                target = rng.choice(recent_merged)
                created = max(start, target.merged_at) + dt.timedelta(minutes=rng.randint(20, 300))
                plan = b.plan(params, created, backward=False, kind="revert")
                plan.draft_s = None
                plan.pickup_s = rng.randint(300, 1800)
                plan.review_s = rng.randint(300, 1800)
                plan.revert_of = _Plan(kind="human", author=None, anchor=target.merged_at, backward=True,
                                       outcome="merged", coding_s=0, draft_s=None, pickup_s=None,
                                       review_s=0, additions=0, deletions=0, n_commits=0,
                                       extra_reviews=0, self_review=False, author_comment=False,
                                       base_ref=target.base_ref, pr=target)
                if start < created < end:
                    b.materialize(plan, end)
        _materialize_deployments(b, _deploy_plan(rng, repo.deployment_style, start, end), start, end)
        _generate_issues(b, start, end, days / 7)
        _number_new_items(repo)
        _refresh_repository(repo)
    org.now = end
    return org


def _label_new(rng: random.Random, plan: _Plan) -> _Plan:
    """Labels (and now and then a hotfix branch) of a pull request opened by advance()."""
    if plan.kind == "bot":
        plan.labels.append((0.0, LABELED, "dependencies"))
        return plan
    roll = rng.random()
    if roll < 0.15:
        plan.labels.append((0.0, LABELED, rng.choice(PR_LABELS)))
    elif roll < 0.18:
        plan.labels.append((0.0, LABELED, rng.choice(HOTFIX_LABELS)))
    elif roll < 0.21:
        plan.head_ref = rng.choice(HOTFIX_BRANCHES).format(f"{rng.choice(HOTFIX_SLUGS)}-{rng.randrange(1000)}")
    return plan


def _update_existing(b: _Builder, start: dt.datetime, end: dt.datetime) -> None:
    """Late reviews, merges and closes of pull requests that existed before `start`."""
    rng, repo = b.rng, b.repo
    span = (end - start).total_seconds()

    def moment(after: dt.datetime) -> dt.datetime | None:
        lower = max(after, start)
        room = (end - lower).total_seconds()
        if room <= 2:
            return None
        return _at_seconds(lower + dt.timedelta(seconds=rng.uniform(1, min(room - 1, span))))

    for pr in list(repo.pull_requests):
        if pr.created_at > start:
            continue
        before = pr.updated_at
        if pr.state == "OPEN":
            roll = rng.random()
            if pr.is_draft:
                if roll < 0.3 and (when := moment(pr.updated_at)):
                    pr.is_draft = False
                    pr.ready_for_review_at = pr.ready_for_review_at or when
            elif roll < 0.6:
                when = moment(pr.updated_at)
                if when is None:
                    continue
                if not any(r.author_login != pr.author_login for r in pr.reviews):
                    b._review(pr, b.reviewer(pr.author_login), "APPROVED", when)
                if rng.random() < 0.7 and (merge := moment(when)):
                    pr.merged_at = pr.closed_at = merge
            elif roll < 0.7 and (when := moment(pr.updated_at)):
                pr.closed_at = when
        elif pr.merged_at is not None and pr.merged_at > start - 30 * DAY and rng.random() < 0.03 \
                and any(r.author_login != pr.author_login for r in pr.reviews):
            if when := moment(pr.merged_at):
                b._review(pr, b.reviewer(pr.author_login), "COMMENTED", when)
        if pr.updated_at == before:
            refresh_pull_request(pr)
    for run in repo.workflow_runs:
        if run.status != "completed" and run.created_at <= start and (when := moment(run.run_started_at)):
            run.status, run.conclusion, run.updated_at = "completed", "success", when
    for issue in repo.issues:
        if issue.closed_at is None and issue.created_at <= start and rng.random() < 0.6:
            if when := moment(issue.created_at):
                issue.closed_at = issue.updated_at = when


def touch_pull_requests(org: Organization, fraction: float, seed: int) -> list[PullRequest]:
    """Change `fraction` of all pull requests at the clock: a late review on merged ones, a
    title edit on the others; each touched PR's updated_at becomes `org.now`."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    rng = random.Random(f"{org.seed}:touch:{seed}:{org.now.isoformat()}")
    pairs = [(repo, pr) for repo in org.repositories for pr in repo.pull_requests]
    count = min(len(pairs), max(1, round(fraction * len(pairs)))) if fraction > 0 else 0
    ids = _Ids(_max_database_id(org))
    touched = []
    for repo, pr in rng.sample(pairs, count):
        if pr.merged_at is not None:
            members = sorted(login for login, names in org.memberships.items() if repo.full_name in names)
            b = _Builder(org, repo, rng, ids, members or sorted(org.memberships))
            b._review(pr, b.reviewer(pr.author_login), "COMMENTED", org.now)
            pr.reviews.sort(key=lambda r: (r.submitted_at, r.database_id))
        else:
            pr.title = f"{pr.title} (edited)"
        pr.updated_at = org.now
        repo.updated_at = max(repo.updated_at, org.now)
        touched.append(pr)
    return touched


def _max_database_id(org: Organization) -> int:
    ids = [u.database_id for u in org.users.values()]
    for repo in org.repositories:
        ids.append(repo.database_id)
        for pr in repo.pull_requests:
            ids.append(pr.database_id)
            ids += [r.database_id for r in pr.reviews] + [c.database_id for c in pr.comments]
        ids += [i.database_id for i in repo.issues]
        for dep in repo.deployments:
            ids.append(dep.database_id)
            ids += [s.database_id for s in dep.statuses]
        ids += [r.database_id for r in repo.releases] + [r.database_id for r in repo.workflow_runs]
    return max(ids + [1000])
