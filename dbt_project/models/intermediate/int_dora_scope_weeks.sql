{{ config(
    materialized='incremental',
    unique_key=['scope_type', 'scope', 'week_start'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['scope_type', 'scope', 'week_start'], 'unique': True}],
    pre_hook=["{% if is_incremental() %}{{ dora_scope_weeks_prune() }}{% endif %}"],
) }}

-- One row per scope (a repository, or a user = the union of their repositories) and UTC week
-- with any item: the week's counts and medians over the pooled items of its repositories,
-- the parts of the 12-week windows that fct_dora_weekly grades on (macro median_parts), the
-- week's lead times and recovery times as jsonb arrays, for the exact medians of its windows,
-- and the stage hours that fct_bottlenecks sums over its windows (staged_*: the pull requests
-- shipped in the week with a lead time and all four stages).
-- Weeks without items have no row; fct_dora_weekly zero-fills them.
-- Incremental runs recompute every scope from dora_recompute_from() (the trailing
-- `recompute_weeks` weeks), and every week of a scope without rows: new, or dropped by the
-- pre-hook because its repositories or their rules changed (_inputs_hash).

with {{ scope_weeks_members() }},

-- Items of each metric with the week they count in, from the first week any scope reads (by
-- the merged_at and shipped_at indexes). Materialised: inlined, Postgres probes the index
-- once per scope member instead of reading the window once (1,300 probes of 30,000 rows each,
-- 7.5 s of a 9 s incremental run at 1,000,000 pull requests).
merged_items as materialized (
    select
        repo_full_name,
        {{ week_start('merged_at') }} as week_start,
        first_review_at is not null as is_reviewed,
        pr_size,
        coding_hours,
        pickup_hours,
        review_hours,
        deploy_hours
    from {{ ref('fct_pull_requests') }}
    where merged_at >= (select read_from_at from read_window) and not is_bot
),

shipped_items as materialized (
    select
        repo_full_name,
        {{ week_start('shipped_at') }} as week_start,
        lead_time_hours,
        -- fct_bottlenecks: the stages of those with all four
        coding_hours is not null and pickup_hours is not null and review_hours is not null
            and deploy_hours is not null as has_stages,
        coding_hours,
        pickup_hours,
        review_hours,
        deploy_hours
    from {{ ref('fct_pull_requests') }}
    where shipped_at >= (select read_from_at from read_window)
        and not is_bot
        and lead_time_hours is not null
),

deployment_items as (
    select
        repo_full_name,
        week_start,
        case when not is_failed then {{ utc_date('deployed_at') }} end as success_date,
        fails_change,
        is_rework,
        recovery_hours
    from {{ ref('fct_deployments') }}
    where week_start >= (select read_from from read_window)
),

incident_items as (
    select repo_full_name, week_start, restore_hours
    from {{ ref('fct_incidents') }}
    where week_start >= (select read_from from read_window)
),

weekly_deployments as (
    select
        members.scope_type,
        members.scope,
        items.week_start,
        count(*) as deployments,
        count(distinct items.success_date) as deployment_days,
        count(*) filter (where items.fails_change) as failed_changes,
        count(items.success_date) as successful_deployments,
        count(*) filter (where items.is_rework) as rework_deployments,
        count(items.recovery_hours) as recovered_deployments,
        percentile_cont(0.5) within group (order by items.recovery_hours)::numeric as median_recovery_hours,
        -- jsonb arrays, not numeric[], so that dbt unit tests can give them as inputs
        jsonb_agg(items.recovery_hours order by items.recovery_hours) filter (where items.recovery_hours is not null)
            as recovery_hours_list
    from members
    inner join deployment_items as items
        on items.repo_full_name = members.repo_full_name and items.week_start >= members.read_from
    group by 1, 2, 3
),

weekly_merged as (
    select
        members.scope_type,
        members.scope,
        items.week_start,
        count(*) as merged_prs,
        count(*) filter (where items.is_reviewed) as reviewed_prs,
        percentile_cont(0.5) within group (order by items.pr_size)::numeric as median_pr_size,
        percentile_cont(0.9) within group (order by items.pr_size)::numeric as p90_pr_size,
        percentile_cont(0.5) within group (order by items.coding_hours)::numeric as median_coding_hours,
        percentile_cont(0.5) within group (order by items.pickup_hours)::numeric as median_pickup_hours,
        percentile_cont(0.5) within group (order by items.review_hours)::numeric as median_review_hours,
        percentile_cont(0.5) within group (order by items.deploy_hours)::numeric as median_deploy_hours
    from members
    inner join merged_items as items
        on items.repo_full_name = members.repo_full_name and items.week_start >= members.read_from
    group by 1, 2, 3
),

weekly_shipped as (
    select
        members.scope_type,
        members.scope,
        items.week_start,
        percentile_cont(0.5) within group (order by items.lead_time_hours)::numeric as median_lead_time_hours,
        count(*) as lead_times,
        jsonb_agg(items.lead_time_hours order by items.lead_time_hours) as lead_time_hours_list,
        {{ median_parts('items.lead_time_hours', 24, 'lead_24') }},
        {{ median_parts('items.lead_time_hours', 168, 'lead_168') }},
        {{ median_parts('items.lead_time_hours', 720, 'lead_720') }},
        count(*) filter (where items.has_stages) as staged_prs,
        {%- for stage in ['coding', 'pickup', 'review', 'deploy'] %}
        sum(items.{{ stage }}_hours) filter (where items.has_stages) as staged_{{ stage }}_hours{{ ',' if not loop.last }}
        {%- endfor %}
    from members
    inner join shipped_items as items
        on items.repo_full_name = members.repo_full_name and items.week_start >= members.read_from
    group by 1, 2, 3
),

weekly_incidents as (
    select
        members.scope_type,
        members.scope,
        items.week_start,
        count(*) as incidents,
        percentile_cont(0.5) within group (order by items.restore_hours)::numeric as median_time_to_restore_hours,
        count(items.restore_hours) as restores,
        {{ median_parts('items.restore_hours', 1, 'restore_1') }},
        {{ median_parts('items.restore_hours', 24, 'restore_24') }},
        {{ median_parts('items.restore_hours', 168, 'restore_168') }}
    from members
    inner join incident_items as items
        on items.repo_full_name = members.repo_full_name and items.week_start >= members.read_from
    group by 1, 2, 3
),

-- Each of them once (a full join): referenced twice, Postgres would materialise them and
-- join them blind, row by row.
scope_weeks as (
    select *
    from weekly_merged
    full join weekly_shipped using (scope_type, scope, week_start)
    full join weekly_deployments using (scope_type, scope, week_start)
    full join weekly_incidents using (scope_type, scope, week_start)
)

select
    scope_weeks.scope_type,
    scope_weeks.scope,
    scope_weeks.week_start,
    coalesce(scope_weeks.deployments, 0) as deployments,
    coalesce(scope_weeks.deployment_days, 0) as deployment_days,
    coalesce(scope_weeks.failed_changes, 0) as failed_changes,
    coalesce(scope_weeks.successful_deployments, 0) as successful_deployments,
    coalesce(scope_weeks.rework_deployments, 0) as rework_deployments,
    coalesce(scope_weeks.recovered_deployments, 0) as recovered_deployments,
    scope_weeks.median_recovery_hours,
    scope_weeks.recovery_hours_list,
    scope_weeks.lead_time_hours_list,
    coalesce(scope_weeks.incidents, 0) as incidents,
    scope_weeks.median_time_to_restore_hours,
    coalesce(scope_weeks.merged_prs, 0) as merged_prs,
    coalesce(scope_weeks.reviewed_prs, 0) as reviewed_prs,
    scope_weeks.median_lead_time_hours,
    scope_weeks.median_pr_size,
    scope_weeks.p90_pr_size,
    scope_weeks.median_coding_hours,
    scope_weeks.median_pickup_hours,
    scope_weeks.median_review_hours,
    scope_weeks.median_deploy_hours,
    coalesce(scope_weeks.lead_times, 0) as lead_times,
    coalesce(scope_weeks.restores, 0) as restores,
    coalesce(scope_weeks.staged_prs, 0) as staged_prs,
    scope_weeks.staged_coding_hours,
    scope_weeks.staged_pickup_hours,
    scope_weeks.staged_review_hours,
    scope_weeks.staged_deploy_hours,
    {%- for prefix in ['lead_24', 'lead_168', 'lead_720', 'restore_1', 'restore_24', 'restore_168'] %}
    coalesce(scope_weeks.{{ prefix }}_below, 0) as {{ prefix }}_below,
    scope_weeks.{{ prefix }}_below_max,
    scope_weeks.{{ prefix }}_above_min,
    {%- endfor %}
    scopes.inputs_hash as _inputs_hash
from scope_weeks
inner join scopes on scopes.scope_type = scope_weeks.scope_type and scopes.scope = scope_weeks.scope
