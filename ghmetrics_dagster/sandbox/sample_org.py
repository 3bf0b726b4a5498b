"""A small hand-built organisation for the server's tests and benchmark.

It does not try to be realistic (the generator does that); it covers every shape the server
renders: bots, a deleted user, drafts, merged/closed/open pull requests, reviews, commits,
deployments with statuses, releases, workflow runs and labelled issues. Deterministic per seed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random

from ghmetrics_dagster.sandbox import model

EPOCH = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def _sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def sample_organization(
    seed: int = 1,
    repos: int = 2,
    prs_per_repo: int = 40,
    reviews_per_pr: int = 3,
    commits_per_pr: int = 5,
    owner: str = "acme",
) -> model.Organization:
    rng = random.Random(seed)
    users: dict[str, model.User] = {}
    for i, login in enumerate(["alice", "bob", "carol", "dave", "erin", "frank"]):
        users[login] = model.User(login, login.title(), f"U_sample{i}", 1000 + i)
    users["dependabot[bot]"] = model.User("dependabot[bot]", "dependabot", "BOT_sample0", 49699333, is_bot=True)
    humans = sorted(u for u in users if not users[u].is_bot)
    authors = humans + ["dependabot[bot]", None]  # None: a deleted user (ghost)

    org = model.Organization(login=owner, now=EPOCH + dt.timedelta(weeks=8), users=users, seed=seed)
    ids = iter(range(5_000_000, 50_000_000))
    for r in range(repos):
        created = EPOCH - dt.timedelta(days=200 + r)
        repo = model.Repository(
            node_id=f"R_sample{r}",
            database_id=next(ids),
            owner=owner,
            name=f"service-{r}",
            default_branch="main",
            created_at=created,
            updated_at=org.now,
            pushed_at=org.now - dt.timedelta(hours=r),
            deployment_style=["github_deployments", "workflow_runs", "releases", "merges"][r % 4],
        )
        for n in range(1, prs_per_repo + 1):
            opened = EPOCH + dt.timedelta(hours=rng.randint(0, 24 * 50))
            author = authors[rng.randrange(len(authors))]
            db = next(ids)
            pr = model.PullRequest(
                node_id=f"PR_sample{db}",
                database_id=db,
                number=2 * n - 1,
                title=f"Change {n} of {repo.name}" if n % 17 else f'Revert "Change {n - 1} of {repo.name}"',
                body=f"Body of change {n}.",
                author_login=author,
                created_at=opened,
                updated_at=opened,
                base_ref="main",
                head_ref=f"feature/{n}",
                additions=rng.randint(1, 400),
                deletions=rng.randint(0, 200),
                changed_files=rng.randint(1, 20),
            )
            t = opened - dt.timedelta(hours=rng.randint(1, 30))
            for c in range(commits_per_pr):
                t += dt.timedelta(minutes=rng.randint(5, 300))
                login = author if c % 4 else humans[rng.randrange(len(humans))]
                name = users[login].name if login else "Former Employee"
                pr.commits.append(
                    model.Commit(
                        sha=_sha(repo.name, n, c), authored_at=t, committed_at=t + dt.timedelta(minutes=1),
                        additions=rng.randint(1, 100), deletions=rng.randint(0, 50), author_login=login,
                        author_name=name, author_email=f"{(login or 'ghost').split('[')[0]}@example.com",
                    )
                )
            if n % 9 == 0:
                pr.ready_for_review_at = opened + dt.timedelta(hours=rng.randint(1, 20))
            t = opened + dt.timedelta(hours=rng.randint(1, 48))
            for v in range(reviews_per_pr):
                rdb = next(ids)
                state = ["COMMENTED", "CHANGES_REQUESTED", "APPROVED"][min(v, 2)]
                pr.reviews.append(
                    model.Review(
                        node_id=f"PRR_sample{rdb}", database_id=rdb,
                        author_login=humans[rng.randrange(len(humans))], state=state,
                        submitted_at=t, created_at=t - dt.timedelta(minutes=3),
                    )
                )
                t += dt.timedelta(hours=rng.randint(1, 12))
            outcome = rng.random()
            if outcome < 0.7:
                pr.merged_at = pr.closed_at = t + dt.timedelta(hours=rng.randint(1, 24))
            elif outcome < 0.8:
                pr.closed_at = t + dt.timedelta(hours=2)
            elif outcome < 0.9:
                pr.is_draft = True
            # Labels, without randomness (the rest stays as it was): one on some pull requests,
            # and on a few a hotfix label added and removed again.
            if n % 4 == 0:
                pr.label_events.append(model.LabelEvent(opened, model.LABELED, ["feature", "bug", "chore"][n % 3]))
            if n % 10 == 0:
                pr.label_events += [
                    model.LabelEvent(opened + dt.timedelta(minutes=30), model.LABELED, "hotfix"),
                    model.LabelEvent(opened + dt.timedelta(minutes=50), model.UNLABELED, "hotfix"),
                ]
            pr.labels = model.replay_labels(pr.label_events)
            pr.updated_at = max([pr.created_at, t] + [x for x in (pr.closed_at, pr.ready_for_review_at) if x]
                                + [e.created_at for e in pr.label_events])
            repo.pull_requests.append(pr)
            # Issues take the even numbers, pull requests the odd ones (they share one sequence).
            if n % 3 == 0:
                idb = next(ids)
                closed = opened + dt.timedelta(hours=rng.randint(1, 72)) if n % 2 else None
                repo.issues.append(
                    model.Issue(
                        node_id=f"I_sample{idb}", database_id=idb, number=2 * n, title=f"Issue {n}",
                        body="Something broke.", author_login=humans[n % len(humans)], created_at=opened,
                        updated_at=closed or opened, closed_at=closed,
                        labels=["incident"] if n % 6 == 0 else ["bug", "sev2"] if n % 5 == 0 else [],
                    )
                )
        for d in range(max(3, prs_per_repo // 4)):
            ddb = next(ids)
            created = EPOCH + dt.timedelta(hours=12 * d + r)
            states = ["QUEUED", "IN_PROGRESS", "SUCCESS" if d % 7 else "FAILURE"]
            statuses = [
                model.DeploymentStatus(f"DES_sample{ddb}_{i}", ddb * 10 + i, s, created + dt.timedelta(minutes=5 * i + 1))
                for i, s in enumerate(states)
            ]
            repo.deployments.append(
                model.Deployment(
                    node_id=f"DE_sample{ddb}", database_id=ddb, environment="production" if d % 3 else "staging",
                    sha=_sha("deploy", repo.name, d), ref="main", creator_login=humans[d % len(humans)] if d % 11 else None,
                    created_at=created, updated_at=statuses[-1].created_at, statuses=statuses,
                )
            )
            run_start = created + dt.timedelta(minutes=2)
            repo.workflow_runs.append(
                model.WorkflowRun(
                    database_id=ddb + 1_000_000_000, name="Deploy" if d % 2 else "CI", workflow_id=700 + d % 2,
                    head_branch="main" if d % 5 else "feature/x", head_sha=_sha("run", repo.name, d),
                    event="push", status="completed" if d % 13 else "in_progress",
                    conclusion=("success" if d % 7 else "failure") if d % 13 else None, run_attempt=1,
                    created_at=created, run_started_at=run_start, updated_at=run_start + dt.timedelta(minutes=9),
                )
            )
        for v in range(4):
            rdb = next(ids)
            created = EPOCH + dt.timedelta(days=7 * v + r)
            repo.releases.append(
                model.Release(
                    node_id=f"RE_sample{rdb}", database_id=rdb, name=f"v1.{v}.0", tag_name=f"v1.{v}.0",
                    is_draft=v == 3, is_prerelease=v == 2, created_at=created,
                    published_at=None if v == 3 else created + dt.timedelta(hours=1), author_login=humans[v],
                )
            )
        org.repositories.append(repo)
    for i, login in enumerate(humans):
        org.memberships[login] = [repo.full_name for k, repo in enumerate(org.repositories) if (k + i) % 2 == 0 or k == 0]
    return org
