{{ config(
    materialized='incremental',
    unique_key=['scope_type', 'scope', 'week_start', 'cohort'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[
        {'columns': ['scope_type', 'scope', 'cohort', 'week_start'], 'unique': True},
        {'columns': ['_invocation_id']},
    ],
    pre_hook=["{% if is_incremental() %}{{ dora_scope_weeks_prune() }}{% endif %}"],
) }}

-- The pieces of the AI cohorts (docs/ai.md) per scope, UTC week with any item and cohort: the
-- cohort's merged pull requests by people and by AI agents, pooled across a user's
-- repositories, as parallel arrays of their values (one element per pull request) for those
-- merged in the week and for those shipped in it. fct_ai_cohorts_weekly and fct_ai_adoption
-- take their exact medians and shares from these arrays instead of joining every pull request
-- to every scope again.
-- Incremental as int_dora_scope_weeks, with the same pre-hook: a run recomputes every scope
-- from dora_recompute_from() (the trailing `recompute_weeks` weeks), and every week of a scope
-- without rows (new, or its repositories or their rules changed: _inputs_hash). The rows a run
-- writes carry its _invocation_id (indexed), by which fct_ai_cohorts_weekly finds the scopes
-- rewritten whole and fct_ai_adoption the weeks that changed.

-- The weeks an incremental run recomputes (dora_recompute_from) follow the last event:
-- depends_on: {{ ref('fct_incidents') }}

with {{ scope_weeks_members() }},

-- The items merged, and those shipped, from the first week any scope reads (by the merged_at
-- and shipped_at indexes), each once: materialised, not probed once per scope member.
merged_items as materialized (
    select
        repo_full_name,
        case when ai_assisted then 'ai_assisted' else 'other' end as cohort,
        {{ week_start('merged_at') }} as week_start,
        coding_hours,
        pickup_hours,
        review_hours,
        deploy_hours,
        pr_size,
        first_review_at is not null as has_review,
        rework_reason is not null as is_rework
    from {{ ref('fct_pull_requests') }}
    where merged_at >= (select read_from_at from read_window) and (not is_bot or is_ai_agent)
),

shipped_items as materialized (
    select
        pull_requests.repo_full_name,
        case when pull_requests.ai_assisted then 'ai_assisted' else 'other' end as cohort,
        {{ week_start('pull_requests.shipped_at') }} as week_start,
        pull_requests.lead_time_hours,
        coalesce(deployments.fails_change, false) as fails_change
    from {{ ref('fct_pull_requests') }} as pull_requests
    left join {{ ref('fct_deployments') }} as deployments
        on deployments.deployment_id = pull_requests.shipping_deployment_id
    where pull_requests.shipped_at >= (select read_from_at from read_window)
        and pull_requests.merged_at is not null
        and (not pull_requests.is_bot or pull_requests.is_ai_agent)
),

weekly_merged as (
    select
        members.scope_type,
        members.scope,
        items.week_start,
        items.cohort,
        count(*) as merged_prs,
        array_agg(items.coding_hours) as coding_hours_list,
        array_agg(items.pickup_hours) as pickup_hours_list,
        array_agg(items.review_hours) as review_hours_list,
        array_agg(items.deploy_hours) as deploy_hours_list,
        array_agg(items.pr_size) as pr_size_list,
        array_agg(items.has_review) as has_review_list,
        array_agg(items.is_rework) as is_rework_list
    from members
    inner join merged_items as items
        on items.repo_full_name = members.repo_full_name and items.week_start >= members.read_from
    group by 1, 2, 3, 4
),

weekly_shipped as (
    select
        members.scope_type,
        members.scope,
        items.week_start,
        items.cohort,
        count(*) as shipped_prs,
        array_agg(items.lead_time_hours) as lead_time_hours_list,
        array_agg(items.fails_change) as fails_change_list
    from members
    inner join shipped_items as items
        on items.repo_full_name = members.repo_full_name and items.week_start >= members.read_from
    group by 1, 2, 3, 4
),

scope_weeks as (
    select *
    from weekly_merged
    full join weekly_shipped using (scope_type, scope, week_start, cohort)
)

select
    scope_weeks.scope_type,
    scope_weeks.scope,
    scope_weeks.week_start,
    scope_weeks.cohort,
    coalesce(scope_weeks.merged_prs, 0) as merged_prs,
    coalesce(scope_weeks.coding_hours_list, '{}') as coding_hours_list,
    coalesce(scope_weeks.pickup_hours_list, '{}') as pickup_hours_list,
    coalesce(scope_weeks.review_hours_list, '{}') as review_hours_list,
    coalesce(scope_weeks.deploy_hours_list, '{}') as deploy_hours_list,
    coalesce(scope_weeks.pr_size_list, '{}') as pr_size_list,
    coalesce(scope_weeks.has_review_list, '{}') as has_review_list,
    coalesce(scope_weeks.is_rework_list, '{}') as is_rework_list,
    coalesce(scope_weeks.shipped_prs, 0) as shipped_prs,
    coalesce(scope_weeks.lead_time_hours_list, '{}') as lead_time_hours_list,
    coalesce(scope_weeks.fails_change_list, '{}') as fails_change_list,
    scopes.inputs_hash as _inputs_hash,
    '{{ invocation_id }}' as _invocation_id
from scope_weeks
inner join scopes on scopes.scope_type = scope_weeks.scope_type and scopes.scope = scope_weeks.scope
