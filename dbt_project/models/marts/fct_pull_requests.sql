{{ config(
    materialized='incremental',
    unique_key='pull_request_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[
        {'columns': ['pull_request_id'], 'unique': True},
        {'columns': ['repo_full_name', 'created_at']},
        {'columns': ['merged_at']},
        {'columns': ['shipped_at']},
        {'columns': ['(greatest(created_at, merged_at, closed_at))']},
    ],
) }}

-- One row per pull request with its cycle stages (docs/contracts.md, metric rules).
-- Incremental runs recompute the pull requests of the trailing `recompute_weeks` weeks before
-- the newest stored event: those updated on GitHub (their own row or a review) in the
-- window, and the merged ones a deployment may now ship differently: not shipped, shipped in
-- the window, or shipped by a deployment that no longer counts as it did (its repository's
-- rules changed, it failed). Older corrections land with the nightly full refresh.
-- The indexes after the first serve int_dora_scope_weeks and fct_dora_weekly (a repository's
-- first event, the items of the window, the warehouse's last event).

with

{% if is_incremental() %}
window_start as (
    select max(greatest(created_at, merged_at, closed_at)) - interval '{{ var("recompute_weeks") }} weeks' as at
    from {{ this }}
),

candidates as (
    select pull_request_id from {{ ref('stg_github__pull_requests') }}
    where updated_at >= (select at from window_start)
    union
    select pull_request_id from {{ ref('stg_github__pull_request_reviews') }}
    where updated_at >= (select at from window_start)
    union
    select processed.pull_request_id
    from {{ this }} as processed
    left join {{ ref('int_deployments') }} as shipping
        on shipping.deployment_id = processed.shipping_deployment_id
    where processed.merged_at is not null
        and (
            processed.shipped_at >= (select at from window_start)
            or shipping.deployment_id is null
            or shipping.is_failed
            or shipping.deployed_at <> processed.shipped_at
        )
),
{% endif %}

pull_requests as materialized (
    select
        pull_request_id, repo_full_name, number, title, author_login, is_bot, is_draft, state,
        created_at, ready_for_review_at, merged_at, closed_at, additions, deletions, is_revert
    from {{ ref('stg_github__pull_requests') }}
    {% if is_incremental() %}
    -- by primary key: a join or IN would parse the JSON of every row first
    where pull_request_id = any(array(select pull_request_id from candidates))
    {% endif %}
),

-- First review: the earliest submitted, non-pending review by someone other than the author
-- (a review by the deleted user counts as someone else's). review_count counts every review.
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
    {% if is_incremental() %}
    -- by the pull_request_id index, as above
    where reviews.pull_request_id = any(array(select pull_request_id from pull_requests))
    {% endif %}
    group by reviews.pull_request_id
),

commits as (
    select
        commits.pull_request_id,
        min(commits.authored_at) as first_commit_at
    from {{ ref('stg_github__pull_request_commits') }} as commits
    inner join pull_requests on pull_requests.pull_request_id = commits.pull_request_id
    {% if is_incremental() %}
    where commits.pull_request_id = any(array(select pull_request_id from pull_requests))
    {% endif %}
    group by commits.pull_request_id
),

joined as (
    select
        pull_requests.*,
        commits.first_commit_at,
        reviews.first_review_at,
        coalesce(reviews.review_count, 0) as review_count,
        shipping.deployment_id as shipping_deployment_id,
        shipping.deployed_at as shipped_at
    from pull_requests
    left join commits on commits.pull_request_id = pull_requests.pull_request_id
    left join reviews on reviews.pull_request_id = pull_requests.pull_request_id
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
        is_revert
    from joined
)

select * from final
