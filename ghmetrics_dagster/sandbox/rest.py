"""GitHub's REST API (v3) over the synthetic organisation: routes, shapes, pagination.

Pagination as GitHub: `per_page` defaults to 30 and is clamped to 100, `page` starts at 1,
a `Link` header carries `prev`/`next`/`last`/`first`. Pages past the end are empty. Offsets
of 10,000 items or more (e.g. `page=101&per_page=100`) answer 422, as GitHub does for large
datasets; pull-request commits stop at 250 and filtered workflow-run listings at 1,000
results, as documented by GitHub.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from ghmetrics_dagster.sandbox import copilot, model
from ghmetrics_dagster.sandbox.graphql_objects import HTML, iso, parse_time, synthetic_id

DOCS = "https://docs.github.com/rest"
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
MAX_OFFSET = 10_000
PR_COMMITS_CAP = 250
FILTERED_RUNS_CAP = 1000
GHOST = {"login": "ghost", "id": 10137, "node_id": "MDQ6VXNlcjEwMTM3"}


@dataclass
class RestResponse:
    status: int
    body: object
    headers: dict = field(default_factory=dict)


class RestError(Exception):
    def __init__(self, code: int, message: str, documentation_url: str = DOCS, **extra):
        super().__init__(message)
        self.response = RestResponse(code, {"message": message, **extra, "documentation_url": documentation_url})


def not_found(doc: str = DOCS) -> RestError:
    return RestError(404, "Not Found", doc, status="404")


class RestApi:
    """Renders one request; `base` is the server's root URL (used in `url` fields and links)."""

    def __init__(self, org: model.Organization, base: str, viewer_login: str | None, hidden: frozenset = frozenset(),
                 copilot_statuses: dict[str, int] | None = None):
        self.hidden = hidden  # (viewer login, repository lower-cased): a private repository they cannot see
        # organisation login (lower-cased) -> the status its Copilot reports answer with; the
        # sandbox's own organisation answers 200 unless told otherwise, any other 404.
        self.copilot_statuses = copilot_statuses or {}
        self.org = org
        self.base = base
        self.viewer_login = viewer_login

    # --- routing -------------------------------------------------------------------------

    def handle(self, path: str, query: dict[str, str]) -> RestResponse:
        for pattern, method in _ROUTES:
            match = pattern.fullmatch(path)
            if match:
                try:
                    return getattr(self, method)(query, *match.groups())
                except RestError as error:
                    return error.response
        return not_found().response

    def _repo(self, owner: str, name: str) -> model.Repository:
        repo = self.org.repository(f"{owner}/{name}")
        if repo is None or (self.viewer_login, repo.full_name.lower()) in self.hidden:
            raise not_found(f"{DOCS}/repos/repos#get-a-repository")
        return repo

    def _paginate(self, path: str, query: dict, items: list, render, cap: int | None = None) -> RestResponse:
        per_page, page = _page_params(query)
        if (page - 1) * per_page >= MAX_OFFSET:
            raise RestError(
                422,
                "Pagination with the page parameter is not supported for large datasets, please use cursor based "
                "pagination (after/before)",
                f"{DOCS}/using-the-rest-api/using-pagination-in-the-rest-api",
                status="422",
            )
        if cap is not None:
            items = items[:cap]
        start = (page - 1) * per_page
        body = [render(x) for x in items[start : start + per_page]]
        return RestResponse(200, body, self._links(path, query, page, per_page, len(items)))

    def _links(self, path: str, query: dict, page: int, per_page: int, total: int) -> dict:
        last = max(1, -(-total // per_page))
        params = {k: v for k, v in query.items() if k != "page"}

        def url(p: int) -> str:
            return f"{self.base}{path}?{urlencode({**params, 'page': p})}"

        links = []
        if page > 1:
            links.append(f'<{url(min(page - 1, last))}>; rel="prev"')
        if page < last:
            links.append(f'<{url(page + 1)}>; rel="next"')
            links.append(f'<{url(last)}>; rel="last"')
        if page > 1:
            links.append(f'<{url(1)}>; rel="first"')
        return {"Link": ", ".join(links)} if links else {}

    # --- users and repositories ----------------------------------------------------------

    def user(self, login: str | None) -> dict | None:
        if login is None:
            return self._user_dict(GHOST["login"], GHOST["id"], GHOST["node_id"], False)
        found = self.org.users.get(login)
        if found is None:
            is_bot = login.endswith("[bot]")
            return self._user_dict(login, synthetic_id(login), ("BOT_" if is_bot else "U_") + f"x{synthetic_id(login)}", is_bot)
        return self._user_dict(found.login, found.database_id, found.node_id, found.is_bot)

    def _user_dict(self, login: str, id_: int, node_id: str, is_bot: bool) -> dict:
        path = quote(login)
        return {
            "login": login, "id": id_, "node_id": node_id,
            "avatar_url": f"https://avatars.githubusercontent.com/u/{id_}?v=4", "gravatar_id": "",
            "url": f"{self.base}/users/{path}", "html_url": f"{HTML}/{path}",
            "repos_url": f"{self.base}/users/{path}/repos",
            "type": "Bot" if is_bot else "User", "user_view_type": "public", "site_admin": False,
        }

    def _full_user(self, login: str) -> dict:
        found = self.org.users.get(login)
        created = iso(self.org.now - dt.timedelta(days=900))
        return {
            **self.user(login), "name": found.name if found else None, "company": None, "blog": "",
            "location": None, "email": None, "bio": None, "public_repos": 0, "followers": 0, "following": 0,
            "created_at": created, "updated_at": created,
        }

    def _org_owner(self) -> dict:
        org = self.org
        oid = synthetic_id("org:" + org.login)
        return {
            "login": org.login, "id": oid, "node_id": f"O_{org.login}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{oid}?v=4", "gravatar_id": "",
            "url": f"{self.base}/users/{org.login}", "html_url": f"{HTML}/{org.login}",
            "repos_url": f"{self.base}/orgs/{org.login}/repos", "type": "Organization",
            "user_view_type": "public", "site_admin": False,
        }

    def repository(self, repo: model.Repository) -> dict:
        api = f"{self.base}/repos/{repo.full_name}"
        return {
            "id": repo.database_id, "node_id": repo.node_id, "name": repo.name, "full_name": repo.full_name,
            "private": repo.is_private,
            "owner": self._org_owner() if repo.owner == self.org.login else self.user(repo.owner),
            "html_url": f"{HTML}/{repo.full_name}", "description": None, "fork": repo.is_fork, "url": api,
            "pulls_url": api + "/pulls{/number}", "issues_url": api + "/issues{/number}",
            "deployments_url": api + "/deployments", "releases_url": api + "/releases{/id}",
            "created_at": iso(repo.created_at), "updated_at": iso(repo.updated_at), "pushed_at": iso(repo.pushed_at),
            "size": 0 if repo.is_empty else 1024, "stargazers_count": 0, "watchers_count": 0, "language": "Python",
            "has_issues": True, "forks_count": 0, "archived": repo.is_archived, "disabled": False,
            "open_issues_count": sum(1 for i in repo.issues if i.closed_at is None)
            + sum(1 for p in repo.pull_requests if p.closed_at is None),
            "visibility": "private" if repo.is_private else "public", "forks": 0, "open_issues": 0, "watchers": 0,
            "default_branch": repo.default_branch,
        }

    def get_root(self, query):
        return RestResponse(200, {"current_user_url": f"{self.base}/user", "repository_url": f"{self.base}/repos/{{owner}}/{{repo}}",
                                  "rate_limit_url": f"{self.base}/rate_limit"})

    def get_viewer(self, query):
        if self.viewer_login is None:
            raise RestError(401, "Requires authentication", f"{DOCS}/users/users#get-the-authenticated-user")
        return RestResponse(200, self._full_user(self.viewer_login))

    def get_user(self, query, login):
        if login == "ghost":
            return RestResponse(200, self.user(None))
        if login not in self.org.users:
            raise not_found(f"{DOCS}/users/users#get-a-user")
        return RestResponse(200, self._full_user(login))

    def get_org(self, query, login):
        if login.lower() != self.org.login.lower():
            raise not_found(f"{DOCS}/orgs/orgs#get-an-organization")
        return RestResponse(200, {**self._org_owner(), "name": self.org.login.title(), "public_repos": len(self.org.repositories)})

    def list_org_repos(self, query, login):
        if login.lower() != self.org.login.lower():
            raise not_found(f"{DOCS}/repos/repos#list-organization-repositories")
        repos = _sort(self.org.repositories, query, {"created": lambda r: r.created_at, "updated": lambda r: r.updated_at,
                                                     "pushed": lambda r: r.pushed_at, "full_name": lambda r: r.full_name},
                      "created")
        return self._paginate(f"/orgs/{login}/repos", query, repos, self.repository)

    def list_viewer_repos(self, query):
        if self.viewer_login is None:
            raise RestError(401, "Requires authentication", f"{DOCS}/repos/repos#list-repositories-for-the-authenticated-user")
        names = self.org.memberships.get(self.viewer_login, [])
        repos = [r for r in (self.org.repository(n) for n in names)
                 if r is not None and (self.viewer_login, r.full_name.lower()) not in self.hidden]
        repos = _sort(repos, query, {"created": lambda r: r.created_at, "updated": lambda r: r.updated_at,
                                     "pushed": lambda r: r.pushed_at, "full_name": lambda r: r.full_name}, "full_name")
        return self._paginate("/user/repos", query, repos, self.repository)

    def get_repo(self, query, owner, name):
        return RestResponse(200, self.repository(self._repo(owner, name)))

    # --- pull requests -------------------------------------------------------------------

    def _pull(self, repo: model.Repository, pr: model.PullRequest, detail: bool = False) -> dict:
        api = f"{self.base}/repos/{repo.full_name}/pulls/{pr.number}"
        html = f"{HTML}/{repo.full_name}/pull/{pr.number}"
        head_sha = pr.commits[-1].sha if pr.commits else "0" * 40
        out = {
            "url": api, "id": pr.database_id, "node_id": pr.node_id, "html_url": html,
            "diff_url": html + ".diff", "patch_url": html + ".patch",
            "issue_url": f"{self.base}/repos/{repo.full_name}/issues/{pr.number}", "number": pr.number,
            "state": "open" if pr.closed_at is None else "closed", "locked": False, "title": pr.title,
            "user": self.user(pr.author_login), "body": pr.body, "labels": self._labels(repo, pr.labels),
            "milestone": None,
            "active_lock_reason": None, "created_at": iso(pr.created_at), "updated_at": iso(pr.updated_at),
            "closed_at": iso(pr.closed_at), "merged_at": iso(pr.merged_at),
            "merge_commit_sha": None, "assignee": None, "assignees": [], "requested_reviewers": [],
            "commits_url": api + "/commits", "review_comments_url": api + "/comments",
            "head": {"label": f"{repo.owner}:{pr.head_ref}", "ref": pr.head_ref, "sha": head_sha,
                     "user": self._org_owner(), "repo": None},
            "base": {"label": f"{repo.owner}:{pr.base_ref}", "ref": pr.base_ref,
                     "sha": "0" * 40, "user": self._org_owner(), "repo": None},
            "author_association": "MEMBER", "auto_merge": None, "draft": pr.is_draft,
        }
        if detail:
            out.update({
                "merged": pr.merged_at is not None, "mergeable": None, "rebaseable": None,
                "mergeable_state": "unknown", "merged_by": None, "comments": len(pr.comments),
                "review_comments": 0, "maintainer_can_modify": False, "commits": len(pr.commits),
                "additions": pr.additions, "deletions": pr.deletions, "changed_files": pr.changed_files,
            })
        return out

    def _pr(self, repo: model.Repository, number: str) -> model.PullRequest:
        for pr in repo.pull_requests:
            if pr.number == int(number):
                return pr
        raise not_found(f"{DOCS}/pulls/pulls#get-a-pull-request")

    def list_pulls(self, query, owner, name):
        repo = self._repo(owner, name)
        state = query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise _invalid("PullRequest", "state")
        prs = [p for p in repo.pull_requests if state == "all" or (p.closed_at is None) == (state == "open")]
        if query.get("base"):
            prs = [p for p in prs if p.base_ref == query["base"]]
        if query.get("head"):
            prs = [p for p in prs if f"{repo.owner}:{p.head_ref}" == query["head"] or p.head_ref == query["head"]]
        prs = _sort(prs, query, {"created": lambda p: p.created_at, "updated": lambda p: p.updated_at,
                                 "popularity": lambda p: p.created_at, "long-running": lambda p: p.created_at}, "created")
        return self._paginate(f"/repos/{owner}/{name}/pulls", query, prs, lambda p: self._pull(repo, p))

    def get_pull(self, query, owner, name, number):
        repo = self._repo(owner, name)
        return RestResponse(200, self._pull(repo, self._pr(repo, number), detail=True))

    def list_reviews(self, query, owner, name, number):
        repo = self._repo(owner, name)
        pr = self._pr(repo, number)
        api = f"{self.base}/repos/{repo.full_name}/pulls/{pr.number}"
        head_sha = pr.commits[-1].sha if pr.commits else "0" * 40

        def render(review: model.Review) -> dict:
            out = {
                "id": review.database_id, "node_id": review.node_id, "user": self.user(review.author_login),
                "body": "", "state": review.state,
                "html_url": f"{HTML}/{repo.full_name}/pull/{pr.number}#pullrequestreview-{review.database_id}",
                "pull_request_url": api, "author_association": "MEMBER",
                "_links": {"html": {"href": f"{HTML}/{repo.full_name}/pull/{pr.number}#pullrequestreview-{review.database_id}"},
                           "pull_request": {"href": api}},
            }
            if review.submitted_at is not None:
                out["submitted_at"] = iso(review.submitted_at)
            out["commit_id"] = head_sha
            return out

        reviews = sorted(pr.reviews, key=lambda r: r.database_id)
        return self._paginate(f"/repos/{owner}/{name}/pulls/{number}/reviews", query, reviews, render)

    def list_pull_commits(self, query, owner, name, number):
        repo = self._repo(owner, name)
        pr = self._pr(repo, number)
        return self._paginate(f"/repos/{owner}/{name}/pulls/{number}/commits", query, pr.commits,
                              lambda c: self._commit(repo, c), cap=PR_COMMITS_CAP)

    def _commit(self, repo: model.Repository, commit: model.Commit) -> dict:
        api = f"{self.base}/repos/{repo.full_name}/commits/{commit.sha}"
        author = {"name": commit.author_name, "email": commit.author_email, "date": iso(commit.authored_at)}
        user = self.user(commit.author_login) if commit.author_login in self.org.users else None
        return {
            "sha": commit.sha, "node_id": f"C_{commit.sha}",
            "commit": {
                "author": author,
                "committer": {**author, "date": iso(commit.committed_at)},
                "message": f"Commit {commit.sha[:7]}",
                "tree": {"sha": commit.sha[::-1], "url": f"{self.base}/repos/{repo.full_name}/git/trees/{commit.sha[::-1]}"},
                "url": f"{self.base}/repos/{repo.full_name}/git/commits/{commit.sha}", "comment_count": 0,
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                                 "verified_at": None},
            },
            "url": api, "html_url": f"{HTML}/{repo.full_name}/commit/{commit.sha}",
            "comments_url": api + "/comments", "author": user, "committer": user, "parents": [],
        }

    # --- issues --------------------------------------------------------------------------

    def list_issues(self, query, owner, name):
        repo = self._repo(owner, name)
        state = query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise _invalid("Issue", "state")
        # GitHub's REST issues include pull requests, marked by a `pull_request` key.
        items: list = list(repo.issues) + list(repo.pull_requests)
        items = [i for i in items if state == "all" or (i.closed_at is None) == (state == "open")]
        if query.get("labels"):
            wanted = {x.strip() for x in query["labels"].split(",") if x.strip()}
            items = [i for i in items if wanted <= set(i.labels)]
        if query.get("since"):
            try:
                since = parse_time(query["since"])
            except ValueError:
                raise _invalid("Issue", "since") from None
            items = [i for i in items if i.updated_at >= since]
        items = _sort(items, query, {"created": lambda i: i.created_at, "updated": lambda i: i.updated_at,
                                     "comments": lambda i: i.created_at}, "created", tie=lambda i: i.number)
        return self._paginate(f"/repos/{owner}/{name}/issues", query, items, lambda i: self._issue(repo, i))

    def get_issue(self, query, owner, name, number):
        repo = self._repo(owner, name)
        for item in list(repo.issues) + list(repo.pull_requests):
            if item.number == int(number):
                return RestResponse(200, self._issue(repo, item))
        raise not_found(f"{DOCS}/issues/issues#get-an-issue")

    def _labels(self, repo: model.Repository, names: list[str]) -> list[dict]:
        """REST label objects (issues and pull requests carry the same ones)."""
        return [
            {"id": synthetic_id("label:" + n), "node_id": f"LA_{synthetic_id('label:' + n)}",
             "url": f"{self.base}/repos/{repo.full_name}/labels/{quote(n)}", "name": n, "color": "d73a4a",
             "default": False, "description": None}
            for n in sorted(names)
        ]

    def _issue(self, repo: model.Repository, item) -> dict:
        api = f"{self.base}/repos/{repo.full_name}/issues/{item.number}"
        is_pr = isinstance(item, model.PullRequest)
        html = f"{HTML}/{repo.full_name}/{'pull' if is_pr else 'issues'}/{item.number}"
        labels = self._labels(repo, item.labels)
        out = {
            "url": api, "repository_url": f"{self.base}/repos/{repo.full_name}", "html_url": html,
            "id": item.database_id, "node_id": item.node_id, "number": item.number, "title": item.title,
            "user": self.user(item.author_login), "labels": labels,
            "state": "open" if item.closed_at is None else "closed", "locked": False, "assignee": None,
            "assignees": [], "milestone": None, "comments": len(item.comments) if is_pr else 0,
            "created_at": iso(item.created_at), "updated_at": iso(item.updated_at), "closed_at": iso(item.closed_at),
            "author_association": "MEMBER", "active_lock_reason": None, "body": item.body,
            "state_reason": None if item.closed_at is None else "completed",
        }
        if is_pr:
            out["draft"] = item.is_draft
            out["pull_request"] = {
                "url": f"{self.base}/repos/{repo.full_name}/pulls/{item.number}", "html_url": html,
                "diff_url": html + ".diff", "patch_url": html + ".patch", "merged_at": iso(item.merged_at),
            }
        return out

    # --- deployments, releases, workflow runs ---------------------------------------------

    def _deployment(self, repo: model.Repository, d: model.Deployment) -> dict:
        api = f"{self.base}/repos/{repo.full_name}/deployments/{d.database_id}"
        return {
            "url": api, "id": d.database_id, "node_id": d.node_id, "sha": d.sha, "ref": d.ref, "task": "deploy",
            "payload": {}, "original_environment": d.environment, "environment": d.environment,
            "description": None, "creator": self.user(d.creator_login), "created_at": iso(d.created_at),
            "updated_at": iso(d.updated_at), "statuses_url": api + "/statuses",
            "repository_url": f"{self.base}/repos/{repo.full_name}", "transient_environment": False,
            "production_environment": d.environment.lower() in ("production", "prod"),
        }

    def _deployment_by_id(self, repo, deployment_id) -> model.Deployment:
        for d in repo.deployments:
            if d.database_id == int(deployment_id):
                return d
        raise not_found(f"{DOCS}/deployments/deployments#get-a-deployment")

    def list_deployments(self, query, owner, name):
        repo = self._repo(owner, name)
        items = list(repo.deployments)
        for param, attr in (("environment", "environment"), ("sha", "sha"), ("ref", "ref")):
            if query.get(param):
                items = [d for d in items if getattr(d, attr) == query[param]]
        items.sort(key=lambda d: d.database_id, reverse=True)
        return self._paginate(f"/repos/{owner}/{name}/deployments", query, items, lambda d: self._deployment(repo, d))

    def get_deployment(self, query, owner, name, deployment_id):
        repo = self._repo(owner, name)
        return RestResponse(200, self._deployment(repo, self._deployment_by_id(repo, deployment_id)))

    def list_deployment_statuses(self, query, owner, name, deployment_id):
        repo = self._repo(owner, name)
        d = self._deployment_by_id(repo, deployment_id)
        api = f"{self.base}/repos/{repo.full_name}/deployments/{d.database_id}"

        def render(s: model.DeploymentStatus) -> dict:
            return {
                "url": f"{api}/statuses/{s.database_id}", "id": s.database_id, "node_id": s.node_id,
                "state": s.state.lower(), "creator": self.user(d.creator_login), "description": "",
                "environment": d.environment, "target_url": "", "log_url": "", "environment_url": "",
                "created_at": iso(s.created_at), "updated_at": iso(s.created_at), "deployment_url": api,
                "repository_url": f"{self.base}/repos/{repo.full_name}",
            }

        statuses = sorted(d.statuses, key=lambda s: (s.created_at, s.database_id), reverse=True)
        return self._paginate(f"/repos/{owner}/{name}/deployments/{deployment_id}/statuses", query, statuses, render)

    def list_releases(self, query, owner, name):
        repo = self._repo(owner, name)

        def render(r: model.Release) -> dict:
            api = f"{self.base}/repos/{repo.full_name}/releases/{r.database_id}"
            return {
                "url": api, "html_url": f"{HTML}/{repo.full_name}/releases/tag/{r.tag_name}",
                "assets_url": api + "/assets", "upload_url": f"{self.base}/repos/{repo.full_name}/releases/{r.database_id}/assets{{?name,label}}",
                "tarball_url": f"{self.base}/repos/{repo.full_name}/tarball/{r.tag_name}",
                "zipball_url": f"{self.base}/repos/{repo.full_name}/zipball/{r.tag_name}",
                "id": r.database_id, "node_id": r.node_id, "tag_name": r.tag_name,
                "target_commitish": repo.default_branch, "name": r.name, "draft": r.is_draft,
                "prerelease": r.is_prerelease, "created_at": iso(r.created_at), "published_at": iso(r.published_at),
                "author": self.user(r.author_login), "assets": [], "body": None,
            }

        items = sorted(repo.releases, key=lambda r: (r.created_at, r.database_id), reverse=True)
        return self._paginate(f"/repos/{owner}/{name}/releases", query, items, render)

    def _run(self, repo: model.Repository, run: model.WorkflowRun) -> dict:
        api = f"{self.base}/repos/{repo.full_name}/actions/runs/{run.database_id}"
        slug = re.sub(r"[^a-z0-9]+", "-", run.name.lower()).strip("-") or "workflow"
        return {
            "id": run.database_id, "name": run.name, "node_id": f"WFR_{run.database_id}",
            "head_branch": run.head_branch, "head_sha": run.head_sha,
            "path": f".github/workflows/{slug}.yml", "display_title": run.name,
            "run_number": run.database_id % 100_000, "event": run.event, "status": run.status,
            "conclusion": run.conclusion, "workflow_id": run.workflow_id,
            "check_suite_id": run.database_id + 1, "url": api,
            "html_url": f"{HTML}/{repo.full_name}/actions/runs/{run.database_id}", "pull_requests": [],
            "created_at": iso(run.created_at), "updated_at": iso(run.updated_at), "run_attempt": run.run_attempt,
            "run_started_at": iso(run.run_started_at), "jobs_url": api + "/jobs", "logs_url": api + "/logs",
            "workflow_url": f"{self.base}/repos/{repo.full_name}/actions/workflows/{run.workflow_id}",
            "repository": {"id": repo.database_id, "node_id": repo.node_id, "name": repo.name,
                           "full_name": repo.full_name, "private": repo.is_private},
        }

    def list_runs(self, query, owner, name):
        repo = self._repo(owner, name)
        runs = list(repo.workflow_runs)
        filtered = False
        if query.get("branch"):
            runs, filtered = [r for r in runs if r.head_branch == query["branch"]], True
        if query.get("event"):
            runs, filtered = [r for r in runs if r.event == query["event"]], True
        if query.get("head_sha"):
            runs, filtered = [r for r in runs if r.head_sha == query["head_sha"]], True
        if query.get("status"):
            wanted = query["status"]
            runs, filtered = [r for r in runs if r.status == wanted or r.conclusion == wanted], True
        if query.get("created"):
            try:
                low, high = _date_range(query["created"])
            except ValueError:
                raise _invalid("WorkflowRun", "created") from None
            runs, filtered = [r for r in runs if low <= r.created_at <= high], True
        runs.sort(key=lambda r: (r.created_at, r.database_id), reverse=True)
        if filtered:
            runs = runs[:FILTERED_RUNS_CAP]
        page = self._paginate(f"/repos/{owner}/{name}/actions/runs", query, runs, lambda r: self._run(repo, r))
        return RestResponse(200, {"total_count": len(runs), "workflow_runs": page.body}, page.headers)

    def get_run(self, query, owner, name, run_id):
        repo = self._repo(owner, name)
        for run in repo.workflow_runs:
            if run.database_id == int(run_id):
                return RestResponse(200, self._run(repo, run))
        raise not_found(f"{DOCS}/actions/workflow-runs#get-a-workflow-run")


    # --- Copilot usage metrics reports --------------------------------------------------------

    def get_copilot_report(self, query, login, report):
        docs = f"{DOCS}/copilot/copilot-usage-metrics"
        status = self.copilot_statuses.get(login.lower(), 200 if login.lower() == self.org.login.lower() else 404)
        if status == 403:
            raise RestError(403, "Resource not accessible by personal access token", docs, status="403")
        if status != 200:
            raise not_found(docs)
        report = report.removesuffix("/latest")
        day = None
        if report.endswith("-1-day"):
            try:
                day = dt.date.fromisoformat(query.get("day", ""))
            except ValueError:
                raise RestError(422, "Invalid request: day must be a date (YYYY-MM-DD).", docs, status="422") from None
            if not copilot.has_report(self.org, day):
                raise not_found(docs)
        start, end = copilot.report_window(self.org, report, day)
        body = {"download_links": copilot.download_links(self.org, self.base, report, start, end)}
        if day is not None:
            body["report_day"] = day.isoformat()
        else:
            body.update(report_start_day=start.isoformat(), report_end_day=end.isoformat())
        return RestResponse(200, body)


def _invalid(resource: str, field_name: str) -> RestError:
    return RestError(422, "Validation Failed", DOCS, errors=[{"resource": resource, "field": field_name, "code": "invalid"}],
                     status="422")


def _page_params(query: dict) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        try:
            value = int(query.get(name, default))
        except ValueError:
            return default
        return value if value >= 1 else default

    return min(number("per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE), number("page", 1)


def _sort(items: list, query: dict, keys: dict, default: str, tie=lambda x: x.database_id) -> list:
    """GitHub's sort/direction parameters: direction defaults to desc, asc for names."""
    sort = query.get("sort", default)
    if sort not in keys:
        sort = default
    default_direction = "asc" if sort == "full_name" else "desc"
    direction = query.get("direction", default_direction)
    key = keys[sort]
    return sorted(items, key=lambda x: (key(x), tie(x)), reverse=direction != "asc")


def _date_range(text: str) -> tuple[dt.datetime, dt.datetime]:
    """GitHub's date qualifiers: `A..B`, `>=A`, `>A`, `<=B`, `<B`, or a single date."""
    low, high = dt.datetime.min.replace(tzinfo=dt.UTC), dt.datetime.max.replace(tzinfo=dt.UTC)

    def point(s: str, end: bool) -> dt.datetime:
        if len(s) == 10:
            day = dt.datetime.fromisoformat(s).replace(tzinfo=dt.UTC)
            return day + dt.timedelta(days=1, microseconds=-1) if end else day
        return parse_time(s)

    if ".." in text:
        a, b = text.split("..", 1)
        if a and a != "*":
            low = point(a, False)
        if b and b != "*":
            high = point(b, True)
    elif text.startswith(">="):
        low = point(text[2:], False)
    elif text.startswith(">"):
        low = point(text[1:], True) + dt.timedelta(microseconds=1)
    elif text.startswith("<="):
        high = point(text[2:], True)
    elif text.startswith("<"):
        high = point(text[1:], False) - dt.timedelta(microseconds=1)
    else:
        low, high = point(text, False), point(text, True)
    return low, high


_SEG = r"([^/]+)"
_ROUTES = [
    (re.compile(p), m)
    for p, m in [
        (r"/?", "get_root"),
        (r"/user", "get_viewer"),
        (r"/user/repos", "list_viewer_repos"),
        (rf"/users/{_SEG}", "get_user"),
        (rf"/orgs/{_SEG}", "get_org"),
        (rf"/orgs/{_SEG}/repos", "list_org_repos"),
        (rf"/repos/{_SEG}/{_SEG}", "get_repo"),
        (rf"/repos/{_SEG}/{_SEG}/pulls", "list_pulls"),
        (rf"/repos/{_SEG}/{_SEG}/pulls/(\d+)", "get_pull"),
        (rf"/repos/{_SEG}/{_SEG}/pulls/(\d+)/reviews", "list_reviews"),
        (rf"/repos/{_SEG}/{_SEG}/pulls/(\d+)/commits", "list_pull_commits"),
        (rf"/repos/{_SEG}/{_SEG}/issues", "list_issues"),
        (rf"/repos/{_SEG}/{_SEG}/issues/(\d+)", "get_issue"),
        (rf"/repos/{_SEG}/{_SEG}/deployments", "list_deployments"),
        (rf"/repos/{_SEG}/{_SEG}/deployments/(\d+)", "get_deployment"),
        (rf"/repos/{_SEG}/{_SEG}/deployments/(\d+)/statuses", "list_deployment_statuses"),
        (rf"/repos/{_SEG}/{_SEG}/releases", "list_releases"),
        (rf"/repos/{_SEG}/{_SEG}/actions/runs", "list_runs"),
        (rf"/repos/{_SEG}/{_SEG}/actions/runs/(\d+)", "get_run"),
        (rf"/orgs/{_SEG}/copilot/metrics/reports/(organization-1-day|organization-28-day/latest|users-1-day|users-28-day/latest)",
         "get_copilot_report"),
    ]
]
