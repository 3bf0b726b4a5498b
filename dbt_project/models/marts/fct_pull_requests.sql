{{ config(
    materialized='incremental',
    unique_key='pull_request_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[
        {'columns': ['pull_request_id'], 'unique': True},
        {'columns': ['repo_full_name', 'merged_at']},
        {'columns': ['repo_full_name', 'created_at']},
        {'columns': ['repo_full_name', 'shipped_at', 'merged_at']},
        {'columns': ['(greatest(created_at, merged_at, closed_at))']},
        {'columns': ['_source_high_water']},
    ],
) }}

-- One row per pull request with its cycle stages (docs/contracts.md, metric rules).
-- Incremental runs recompute only the pull requests whose inputs may have changed since the
-- last run: their own row, reviews or commits were ingested again; a deployment of their
-- repository arrived that can ship them (merged, not shipped, or shipped after it); or the
-- rules that pick the repository's deployments changed.
-- (repository, shipped_at, merged_at) finds the merged, unshipped pull requests that a new
-- deployment may ship without visiting the unmerged ones.
-- The indexes after the first two serve the incremental fct_dora_weekly (repositories,
-- first events, the warehouse's last event (dora_last_event_at), the rows written since its
-- last run).

with

{% if is_incremental() %}
last_run as (
    select coalesce(max(_source_high_water), '-infinity'::timestamptz) as high_water from {{ this }}
),

new_deployments as (
    select repo_full_name, min(deployed_at) as earliest_deployed_at
    from {{ ref('int_deployments') }}
    where _ingested_at > (select high_water from last_run)
    group by repo_full_name
),

-- All rows of a repository carry the same hash (a change rewrites them all): one row tells.
changed_rules as (
    select sources.repo_full_name
    from {{ ref('int_repository_deployment_sources') }} as sources
    where (
        select processed._deployment_rules_hash
        from {{ this }} as processed
        where processed.repo_full_name = sources.repo_full_name
        limit 1
    ) is distinct from sources.deployment_rules_hash
),

candidates as materialized (
    select pull_request_id from {{ ref('stg_github__pull_requests') }}
    where ingested_at > (select high_water from last_run)
    union
    select pull_request_id from {{ ref('stg_github__pull_request_reviews') }}
    where ingested_at > (select high_water from last_run)
    union
    select pull_request_id from {{ ref('stg_github__pull_request_commits') }}
    where ingested_at > (select high_water from last_run)
    union
    -- per repository by the (repository, shipped_at) index: shipped at or after the
    -- earliest new deployment, or merged and not shipped
    select processed.pull_request_id
    from new_deployments
    cross join lateral (
        select processed.pull_request_id
        from {{ this }} as processed
        where processed.repo_full_name = new_deployments.repo_full_name
            and processed.shipped_at >= new_deployments.earliest_deployed_at
        offset 0
    ) as processed
    union
    select processed.pull_request_id
    from new_deployments
    cross join lateral (
        select processed.pull_request_id
        from {{ this }} as processed
        where processed.repo_full_name = new_deployments.repo_full_name
            and processed.shipped_at is null
            and processed.merged_at is not null
        offset 0
    ) as processed
    union
    select pull_requests.pull_request_id
    from {{ ref('stg_github__pull_requests') }} as pull_requests
    inner join changed_rules on changed_rules.repo_full_name = pull_requests.repo_full_name
),
{% endif %}

pull_requests as materialized (
    {% if is_incremental() %}
    -- By primary key, one candidate at a time (a semi-join would parse every row's JSON).
    select pull_request.*
    from candidates
    cross join lateral (
        select
            pull_request_id, repo_full_name, number, title, author_login, is_bot, is_draft, state,
            created_at, ready_for_review_at, merged_at, closed_at, additions, deletions, is_revert
        from {{ ref('stg_github__pull_requests') }} as stg
        where stg.pull_request_id = candidates.pull_request_id
        offset 0
    ) as pull_request
    {% else %}
    select
        pull_request_id, repo_full_name, number, title, author_login, is_bot, is_draft, state,
        created_at, ready_for_review_at, merged_at, closed_at, additions, deletions, is_revert
    from {{ ref('stg_github__pull_requests') }}
    {% endif %}
),

-- First review: the earliest submitted, non-pending review by someone other than the author
-- (a review by the deleted user counts as someone else's). review_count counts every review.
{% if is_incremental() %}
-- Few pull requests: look their reviews and commits up by index, one pull request at a time.
reviews as (
    select pull_requests.pull_request_id, review_stats.first_review_at, review_stats.review_count
    from pull_requests
    cross join lateral (
        select
            min(reviews.submitted_at) filter (
                where reviews.state <> 'PENDING'
                    and (reviews.author_login is null or reviews.author_login <> pull_requests.author_login)
            ) as first_review_at,
            count(*) as review_count
        from {{ ref('stg_github__pull_request_reviews') }} as reviews
        where reviews.pull_request_id = pull_requests.pull_request_id
    ) as review_stats
),

commits as (
    select pull_requests.pull_request_id, commit_stats.first_commit_at
    from pull_requests
    cross join lateral (
        select min(commits.authored_at) as first_commit_at
        from {{ ref('stg_github__pull_request_commits') }} as commits
        where commits.pull_request_id = pull_requests.pull_request_id
    ) as commit_stats
),
{% else %}
reviews as (
    select
        reviews.pull_request_id,
        min(reviews.submitted_at) filter (
            where reviews.state <> 'PENDING'
                and (reviews.author_login is null or reviews.author_login <> pull_requests.author_login)
        ) as first_review_at,
        count(*) as review_count
    from {{ ref('stg_github__pull_request_reviews') }} as reviews
    inner join pull_requests on pull_requests.pull_request_id = reviews.pull_request_id
    group by reviews.pull_request_id
),

commits as (
    select
        commits.pull_request_id,
        min(commits.authored_at) as first_commit_at
    from {{ ref('stg_github__pull_request_commits') }} as commits
    group by commits.pull_request_id
),
{% endif %}

rules as (
    select repo_full_name, deployment_rules_hash from {{ ref('int_repository_deployment_sources') }}
),

joined as (
    select
        pull_requests.*,
        commits.first_commit_at,
        reviews.first_review_at,
        coalesce(reviews.review_count, 0) as review_count,
        shipping.deployment_id as shipping_deployment_id,
        shipping.deployed_at as shipped_at,
        rules.deployment_rules_hash
    from pull_requests
    left join commits on commits.pull_request_id = pull_requests.pull_request_id
    left join reviews on reviews.pull_request_id = pull_requests.pull_request_id
    left join rules on rules.repo_full_name = pull_requests.repo_full_name
    -- The shipping deployment: the first successful one at or after the merge, ties by id.
    left join lateral (
        select deployments.deployment_id, deployments.deployed_at
        from {{ ref('int_deployments') }} as deployments
        where deployments.repo_full_name = pull_requests.repo_full_name
            and pull_requests.merged_at is not null
            and not deployments.is_failed
            and deployments.deployed_at >= pull_requests.merged_at
        order by deployments.deployed_at, deployments.deployment_id
        limit 1
    ) as shipping on true
),

final as (
    select
        pull_request_id,
        repo_full_name,
        number,
        title,
        author_login,
        is_bot,
        is_draft,
        state,
        created_at,
        ready_for_review_at,
        first_commit_at,
        first_review_at,
        merged_at,
        closed_at,
        shipped_at,
        shipping_deployment_id,
        -- Cycle stages only for merged pull requests by people.
        case when merged_at is not null and not is_bot
            then {{ hours_between('first_commit_at', 'created_at') }} end as coding_hours,
        case when merged_at is not null and not is_bot
            then {{ hours_between('coalesce(ready_for_review_at, created_at)', 'first_review_at') }} end as pickup_hours,
        case when merged_at is not null and not is_bot
            then {{ hours_between('first_review_at', 'merged_at') }} end as review_hours,
        case when merged_at is not null and not is_bot
            then {{ hours_between('merged_at', 'shipped_at') }} end as deploy_hours,
        case when merged_at is not null and not is_bot
            then {{ hours_between('first_commit_at', 'shipped_at') }} end as lead_time_hours,
        additions,
        deletions,
        additions + deletions as pr_size,
        review_count,
        is_revert,
        deployment_rules_hash as _deployment_rules_hash,
        {{ raw_high_water() }} as _source_high_water
    from joined
)

select * from final
