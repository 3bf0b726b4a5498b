"""The synthetic organisation as GitHub's GraphQL objects (dicts for graphql_api's executor).

Fields with arguments, and back-references, are callables `(args, ctx) -> value`; the rest
are plain values. Orderings are total (ties broken by database id) so cursors are stable.
Where GitHub's default order is undocumented the sandbox uses creation order.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import functools
import hashlib
import json
import threading
from collections import OrderedDict

from ghmetrics_dagster.sandbox import model
from ghmetrics_dagster.sandbox.graphql_api import FieldError

HTML = "https://github.com"


@functools.lru_cache(maxsize=1 << 17)
def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _epoch(value: dt.datetime | None) -> int:
    return 0 if value is None else int(value.timestamp() * 1_000_000)


def synthetic_id(text: str, modulo: int = 90_000_000) -> int:
    return 10_000_000 + int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) % modulo


# --- cursors and windows ----------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _position_cursor(index: int) -> str:
    return base64.b64encode(b"cursor:v2:%d" % index).decode()


def encode_cursor(key) -> str:
    """GitHub-like opaque cursors: base64 of "cursor:v2:" + a position or a keyset key."""
    if type(key) is int:
        return _position_cursor(key)
    return base64.b64encode(("cursor:v2:[" + ",".join(map(str, key)) + "]").encode()).decode()


def decode_cursor(text: str):
    try:
        raw = base64.b64decode(text.encode(), validate=True)
        if not raw.startswith(b"cursor:v2:"):
            raise ValueError
        return json.loads(raw[len(b"cursor:v2:"):])
    except Exception:
        raise FieldError(f"`{text}` does not appear to be a valid cursor.", "INVALID_CURSOR_ARGUMENTS") from None


def connection(items: list, args: dict, render, keys: list | None = None, ctx=None) -> dict:
    """A Relay connection over `items` (already in order). `keys` (ascending, JSON-able) make
    keyset cursors that survive inserts; without them cursors are positions."""
    n = len(items)
    lo, hi = 0, n
    after, before = args.get("after"), args.get("before")
    if keys is None:
        if after is not None:
            lo = max(lo, int(_offset(decode_cursor(after))) + 1)
        if before is not None:
            hi = min(hi, int(_offset(decode_cursor(before))))
    else:
        if after is not None:
            lo = bisect.bisect_right(keys, _key(decode_cursor(after), after))
        if before is not None:
            hi = bisect.bisect_left(keys, _key(decode_cursor(before), before))
    lo = min(lo, n)
    hi = max(lo, hi)
    first, last = args.get("first"), args.get("last")
    if first is not None:
        hi = min(hi, lo + first)
    if last is not None:
        lo = max(lo, hi - last)
    page = items[lo:hi]
    cursor = (lambda i: encode_cursor(keys[i])) if keys is not None else (lambda i: encode_cursor(i))
    nodes = [render(item) for item in page]
    return {
        "totalCount": n,
        "pageInfo": {
            "hasNextPage": hi < n,
            "hasPreviousPage": lo > 0,
            "startCursor": cursor(lo) if page else None,
            "endCursor": cursor(hi - 1) if page else None,
        },
        "nodes": nodes,
        "edges": lambda a, c: [{"cursor": cursor(lo + i), "node": node} for i, node in enumerate(nodes)],
    }


def _offset(value):
    if not isinstance(value, int):
        raise FieldError("The cursor does not belong to this connection.", "INVALID_CURSOR_ARGUMENTS")
    return value


def _key(value, text):
    if not isinstance(value, list):
        raise FieldError(f"`{text}` does not appear to be a valid cursor.", "INVALID_CURSOR_ARGUMENTS")
    return value


_orders: OrderedDict = OrderedDict()
_orders_lock = threading.Lock()


def ordered(items: list, time_of, direction: str) -> tuple[list, list]:
    """Items sorted by (time, database id) in `direction`, with ascending keyset keys.

    Every page of a connection sorts the same items again, so sort orders are memoised by
    the items' ids and times (which also notices in-place edits such as a new updated_at)."""
    times = tuple(map(time_of, items))
    ids = tuple(x.database_id for x in items)
    memo_key = (direction, ids, times)
    with _orders_lock:
        hit = _orders.get(memo_key)
        if hit is not None:
            _orders.move_to_end(memo_key)
    if hit is None:
        sign = -1 if direction == "DESC" else 1
        decorated = sorted(((sign * _epoch(t), sign * i), n) for n, (t, i) in enumerate(zip(times, ids, strict=False)))
        hit = ([n for _, n in decorated], [list(k) for k, _ in decorated])
        with _orders_lock:
            _orders[memo_key] = hit
            while len(_orders) > 256:
                _orders.popitem(last=False)
    permutation, keys = hit
    return [items[n] for n in permutation], keys


def _order(args: dict, default_field: str = "CREATED_AT", default_direction: str = "ASC") -> tuple[str, str]:
    order = args.get("orderBy") or {}
    return order.get("field", default_field), order.get("direction", default_direction)


# --- actors -----------------------------------------------------------------------------


class Renderer:
    """Renders one organisation; one instance per request (it caches users within it)."""

    def __init__(self, org: model.Organization):
        self.org = org
        self._actors: dict = {}
        self._index: dict | None = None

    def user_record(self, login: str) -> model.User:
        user = self.org.users.get(login)
        if user is None:
            is_bot = login.endswith("[bot]")
            user = model.User(login, login, ("BOT_" if is_bot else "U_") + f"x{synthetic_id(login)}", synthetic_id(login), is_bot)
        return user

    def actor(self, login: str | None) -> dict | None:
        """An Actor (User or Bot); None for GitHub's deleted user, as GraphQL returns."""
        if login is None:
            return None
        cached = self._actors.get(login)
        if cached is None:
            user = self.user_record(login)
            if user.is_bot:
                short = login[: -len("[bot]")] if login.endswith("[bot]") else login
                cached = {
                    "__typename": "Bot", "login": short, "id": user.node_id, "databaseId": user.database_id,
                    "url": f"{HTML}/apps/{short}", "resourcePath": f"/apps/{short}",
                    "avatarUrl": f"https://avatars.githubusercontent.com/in/{user.database_id}",
                    "createdAt": iso(self.org.now), "updatedAt": iso(self.org.now),
                }
            else:
                cached = self.user_object(user)
            self._actors[login] = cached
        return cached

    def ghost(self) -> dict:
        return {
            "__typename": "User", "login": model.GHOST, "id": "MDQ6VXNlcjEwMTM3", "databaseId": 10137,
            "name": None, "email": "", "url": f"{HTML}/ghost", "resourcePath": "/ghost",
            "avatarUrl": "https://avatars.githubusercontent.com/u/10137?v=4",
        }

    def user_object(self, user: model.User) -> dict:
        login = user.login
        return {
            "__typename": "User", "login": login, "id": user.node_id, "databaseId": user.database_id,
            "name": user.name, "email": "", "url": f"{HTML}/{login}", "resourcePath": f"/{login}",
            "avatarUrl": f"https://avatars.githubusercontent.com/u/{user.database_id}?v=4",
            "company": None, "location": None, "bio": None,
            "repositories": lambda a, c: self.repository_connection(self.user_repositories(login), a),
            "organizations": lambda a, c: connection([self.org] if login in self.org.users else [], a, lambda o: self.organization()),
        }

    def user_repositories(self, login: str) -> list[model.Repository]:
        names = self.org.memberships.get(login)
        if names is None:
            return []
        return [r for r in (self.org.repository(n) for n in names) if r is not None]

    # --- organisation and repositories -------------------------------------------------

    def organization(self) -> dict:
        org = self.org
        return {
            "__typename": "Organization", "login": org.login, "name": org.login.title(),
            "id": f"O_{org.login}", "databaseId": synthetic_id("org:" + org.login),
            "url": f"{HTML}/{org.login}", "resourcePath": f"/{org.login}",
            "avatarUrl": f"https://avatars.githubusercontent.com/u/{synthetic_id('org:' + org.login)}?v=4",
            "repositories": lambda a, c: self.repository_connection(list(org.repositories), a),
        }

    def repository_connection(self, repos: list[model.Repository], args: dict) -> dict:
        if args.get("isArchived") is not None:
            repos = [r for r in repos if r.is_archived == args["isArchived"]]
        if args.get("isFork") is not None:
            repos = [r for r in repos if r.is_fork == args["isFork"]]
        if args.get("privacy"):
            repos = [r for r in repos if r.is_private == (args["privacy"] == "PRIVATE")]
        field, direction = _order(args)
        if field == "NAME":
            sign = -1 if direction == "DESC" else 1
            decorated = sorted(repos, key=lambda r: r.name.lower(), reverse=sign < 0)
            return connection(decorated, args, self.repository)
        time_of = {"UPDATED_AT": lambda r: r.updated_at, "PUSHED_AT": lambda r: r.pushed_at}.get(field, lambda r: r.created_at)
        items, keys = ordered(repos, time_of, direction)
        return connection(items, args, self.repository, keys)

    def repository(self, repo: model.Repository) -> dict:
        owner = self.organization() if repo.owner == self.org.login else self.actor(repo.owner)
        return {
            "__typename": "Repository", "id": repo.node_id, "databaseId": repo.database_id,
            "name": repo.name, "nameWithOwner": repo.full_name, "owner": owner,
            "description": None, "url": f"{HTML}/{repo.full_name}", "resourcePath": f"/{repo.full_name}",
            "isArchived": repo.is_archived, "isPrivate": repo.is_private, "isFork": repo.is_fork,
            "isEmpty": repo.is_empty, "isDisabled": False, "isLocked": False, "isTemplate": False,
            "isMirror": False, "visibility": "PRIVATE" if repo.is_private else "PUBLIC",
            "createdAt": iso(repo.created_at), "updatedAt": iso(repo.updated_at), "pushedAt": iso(repo.pushed_at),
            "stargazerCount": 0, "forkCount": 0,
            "defaultBranchRef": None if repo.is_empty else {
                "__typename": "Ref", "id": f"REF_{repo.node_id}_{repo.default_branch}",
                "name": repo.default_branch, "prefix": "refs/heads/",
            },
            "pullRequests": lambda a, c: self.pull_request_connection(repo, a),
            "pullRequest": lambda a, c: self._by_number(repo.pull_requests, a["number"], self.pull_request, repo),
            "issues": lambda a, c: self.issue_connection(repo, a),
            "issue": lambda a, c: self._by_number(repo.issues, a["number"], self.issue, repo),
            "deployments": lambda a, c: self.deployment_connection(repo, a),
            "releases": lambda a, c: self.release_connection(repo, a),
            "latestRelease": lambda a, c: self._latest_release(repo),
        }

    def _by_number(self, items, number, render, repo):
        for item in items:
            if item.number == number:
                return render(item, repo)
        return None

    # --- pull requests -------------------------------------------------------------------

    def pull_request_connection(self, repo: model.Repository, args: dict) -> dict:
        prs = repo.pull_requests
        if args.get("states"):
            states = set(args["states"])
            prs = [p for p in prs if p.state in states]
        if args.get("baseRefName"):
            prs = [p for p in prs if p.base_ref == args["baseRefName"]]
        if args.get("headRefName"):
            prs = [p for p in prs if p.head_ref == args["headRefName"]]
        if args.get("labels"):
            wanted = set(args["labels"])
            prs = [p for p in prs if wanted & set(p.labels)]
        field, direction = _order(args)
        time_of = (lambda p: p.updated_at) if field == "UPDATED_AT" else (lambda p: p.created_at)
        items, keys = ordered(prs, time_of, direction)
        return connection(items, args, lambda p: self.pull_request(p, repo), keys)

    def pull_request(self, pr: model.PullRequest, repo: model.Repository) -> dict:
        full = repo.full_name
        url = f"{HTML}/{full}/pull/{pr.number}"
        return {
            "__typename": "PullRequest", "id": pr.node_id, "databaseId": pr.database_id, "number": pr.number,
            "title": pr.title, "body": pr.body, "url": url, "permalink": url,
            "resourcePath": url[len(HTML):], "state": pr.state,
            "isDraft": pr.is_draft, "closed": pr.closed_at is not None, "merged": pr.merged_at is not None,
            "locked": False, "createdAt": iso(pr.created_at), "updatedAt": iso(pr.updated_at),
            "closedAt": iso(pr.closed_at), "mergedAt": iso(pr.merged_at), "publishedAt": iso(pr.created_at),
            "lastEditedAt": None, "additions": pr.additions, "deletions": pr.deletions,
            "changedFiles": pr.changed_files, "baseRefName": pr.base_ref, "headRefName": pr.head_ref,
            "author": self.actor(pr.author_login), "authorAssociation": "MEMBER",
            "repository": lambda a, c: self.repository(repo),
            "reviews": lambda a, c: self.review_connection(pr, a),
            "commits": lambda a, c: connection(pr.commits, a, lambda cm: self.pull_request_commit(cm, pr, url)),
            "timelineItems": lambda a, c: self.timeline(pr, a),
            "comments": lambda a, c: connection(pr.comments, a, self.issue_comment),
            "labels": lambda a, c: connection(sorted(pr.labels), a, self.label),
            "totalCommentsCount": len(pr.comments),
        }

    def review_connection(self, pr: model.PullRequest, args: dict) -> dict:
        reviews = pr.reviews
        if args.get("states"):
            states = set(args["states"])
            reviews = [r for r in reviews if r.state in states]
        if args.get("author"):
            reviews = [r for r in reviews if r.author_login == args["author"]]
        return connection(reviews, args, self.review)

    def review(self, review: model.Review) -> dict:
        return {
            "__typename": "PullRequestReview", "id": review.node_id, "databaseId": review.database_id,
            "state": review.state, "submittedAt": iso(review.submitted_at), "createdAt": iso(review.created_at),
            "publishedAt": iso(review.submitted_at), "updatedAt": iso(review.submitted_at or review.created_at),
            "author": self.actor(review.author_login), "authorAssociation": "MEMBER", "body": "",
        }

    def commit_user(self, login: str | None) -> dict | None:
        """GitActor.user: the GitHub user a commit's author email belongs to (never a bot here)."""
        if login is None:
            return None
        user = self.org.users.get(login)
        return None if user is None or user.is_bot else self.actor(login)

    def pull_request_commit(self, commit: model.Commit, pr: model.PullRequest, pr_url: str) -> dict:
        sha = commit.sha
        message = commit.message or f"Commit {sha[:7]}"
        authored = iso(commit.authored_at)
        author = {"name": commit.author_name, "email": commit.author_email, "date": authored,
                  "user": self.commit_user(commit.author_login)}
        repo_url = pr_url[: pr_url.rindex("/pull/")]
        return {
            "__typename": "PullRequestCommit", "id": f"PURC_{pr.node_id}_{sha[:12]}",
            "url": f"{pr_url}/commits/{sha}",
            "commit": {
                "__typename": "Commit", "id": f"C_{sha}", "oid": sha, "abbreviatedOid": sha[:7],
                "authoredDate": authored, "committedDate": iso(commit.committed_at), "pushedDate": None,
                "additions": commit.additions, "deletions": commit.deletions, "changedFilesIfAvailable": None,
                "message": message, "messageHeadline": message.split("\n", 1)[0],
                "url": f"{repo_url}/commit/{sha}", "author": author,
                "committer": lambda a, c: {**author, "date": iso(commit.committed_at)},
            },
        }

    def issue_comment(self, comment: model.IssueComment) -> dict:
        return {
            "__typename": "IssueComment", "id": comment.node_id, "databaseId": comment.database_id,
            "author": self.actor(comment.author_login), "createdAt": iso(comment.created_at),
            "updatedAt": iso(comment.created_at), "publishedAt": iso(comment.created_at), "body": comment.body,
        }

    def timeline(self, pr: model.PullRequest, args: dict) -> dict:
        """PullRequest.timelineItems: the events the model has, oldest first (GitHub's order),
        of the `itemTypes` asked for (all of them without)."""
        wanted = set(args.get("itemTypes") or (
            "READY_FOR_REVIEW_EVENT", "LABELED_EVENT", "UNLABELED_EVENT", "MERGED_EVENT", "CLOSED_EVENT"))
        # (time, position, typename, label name): the position keeps events of one second in order.
        events = []
        if "READY_FOR_REVIEW_EVENT" in wanted and pr.ready_for_review_at is not None:
            events.append((pr.ready_for_review_at, 0, "ReadyForReviewEvent", None))
        for i, event in enumerate(pr.label_events):
            typename = "LabeledEvent" if event.kind == model.LABELED else "UnlabeledEvent"
            if ("LABELED_EVENT" if event.kind == model.LABELED else "UNLABELED_EVENT") in wanted:
                events.append((event.created_at, 1 + i, typename, event.name))
        if "MERGED_EVENT" in wanted and pr.merged_at is not None:
            events.append((pr.merged_at, 1 << 30, "MergedEvent", None))
        if "CLOSED_EVENT" in wanted and pr.closed_at is not None:
            events.append((pr.closed_at, (1 << 30) + 1, "ClosedEvent", None))
        if args.get("since"):
            since = parse_time(args["since"])
            events = [e for e in events if e[0] >= since]
        events.sort(key=lambda e: (e[0], e[1]))
        skip = args.get("skip") or 0
        events = events[skip:]

        def render(event):
            at, position, typename, label = event
            out = {
                "__typename": typename, "id": f"{typename}_{pr.node_id}_{position}", "createdAt": iso(at),
                "actor": self.actor(pr.author_login), "pullRequest": None,
            }
            if label is not None:
                out["label"] = self.label(label)
                out["labelable"] = None
            if typename == "ClosedEvent":
                out.update(closer=None, closable=None, stateReason=None, url=None, resourcePath=None)
            return out

        return {**connection(events, args, render), "filteredCount": len(events), "pageCount": len(events)}

    # --- issues, deployments, releases ---------------------------------------------------

    def issue_connection(self, repo: model.Repository, args: dict) -> dict:
        issues = repo.issues
        filters = args.get("filterBy") or {}
        states = args.get("states") or filters.get("states")
        if states:
            issues = [i for i in issues if i.state in set(states)]
        labels = args.get("labels") or filters.get("labels")
        if labels:
            issues = [i for i in issues if set(i.labels) & set(labels)]
        if filters.get("since"):
            since = parse_time(filters["since"])
            issues = [i for i in issues if i.updated_at >= since]
        if filters.get("createdBy"):
            issues = [i for i in issues if i.author_login == filters["createdBy"]]
        field, direction = _order(args)
        time_of = (lambda i: i.updated_at) if field == "UPDATED_AT" else (lambda i: i.created_at)
        items, keys = ordered(issues, time_of, direction)
        return connection(items, args, lambda i: self.issue(i, repo), keys)

    def issue(self, issue: model.Issue, repo: model.Repository) -> dict:
        url = f"{HTML}/{repo.full_name}/issues/{issue.number}"
        return {
            "__typename": "Issue", "id": issue.node_id, "databaseId": issue.database_id, "number": issue.number,
            "title": issue.title, "body": issue.body, "url": url, "resourcePath": url[len(HTML):],
            "state": issue.state, "stateReason": "COMPLETED" if issue.closed_at else None,
            "closed": issue.closed_at is not None, "locked": False,
            "createdAt": iso(issue.created_at), "updatedAt": iso(issue.updated_at), "closedAt": iso(issue.closed_at),
            "publishedAt": iso(issue.created_at), "author": self.actor(issue.author_login),
            "authorAssociation": "MEMBER", "repository": lambda a, c: self.repository(repo),
            "labels": lambda a, c: connection(sorted(issue.labels), a, self.label),
            "comments": lambda a, c: connection([], a, None),
            "timelineItems": lambda a, c: self.issue_timeline(issue, repo, a),
        }

    def issue_timeline(self, issue: model.Issue, repo: model.Repository, args: dict) -> dict:
        """Issue.timelineItems: the ClosedEvent of a closed issue (its closer the pull request
        that closed it, else null: closed by hand), of the `itemTypes` asked for."""
        wanted = set(args.get("itemTypes") or ("CLOSED_EVENT",))
        events = []
        if "CLOSED_EVENT" in wanted and issue.closed_at is not None:
            events.append(("ClosedEvent", issue.closed_at))
        if args.get("since"):
            since = parse_time(args["since"])
            events = [e for e in events if e[1] >= since]
        skip = args.get("skip") or 0
        events = events[skip:]

        def render(event):
            typename, at = event
            pr = None
            if issue.closed_by_pull_request is not None:
                pr = next((p for p in repo.pull_requests if p.node_id == issue.closed_by_pull_request), None)
            url = f"{HTML}/{repo.full_name}/issues/{issue.number}#event-{issue.database_id}"
            return {
                "__typename": typename, "id": f"CE_{issue.node_id}", "createdAt": iso(at),
                # closed by a merge: the merger (the author here); by hand: the reporter
                "actor": self.actor(pr.author_login if pr is not None else issue.author_login),
                "closer": self.pull_request(pr, repo) if pr is not None else None,
                "closable": self.issue(issue, repo), "stateReason": "COMPLETED", "url": url,
                "resourcePath": url[len(HTML):], "duplicateOf": None,
            }

        return {**connection(events, args, render), "filteredCount": len(events), "pageCount": len(events)}

    def label(self, name: str) -> dict:
        return {"__typename": "Label", "id": f"LA_{synthetic_id('label:' + name)}", "name": name,
                "color": hashlib.sha1(name.encode()).hexdigest()[:6], "description": None, "isDefault": False}

    def deployment_connection(self, repo: model.Repository, args: dict) -> dict:
        deployments = repo.deployments
        if args.get("environments"):
            wanted = set(args["environments"])
            deployments = [d for d in deployments if d.environment in wanted]
        _, direction = _order(args)
        items, keys = ordered(deployments, lambda d: d.created_at, direction)
        return connection(items, args, lambda d: self.deployment(d, repo), keys)

    def deployment(self, deployment: model.Deployment, repo: model.Repository) -> dict:
        statuses = sorted(deployment.statuses, key=lambda s: (s.created_at, s.database_id), reverse=True)
        latest = statuses[0] if statuses else None
        state = "PENDING"
        if latest is not None:
            state = {"SUCCESS": "ACTIVE"}.get(latest.state, latest.state)
        return {
            "__typename": "Deployment", "id": deployment.node_id, "databaseId": deployment.database_id,
            "environment": deployment.environment, "originalEnvironment": deployment.environment,
            "latestEnvironment": deployment.environment, "task": "deploy", "description": None, "payload": "{}",
            "createdAt": iso(deployment.created_at), "updatedAt": iso(deployment.updated_at),
            "commitOid": deployment.sha,
            "commit": {"__typename": "Commit", "id": f"C_{deployment.sha}", "oid": deployment.sha,
                       "abbreviatedOid": deployment.sha[:7]},
            "ref": {"__typename": "Ref", "id": f"REF_{repo.node_id}_{deployment.ref}", "name": deployment.ref,
                    "prefix": "refs/heads/"},
            # Deployment.creator is non-null: a deleted creator shows as the ghost user.
            "creator": self.actor(deployment.creator_login) or self.ghost(),
            "state": state,
            "repository": lambda a, c: self.repository(repo),
            "statuses": lambda a, c: connection(statuses, a, self.deployment_status),
            "latestStatus": None if latest is None else self.deployment_status(latest),
        }

    def deployment_status(self, status: model.DeploymentStatus) -> dict:
        return {
            "__typename": "DeploymentStatus", "id": status.node_id, "state": status.state,
            "createdAt": iso(status.created_at), "updatedAt": iso(status.created_at),
            "description": None, "environment": None, "logUrl": None, "environmentUrl": None,
        }

    def release_connection(self, repo: model.Repository, args: dict) -> dict:
        field, direction = _order(args)
        if field == "NAME":
            items = sorted(repo.releases, key=lambda r: (r.name, r.database_id), reverse=direction == "DESC")
            return connection(items, args, lambda r: self.release(r, repo))
        items, keys = ordered(repo.releases, lambda r: r.created_at, direction)
        return connection(items, args, lambda r: self.release(r, repo), keys)

    def _latest_release(self, repo):
        published = [r for r in repo.releases if r.published_at and not r.is_draft and not r.is_prerelease]
        if not published:
            return None
        return self.release(max(published, key=lambda r: (r.published_at, r.database_id)), repo)

    def release(self, release: model.Release, repo: model.Repository) -> dict:
        published = [r for r in repo.releases if r.published_at and not r.is_draft and not r.is_prerelease]
        latest = max(published, key=lambda r: (r.published_at, r.database_id)) if published else None
        author = self.actor(release.author_login)
        return {
            "__typename": "Release", "id": release.node_id, "databaseId": release.database_id,
            "name": release.name, "tagName": release.tag_name, "isDraft": release.is_draft,
            "isPrerelease": release.is_prerelease, "isLatest": release is latest,
            "createdAt": iso(release.created_at), "publishedAt": iso(release.published_at),
            "updatedAt": iso(release.published_at or release.created_at), "description": None,
            "url": f"{HTML}/{repo.full_name}/releases/tag/{release.tag_name}",
            "author": author if author is None or author["__typename"] == "User" else None,
            "repository": lambda a, c: self.repository(repo),
        }

    # --- node lookup -----------------------------------------------------------------------

    def node(self, node_id: str):
        if self._index is None:
            index = {}
            for repo in self.org.repositories:
                index[repo.node_id] = (self.repository, repo, None)
                for pr in repo.pull_requests:
                    index[pr.node_id] = (self.pull_request, pr, repo)
                    for review in pr.reviews:
                        index[review.node_id] = (lambda r, _repo: self.review(r), review, repo)
                for issue in repo.issues:
                    index[issue.node_id] = (self.issue, issue, repo)
                for deployment in repo.deployments:
                    index[deployment.node_id] = (self.deployment, deployment, repo)
                for release in repo.releases:
                    index[release.node_id] = (self.release, release, repo)
            for user in self.org.users.values():
                index[user.node_id] = (lambda u, _repo: self.actor(u.login), user, None)
            self._index = index
        entry = self._index.get(node_id)
        if entry is None:
            return None
        render, obj, repo = entry
        return render(obj) if repo is None and render == self.repository else render(obj, repo)


def query_root(renderer: Renderer, viewer_login: str | None, rate_limit: dict,
               hidden: frozenset = frozenset()) -> dict:
    """The Query object for one request; `hidden` holds (viewer login, repository lower-cased)
    pairs answered as GitHub answers a private repository the viewer cannot see."""
    org = renderer.org

    def repository(args, ctx):
        repo = org.repository(f"{args['owner']}/{args['name']}")
        if repo is None or (viewer_login, repo.full_name.lower()) in hidden:
            raise FieldError(
                f"Could not resolve to a Repository with the name '{args['owner']}/{args['name']}'.", "NOT_FOUND"
            )
        return renderer.repository(repo)

    def organization(args, ctx):
        if args["login"].lower() != org.login.lower():
            raise FieldError(f"Could not resolve to an Organization with the login of '{args['login']}'.", "NOT_FOUND")
        return renderer.organization()

    def user(args, ctx):
        login = args["login"]
        found = org.users.get(login)
        if found is None or found.is_bot:
            raise FieldError(f"Could not resolve to a User with the login of '{login}'.", "NOT_FOUND")
        return renderer.actor(login)

    def node(args, ctx):
        found = renderer.node(args["id"])
        if found is None:
            raise FieldError(f"Could not resolve to a node with the global id of '{args['id']}'", "NOT_FOUND")
        return found

    def nodes(args, ctx):
        out = []
        for i, node_id in enumerate(args["ids"]):
            found = renderer.node(node_id)
            if found is None:
                ctx.errors.append({
                    "type": "NOT_FOUND", "path": ["nodes", i],
                    "message": f"Could not resolve to a node with the global id of '{node_id}'",
                })
            out.append(found)
        return out

    return {
        "__typename": "Query",
        "viewer": lambda a, c: renderer.actor(viewer_login) if viewer_login else renderer.ghost(),
        "repository": repository,
        "organization": organization,
        "user": user,
        "node": node,
        "nodes": nodes,
        "rateLimit": lambda a, c: {"__typename": "RateLimit", **rate_limit},
    }
