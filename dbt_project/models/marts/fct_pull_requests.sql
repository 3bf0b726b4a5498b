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

-- One row per pull request with its cycle stages (docs/contracts.md, metric rules) and, for a
-- merged one, why it is rework (docs/dora.md).
-- Incremental runs recompute the pull requests of the trailing `recompute_weeks` weeks before
-- the newest stored event: those updated on GitHub (their own row or a review) in the
-- window, and the merged ones a deployment may now ship differently: not shipped, shipped in
-- the window, or shipped by a deployment that no longer counts as it did (its repository's
-- rules changed, it failed). A revert or an incident-closing pull request is rework from the
-- wave that ingests it (the revert and the closed issue arrive with it); older corrections
-- (a hotfix rule changed, an issue ingested waves after its closer) land with the nightly
-- full refresh. AI assistance (ai_assisted, ai_evidence; docs/ai.md) follows the dbt vars
-- ai_*: a change of them lands with the nightly full refresh.
-- In a wave the planner cannot know how many pull requests `candidates` selects (it expects a
-- handful; they are tens of thousands), so no CTE built from `pull_requests` is joined back to
-- it by id: it chose a nested loop for such a join, each pull request against each other
-- (84 s of a wave at 1,000,000, bench/dbt.py; 5 s with the rules computed in `joined`).
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
        created_at, ready_for_review_at, merged_at, closed_at, additions, deletions, is_revert,
        head_ref_name, labels,
        -- An AI agent's account (docs/ai.md), case-insensitively.
        coalesce(lower(author_login) = any({{ text_array(var('ai_agent_logins') | map('lower') | list) }}), false)
            as is_ai_agent
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

-- The commits of those pull requests (by the pull_request_id index in a wave), read once for
-- the first commit and the AI evidence in their messages.
pull_request_commits as materialized (
    select commits.pull_request_id, commits.sha, commits.authored_at, commits.message
    from {{ ref('stg_github__pull_request_commits') }} as commits
    {% if is_incremental() %}
    where commits.pull_request_id = any(array(select pull_request_id from pull_requests))
    {% else %}
    inner join pull_requests on pull_requests.pull_request_id = commits.pull_request_id
    {% endif %}
),

commits as (
    select pull_request_id, min(authored_at) as first_commit_at
    from pull_request_commits
    group by pull_request_id
),

commit_evidence as (
    {{ ai_commit_evidence('pull_request_commits') }}
),

-- The pull requests that are rework because of an incident (docs/dora.md). The incidents by
-- hash join: a lookup into them per pull request took 25 s a wave at 1,000,000.
resolved_reverts as (
    select incident_id as pull_request_id from {{ ref('int_incidents') }} where kind = 'revert'
),

incident_fixes as (
    select distinct closing_pull_request_id as pull_request_id
    from {{ ref('int_incidents') }}
    where closing_pull_request_id is not null
),

joined as (
    select
        pull_requests.*,
        -- AI assistance (docs/ai.md), the first rule that matches: an AI agent authored it, an
        -- AI co-author or a Made-with-style trailer in a commit (macro ai_commit_evidence), a
        -- label matching ai_label_pattern (the first in the labels' order).
        case
            when pull_requests.is_ai_agent then 'agent author ' || pull_requests.author_login
            when commit_evidence.evidence is not null then commit_evidence.evidence
            else (
                select 'label ' || (label.value ->> 'name')
                from jsonb_array_elements(pull_requests.labels) with ordinality as label (value, position)
                where (label.value ->> 'name') ~* '{{ var("ai_label_pattern") | replace("'", "''") }}'
                order by label.position
                limit 1
            )
        end as ai_evidence,
        -- Rework causes in order of precedence (docs/dora.md); null when none or not merged.
        case when pull_requests.merged_at is not null and settings.repo_full_name is not null then
            case
                when resolved_reverts.pull_request_id is not null then 'revert'
                when incident_fixes.pull_request_id is not null then 'incident_fix'
                when exists (
                    select 1 from jsonb_array_elements(pull_requests.labels) as label
                    where {{ regex_matches("label ->> 'name'", 'settings.hotfix_label_regex') }}
                ) then 'hotfix_label'
                when {{ regex_matches('pull_requests.head_ref_name', 'settings.hotfix_branch_regex') }} then 'hotfix_branch'
            end
        end as rework_reason,
        commits.first_commit_at,
        reviews.first_review_at,
        coalesce(reviews.review_count, 0) as review_count,
        shipping.deployment_id as shipping_deployment_id,
        shipping.deployed_at as shipped_at
    from pull_requests
    left join commits on commits.pull_request_id = pull_requests.pull_request_id
    left join reviews on reviews.pull_request_id = pull_requests.pull_request_id
    left join {{ ref('int_repository_settings') }} as settings
        on settings.repo_full_name = pull_requests.repo_full_name
    left join resolved_reverts on resolved_reverts.pull_request_id = pull_requests.pull_request_id
    left join incident_fixes on incident_fixes.pull_request_id = pull_requests.pull_request_id
    left join commit_evidence on commit_evidence.pull_request_id = pull_requests.pull_request_id
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
        is_ai_agent,
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
        -- Cycle stages only for merged pull requests by people, and by AI agents: an agent's
        -- pull request is work a person asked for and reviews (docs/ai.md), a dependency bot's is not.
        case when merged_at is not null and (not is_bot or is_ai_agent)
            then {{ hours_between('first_commit_at', 'created_at') }} end as coding_hours,
        case when merged_at is not null and (not is_bot or is_ai_agent)
            then {{ hours_between('coalesce(ready_for_review_at, created_at)', 'first_review_at') }} end as pickup_hours,
        case when merged_at is not null and (not is_bot or is_ai_agent)
            then {{ hours_between('first_review_at', 'merged_at') }} end as review_hours,
        case when merged_at is not null and (not is_bot or is_ai_agent)
            then {{ hours_between('merged_at', 'shipped_at') }} end as deploy_hours,
        case when merged_at is not null and (not is_bot or is_ai_agent)
            then {{ hours_between('first_commit_at', 'shipped_at') }} end as lead_time_hours,
        additions,
        deletions,
        additions + deletions as pr_size,
        review_count,
        is_revert,
        rework_reason,
        ai_evidence is not null as ai_assisted,
        ai_evidence
    from joined
)

select * from final
