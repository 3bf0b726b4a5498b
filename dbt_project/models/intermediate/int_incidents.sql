-- Incidents from labelled issues and from reverted pull requests, not yet attributed, with
-- the merged pull request that closed an issue incident (docs/dora.md).
-- A table, not a view: it reads int_revert_pull_requests, which a full refresh replaces (and
-- would drop a view on it with).
-- Indexed by pull request: fct_pull_requests looks up a wave's pull requests in it (rework),
-- and a wave's few thousand pull requests are planned as a nested loop (9 s unindexed at
-- 1,000,000 pull requests).
{{ config(
    materialized='table',
    indexes=[{'columns': ['incident_id']}, {'columns': ['closing_pull_request_id']}],
) }}

with settings as (
    select * from {{ ref('int_repository_settings') }}
),

issue_incidents as (
    select
        issues.issue_id as incident_id,
        issues.repo_full_name,
        'issue' as kind,
        issues.created_at as started_at,
        issues.closed_at as restored_at,
        cast(null as text) as reverted_pull_request_id,
        closer.pull_request_id as closing_pull_request_id
    from {{ ref('stg_github__issues') }} as issues
    inner join settings on settings.repo_full_name = issues.repo_full_name
    left join lateral (
        -- by primary key; only a merged closer fixed anything
        select pull_requests.pull_request_id
        from {{ ref('stg_github__pull_requests') }} as pull_requests
        where pull_requests.pull_request_id = issues.closed_by_pull_request_id
            and pull_requests.merged_at is not null
        offset 0
    ) as closer on true
    where exists (
        select 1
        from unnest(issues.labels) as label (name)
        where {{ regex_matches('label.name', 'settings.incident_label_regex') }}
    )
),

reverts as materialized (
    select pull_request_id, repo_full_name, number, merged_at, reverted_sha, reverted_title
    from {{ ref('int_revert_pull_requests') }}
),

-- "This reverts commit <sha>": the merged pull request of the repository holding a commit
-- with that SHA prefix (the earliest merged when several do). The commits are found per
-- revert through the index on (repository, SHA); there are few reverts.
revert_commits as (
    select
        reverts.pull_request_id,
        holder.pull_request_id as holder_pull_request_id
    from reverts
    cross join lateral (
        select commits.pull_request_id
        from {{ ref('stg_github__pull_request_commits') }} as commits
        where commits.repo_full_name = reverts.repo_full_name
            -- the prefix as a range (index pull_request_commits_sha_prefix_idx); SHAs are lowercase hex
            and commits.sha ~>=~ lower(reverts.reverted_sha)
            and commits.sha ~<~ (lower(reverts.reverted_sha) || 'g')
            and commits.sha like lower(reverts.reverted_sha) || '%'
            and commits.pull_request_id <> reverts.pull_request_id
        -- keeps the lookup per revert (a flattened join hashes every commit instead)
        offset 0
    ) as holder
    where reverts.reverted_sha is not null
),

reverted_by_sha as (
    select distinct on (revert_commits.pull_request_id)
        revert_commits.pull_request_id,
        reverted.pull_request_id as reverted_pull_request_id,
        reverted.merged_at as reverted_merged_at
    from revert_commits
    cross join lateral (
        -- by primary key
        select pull_requests.pull_request_id, pull_requests.merged_at, pull_requests.number
        from {{ ref('stg_github__pull_requests') }} as pull_requests
        where pull_requests.pull_request_id = revert_commits.holder_pull_request_id
        offset 0
    ) as reverted
    where reverted.merged_at is not null
    order by revert_commits.pull_request_id, reverted.merged_at, reverted.number
),

-- Otherwise `Revert "<title>"`: the latest merged pull request with that title merged at or
-- before the revert (any merged one with that title when none is before it).
reverted_by_title as (
    select distinct on (reverts.pull_request_id)
        reverts.pull_request_id,
        reverted.pull_request_id as reverted_pull_request_id,
        reverted.merged_at as reverted_merged_at
    from reverts
    cross join lateral (
        -- by the index on (repository, title)
        select pull_requests.pull_request_id, pull_requests.merged_at, pull_requests.number
        from {{ ref('stg_github__pull_requests') }} as pull_requests
        where pull_requests.repo_full_name = reverts.repo_full_name
            and pull_requests.title = reverts.reverted_title
            and pull_requests.pull_request_id <> reverts.pull_request_id
            and pull_requests.merged_at is not null
        offset 0
    ) as reverted
    where reverts.reverted_title is not null
    order by
        reverts.pull_request_id,
        reverted.merged_at <= reverts.merged_at desc,
        reverted.merged_at desc,
        reverted.number desc
),

revert_incidents as (
    select
        reverts.pull_request_id as incident_id,
        reverts.repo_full_name,
        'revert' as kind,
        coalesce(by_sha.reverted_merged_at, by_title.reverted_merged_at) as started_at,
        reverts.merged_at as restored_at,
        coalesce(by_sha.reverted_pull_request_id, by_title.reverted_pull_request_id) as reverted_pull_request_id,
        cast(null as text) as closing_pull_request_id
    from reverts
    left join reverted_by_sha as by_sha on by_sha.pull_request_id = reverts.pull_request_id
    left join reverted_by_title as by_title on by_title.pull_request_id = reverts.pull_request_id
    -- unresolvable reverts are not incidents
    where coalesce(by_sha.reverted_pull_request_id, by_title.reverted_pull_request_id) is not null
)

select * from issue_incidents
union all
select * from revert_incidents
