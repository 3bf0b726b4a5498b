-- The incremental dbt marts look for rows ingested after their last run (dbt_project/).
create index if not exists pull_requests_ingested_at_idx on raw.pull_requests (ingested_at);
create index if not exists pull_request_reviews_ingested_at_idx on raw.pull_request_reviews (ingested_at);
create index if not exists pull_request_commits_ingested_at_idx on raw.pull_request_commits (ingested_at);
create index if not exists deployments_ingested_at_idx on raw.deployments (ingested_at);
create index if not exists releases_ingested_at_idx on raw.releases (ingested_at);
create index if not exists workflow_runs_ingested_at_idx on raw.workflow_runs (ingested_at);
-- A revert names a commit by a SHA prefix: find the commits of the repository starting with it.
create index if not exists pull_request_commits_sha_prefix_idx
    on raw.pull_request_commits (repo_full_name, sha text_pattern_ops);
