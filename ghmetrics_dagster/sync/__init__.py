"""Ingestion: GitHub -> the `raw` tables, incremental, idempotent and resumable.

Streams (`ALL_STREAMS`) and the tables they write (docs/contracts.md):

- `repositories` -> raw.repositories. Always fetched first, 100 repositories per GraphQL
  query (1 point); it also resolves names and finds unknown repositories.
- `pull_requests` -> raw.pull_requests, raw.pull_request_reviews, raw.pull_request_commits.
  GraphQL pages of `queries.PR_PAGE_SIZE` PRs ordered by updatedAt desc with timeline events
  (ready for review, labeled, unlabeled), reviews and commits nested; overflow events, reviews
  and commits are paged separately for those PRs only. The events become `readyForReview` and
  `labels` (their replay) in the stored object.
  Paging stops at the watermark (max updatedAt of the last complete pass) minus `overlap`.
- `deployments` -> raw.deployments (statuses nested), ordered by createdAt desc; re-reads
  deployments whose statuses are not final, each environment's active (latest successful)
  deployment, which will turn INACTIVE, and always the last `lookback`.
- `releases` -> raw.releases (all releases whenever the listing changed; there are few).
- `workflow_runs` -> raw.workflow_runs, REST /actions/runs (GraphQL has no Actions),
  newest first, back to the earliest unfinished run or `lookback`.
- `issues` -> raw.issues, GraphQL issues(filterBy: {since}) ordered by updatedAt desc, with
  the closer of each issue's latest ClosedEvent (`closedBy`, when it is a pull request).

Cheap refresh: the repositories query also returns each repository's newest pull-request
updatedAt, which decides whether the pull-request stream has anything to read. For the other
streams a conditional REST request on a small listing (`If-None-Match` with the ETag kept in
raw.sync_state for the token that got it) answers 304 when nothing changed; a 304 costs no
rate limit and skips the stream. An unchanged refresh therefore costs 0 REST units and
1 GraphQL point per 100 repositories.

Resumability: every page is committed together with raw.sync_state.cursor (`state.Cursor`:
the next page and the watermark candidate so far); the watermark and ETag advance only in the same
transaction as the stream's last page. A run killed at any point and run again continues from
the cursor; upserts make repeated rows harmless.

Errors fail only their repository and stream: `SyncReport.repositories[i].error` says what
happened in one line; the other repositories complete.

Entry point: `sync_repositories` (`discovery.resolve_user_repositories` lists a user's).
`progress` is any `Callable[[str], None]` (a logger method, a Dagster `context.log.info`,
a CLI progress bar); it is called from worker threads.

Modules: `run` (the entry point and the repositories query), `streams` (one class per stream),
`loop` (the one page loop they all run in), `pages` (GraphQL and REST page fetchers), `state`
(raw.sync_state and the typed cursor), `rows` (row shapes and upserts), `report` (results).
"""

from ghmetrics_dagster.sync.loop import Options
from ghmetrics_dagster.sync.report import SyncReport
from ghmetrics_dagster.sync.run import ALL_STREAMS, sync_repositories

__all__ = ["ALL_STREAMS", "Options", "SyncReport", "sync_repositories"]
