"""Every GraphQL query the client sends, with the page sizes that keep each page cheap.

GitHub prices a query at the number of requests needed to fill every connection at its full
`first`, divided by 100 and rounded (minimum 1). A pull-request page of `PR_PAGE_SIZE`
pull requests with three nested connections (timeline events, reviews, commits) costs
round((1 + 3 * PR_PAGE_SIZE) / 100) points. Each nested connection per pull request adds
PR_PAGE_SIZE requests, so another one (a `labels` connection, say) would double the price of
the stream: the labels come from the timeline connection instead (labeled/unlabeled events,
replayed by the sync), which also gives the ready-for-review time. tests/test_github_queries.py validates every
query here against GitHub's public schema and checks the cost and node limits.
"""

from __future__ import annotations

# Pull requests per page; 49 keeps the page at 1 point with three nested connections
# (1 + 3 * 49 = 148 requests -> 1.48 -> 1 point), where 50 would round to 2.
PR_PAGE_SIZE = 49
PR_MIN_PAGE_SIZE = 5
NESTED_REVIEWS = 25
NESTED_COMMITS = 25
# Ready-for-review and label events per pull request in the page; more are paged separately
# (PULL_REQUEST_TIMELINE), like reviews and commits.
NESTED_TIMELINE = 25
TIMELINE_ITEM_TYPES = "[READY_FOR_REVIEW_EVENT, LABELED_EVENT, UNLABELED_EVENT]"
OVERFLOW_PAGE_SIZE = 100
DEPLOYMENT_PAGE_SIZE = 100
DEPLOYMENT_STATUSES = 100
RELEASE_PAGE_SIZE = 100
# Issues per page: two nested connections per issue (labels, the latest ClosedEvent), and
# 1 + 2 * 74 = 149 requests -> 1.49 -> 1 point, where 75 would round to 2.
ISSUE_PAGE_SIZE = 74
ISSUE_LABELS = 100
REPOSITORY_BATCH = 100

RATE_LIMIT = "rateLimit { cost remaining resetAt }"

# `latestPullRequest` is the pull-request stream's change check: the newest updatedAt tells
# whether anything changed since the stream's watermark. It is the only connection here, so a
# batch of 100 repositories still costs 1 point, and the check costs no REST request.
REPOSITORY_FIELDS = """
fragment RepositoryFields on Repository {
  id databaseId nameWithOwner name owner { __typename login }
  isArchived isPrivate isFork isEmpty createdAt updatedAt pushedAt
  defaultBranchRef { name }
  latestPullRequest: pullRequests(first: 1, orderBy: {field: UPDATED_AT, direction: DESC}) {
    nodes { updatedAt }
  }
}
"""

PULL_REQUEST_FIELDS = """
fragment PullRequestFields on PullRequest {
  id databaseId number title body url state isDraft createdAt updatedAt closedAt mergedAt
  additions deletions changedFiles baseRefName headRefName
  author { __typename login }
}
"""

REVIEW_FIELDS = """
fragment ReviewFields on PullRequestReview {
  id databaseId state submittedAt createdAt author { __typename login }
}
"""

# Timeline items in chronological order: the first ReadyForReviewEvent is the ready-for-review
# time; replaying LabeledEvent/UnlabeledEvent gives the labels on the pull request now.
TIMELINE_FIELDS = """
fragment TimelineFields on PullRequestTimelineItems {
  __typename
  ... on ReadyForReviewEvent { createdAt }
  ... on LabeledEvent { createdAt label { name } }
  ... on UnlabeledEvent { createdAt label { name } }
}
"""

COMMIT_FIELDS = """
fragment CommitFields on PullRequestCommit {
  commit {
    oid message authoredDate committedDate additions deletions
    author { name email user { login } }
  }
}
"""

PULL_REQUESTS = (
    """
query PullRequests($owner: String!, $name: String!, $first: Int!, $after: String) {
  repository(owner: $owner, name: $name) {
    pullRequests(first: $first, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        ...PullRequestFields
        timeline: timelineItems(itemTypes: %s, first: %d) {
          pageInfo { hasNextPage endCursor }
          nodes { ...TimelineFields }
        }
        reviews(first: %d) {
          pageInfo { hasNextPage endCursor }
          nodes { ...ReviewFields }
        }
        commits(first: %d) {
          pageInfo { hasNextPage endCursor }
          nodes { ...CommitFields }
        }
      }
    }
  }
  %s
}
"""
    % (TIMELINE_ITEM_TYPES, NESTED_TIMELINE, NESTED_REVIEWS, NESTED_COMMITS, RATE_LIMIT)
    + PULL_REQUEST_FIELDS
    + TIMELINE_FIELDS
    + REVIEW_FIELDS
    + COMMIT_FIELDS
)

PULL_REQUEST_TIMELINE = (
    """
query PullRequestTimeline($id: ID!, $after: String) {
  node(id: $id) {
    ... on PullRequest {
      timelineItems(itemTypes: %s, first: %d, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes { ...TimelineFields }
      }
    }
  }
  %s
}
"""
    % (TIMELINE_ITEM_TYPES, OVERFLOW_PAGE_SIZE, RATE_LIMIT)
    + TIMELINE_FIELDS
)

PULL_REQUEST_REVIEWS = (
    """
query PullRequestReviews($id: ID!, $after: String) {
  node(id: $id) {
    ... on PullRequest {
      reviews(first: %d, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes { ...ReviewFields }
      }
    }
  }
  %s
}
"""
    % (OVERFLOW_PAGE_SIZE, RATE_LIMIT)
    + REVIEW_FIELDS
)

PULL_REQUEST_COMMITS = (
    """
query PullRequestCommits($id: ID!, $after: String) {
  node(id: $id) {
    ... on PullRequest {
      commits(first: %d, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes { ...CommitFields }
      }
    }
  }
  %s
}
"""
    % (OVERFLOW_PAGE_SIZE, RATE_LIMIT)
    + COMMIT_FIELDS
)

DEPLOYMENT_FIELDS = """
fragment DeploymentFields on Deployment {
  id databaseId environment createdAt updatedAt commitOid
  ref { name }
  creator { login }
}
"""

DEPLOYMENTS = (
    """
query Deployments($owner: String!, $name: String!, $first: Int!, $after: String) {
  repository(owner: $owner, name: $name) {
    deployments(first: $first, after: $after, orderBy: {field: CREATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        ...DeploymentFields
        statuses(first: %d) {
          pageInfo { hasNextPage endCursor }
          nodes { id state createdAt }
        }
      }
    }
  }
  %s
}
"""
    % (DEPLOYMENT_STATUSES, RATE_LIMIT)
    + DEPLOYMENT_FIELDS
)

DEPLOYMENT_STATUSES_PAGE = """
query DeploymentStatuses($id: ID!, $after: String) {
  node(id: $id) {
    ... on Deployment {
      statuses(first: %d, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes { id state createdAt }
      }
    }
  }
  %s
}
""" % (OVERFLOW_PAGE_SIZE, RATE_LIMIT)

RELEASES = """
query Releases($owner: String!, $name: String!, $first: Int!, $after: String) {
  repository(owner: $owner, name: $name) {
    releases(first: $first, after: $after, orderBy: {field: CREATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id databaseId name tagName isDraft isPrerelease createdAt publishedAt
        author { login }
      }
    }
  }
  %s
}
""" % RATE_LIMIT

ISSUES = """
query Issues($owner: String!, $name: String!, $first: Int!, $after: String, $since: DateTime) {
  repository(owner: $owner, name: $name) {
    issues(first: $first, after: $after, filterBy: {since: $since},
           orderBy: {field: UPDATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id databaseId number title state createdAt updatedAt closedAt
        author { login }
        labels(first: %d) { nodes { name } }
        closedBy: timelineItems(itemTypes: [CLOSED_EVENT], last: 1) {
          nodes { ... on ClosedEvent { closer { __typename ... on PullRequest { id number } } } }
        }
      }
    }
  }
  %s
}
""" % (ISSUE_LABELS, RATE_LIMIT)

USER_REPOSITORIES = """
query UserRepositories($login: String!, $after: String) {
  user(login: $login) {
    repositories(first: 100, after: $after,
                  ownerAffiliations: [OWNER, ORGANIZATION_MEMBER, COLLABORATOR]) {
      pageInfo { hasNextPage endCursor }
      nodes { nameWithOwner }
    }
    organizations(first: 100) { nodes { login } }
  }
  %s
}
""" % RATE_LIMIT

ORGANIZATION_REPOSITORIES = """
query OrganizationRepositories($login: String!, $after: String) {
  organization(login: $login) {
    repositories(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { nameWithOwner }
    }
  }
  %s
}
""" % RATE_LIMIT


def repositories_query(count: int) -> str:
    """One query for `count` repositories by owner and name (aliases r0..rN), 1 point.

    Variables are `o0, n0, o1, n1, ...`. A missing repository comes back as null with a
    NOT_FOUND error whose path names its alias.
    """
    if not 1 <= count <= REPOSITORY_BATCH:
        raise ValueError(f"repositories_query takes 1..{REPOSITORY_BATCH} repositories, got {count}")
    params = ", ".join(f"$o{i}: String!, $n{i}: String!" for i in range(count))
    fields = "\n".join(
        f"  r{i}: repository(owner: $o{i}, name: $n{i}) {{ ...RepositoryFields }}" for i in range(count)
    )
    return f"query Repositories({params}) {{\n{fields}\n  {RATE_LIMIT}\n}}\n" + REPOSITORY_FIELDS


# Every fixed query, by name, for the schema test.
ALL_QUERIES = {
    "PullRequests": PULL_REQUESTS,
    "PullRequestTimeline": PULL_REQUEST_TIMELINE,
    "PullRequestReviews": PULL_REQUEST_REVIEWS,
    "PullRequestCommits": PULL_REQUEST_COMMITS,
    "Deployments": DEPLOYMENTS,
    "DeploymentStatuses": DEPLOYMENT_STATUSES_PAGE,
    "Releases": RELEASES,
    "Issues": ISSUES,
    "UserRepositories": USER_REPOSITORIES,
    "OrganizationRepositories": ORGANIZATION_REPOSITORIES,
}
