"""The synthetic organisation's event model.

The generator builds these objects; the API server renders them as GitHub does (REST and
GraphQL); the ground truth computes every metric from them directly, never from API
responses. All datetimes are timezone-aware UTC. A login of `None` is GitHub's deleted user
(`ghost`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

GHOST = "ghost"


@dataclass
class User:
    login: str
    name: str
    node_id: str
    database_id: int
    is_bot: bool = False  # GraphQL __typename "Bot", REST type "Bot", login ends in "[bot]"


@dataclass
class Commit:
    sha: str  # 40 hex characters
    authored_at: dt.datetime
    committed_at: dt.datetime
    additions: int
    deletions: int
    author_login: str | None
    author_name: str
    author_email: str
    message: str = ""  # the full message, trailers included; empty: the API says "Commit <sha7>"


@dataclass
class Review:
    node_id: str
    database_id: int
    author_login: str | None
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
    submitted_at: dt.datetime | None  # None only while PENDING
    created_at: dt.datetime


@dataclass
class IssueComment:
    """A conversation comment; never counts as a review (an author's comment is not pickup)."""

    node_id: str
    database_id: int
    author_login: str | None
    created_at: dt.datetime
    body: str


LABELED, UNLABELED = "LABELED", "UNLABELED"


@dataclass
class LabelEvent:
    """A LabeledEvent or UnlabeledEvent on a pull request's timeline."""

    created_at: dt.datetime
    kind: str  # LABELED or UNLABELED
    name: str  # the label's name


def replay_labels(events: list[LabelEvent]) -> list[str]:
    """The labels on a pull request after its label events (oldest first): a label is on it
    after its latest LABELED event unless an UNLABELED one follows; it keeps the position of
    that latest addition."""
    labels: dict[str, None] = {}
    for event in events:
        labels.pop(event.name, None)
        if event.kind == LABELED:
            labels[event.name] = None
    return list(labels)


@dataclass
class PullRequest:
    node_id: str
    database_id: int
    number: int
    title: str
    body: str
    author_login: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    base_ref: str
    head_ref: str
    additions: int
    deletions: int
    changed_files: int
    is_draft: bool = False  # draft right now
    ready_for_review_at: dt.datetime | None = None  # first ReadyForReviewEvent
    merged_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None  # set for merged PRs too, as GitHub does
    commits: list[Commit] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    comments: list[IssueComment] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # the labels on it now
    # Its LabeledEvent/UnlabeledEvent timeline items, oldest first; `labels` is always their
    # replay (`replay_labels`).
    label_events: list[LabelEvent] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.merged_at is not None:
            return "MERGED"
        return "CLOSED" if self.closed_at is not None else "OPEN"


@dataclass
class DeploymentStatus:
    node_id: str
    database_id: int
    state: str  # PENDING, QUEUED, IN_PROGRESS, SUCCESS, FAILURE, ERROR, INACTIVE
    created_at: dt.datetime


@dataclass
class Deployment:
    node_id: str
    database_id: int
    environment: str
    sha: str
    ref: str
    creator_login: str | None
    created_at: dt.datetime
    updated_at: dt.datetime  # the latest status time, or created_at
    statuses: list[DeploymentStatus] = field(default_factory=list)  # oldest first


@dataclass
class Release:
    node_id: str
    database_id: int
    name: str
    tag_name: str
    is_draft: bool
    is_prerelease: bool
    created_at: dt.datetime
    published_at: dt.datetime | None
    author_login: str | None


@dataclass
class WorkflowRun:
    database_id: int
    name: str  # the workflow's name
    workflow_id: int
    head_branch: str
    head_sha: str
    event: str
    status: str  # queued, in_progress, completed
    conclusion: str | None  # success, failure, cancelled, skipped, None while running
    run_attempt: int
    created_at: dt.datetime
    run_started_at: dt.datetime
    updated_at: dt.datetime  # completion time once completed


@dataclass
class Issue:
    node_id: str
    database_id: int
    number: int
    title: str
    body: str
    author_login: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None
    labels: list[str] = field(default_factory=list)
    # node id of the pull request that closed it (its latest ClosedEvent's closer), if any
    closed_by_pull_request: str | None = None

    @property
    def state(self) -> str:
        return "CLOSED" if self.closed_at is not None else "OPEN"


@dataclass
class Repository:
    node_id: str
    database_id: int
    owner: str
    name: str
    default_branch: str
    created_at: dt.datetime
    updated_at: dt.datetime
    pushed_at: dt.datetime
    # github_deployments, workflow_runs, releases or merges: how this repository ships.
    deployment_style: str
    is_archived: bool = False
    is_private: bool = False
    is_fork: bool = False
    pull_requests: list[PullRequest] = field(default_factory=list)  # and issues share numbers
    issues: list[Issue] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    workflow_runs: list[WorkflowRun] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def is_empty(self) -> bool:
        return not self.pull_requests and not self.deployments and not self.releases


@dataclass
class Anomaly:
    """An injected anomaly: one metric of one scope-week moved by `factor` (2.5 to 5)."""

    scope_type: str  # "repository" (injected per repository)
    scope: str
    week_start: dt.date
    metric: str  # a column of marts.ml_weekly_features
    factor: float


@dataclass
class Organization:
    login: str
    now: dt.datetime  # the organisation's clock; advance() moves it
    users: dict[str, User] = field(default_factory=dict)
    repositories: list[Repository] = field(default_factory=list)
    # login -> repositories the user owns or collaborates on (overlapping sets)
    memberships: dict[str, list[str]] = field(default_factory=dict)
    anomalies: list[Anomaly] = field(default_factory=list)
    # The generator's seed: advance() derives its randomness from it and the clock.
    seed: int = 0

    def repository(self, full_name: str) -> Repository | None:
        for repo in self.repositories:
            if repo.full_name.lower() == full_name.lower():
                return repo
        return None
