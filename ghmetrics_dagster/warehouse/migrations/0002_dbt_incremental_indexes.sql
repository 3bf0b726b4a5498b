-- A revert names the reverted pull request by title: find the repository's pull requests
-- with that title by index (dbt_project/models/intermediate/int_incidents.sql).
create index if not exists pull_requests_title_idx on raw.pull_requests (repo_full_name, (data ->> 'title'));
