{{ config(
    materialized='table',
    indexes=[{'columns': ['scope_type', 'scope'], 'unique': True}],
) }}

-- One row per scope of fct_dora_weekly: its figures over the trailing 12 weeks ending with its
-- latest week, as the summaries and the dashboard quote them ("last 12 weeks"). Counts are sums
-- of the window's weekly rows; medians pool the items of the scope's repositories in the window
-- (pull requests merged in it, not by a bot; incidents started in it); the lead time, change
-- fail rate and review coverage are fct_dora_weekly's 12-week values of the latest week.
--
-- A table, not incremental: it reads the window's weeks only (every scope's weekly rows run to
-- the warehouse's last week), and its pull requests by the merged_at index.

with

latest_weeks as (
    select scope_type, scope, max(week_start) as week_start
    from {{ ref('fct_dora_weekly') }}
    group by scope_type, scope
),

-- Weekly rows are contiguous per scope: the window is the latest week and the 11 before it.
windows as (
    select
        latest_weeks.scope_type,
        latest_weeks.scope,
        latest_weeks.week_start,
        min(weekly.week_start) as window_start,
        sum(weekly.deployments)::bigint as deployments_12w,
        percentile_cont(0.5) within group (order by weekly.deployment_days)::numeric
            as median_weekly_deployment_days_12w,
        sum(weekly.incidents)::bigint as incidents_12w,
        sum(weekly.merged_prs)::bigint as merged_prs_12w
    from latest_weeks
    inner join {{ ref('fct_dora_weekly') }} as weekly
        on weekly.scope_type = latest_weeks.scope_type
        and weekly.scope = latest_weeks.scope
        and weekly.week_start between latest_weeks.week_start - 77 and latest_weeks.week_start
    group by latest_weeks.scope_type, latest_weeks.scope, latest_weeks.week_start
),

members as (
    select
        scope_repositories.scope_type,
        scope_repositories.scope,
        scope_repositories.repo_full_name,
        windows.window_start,
        windows.window_start::timestamp at time zone 'UTC' as window_start_at
    from ({{ dora_scope_repositories() }}) as scope_repositories
    inner join windows
        on windows.scope_type = scope_repositories.scope_type and windows.scope = scope_repositories.scope
),

-- Read once from the earliest window's start (the merged_at index), then joined per scope.
merged_items as materialized (
    select repo_full_name, merged_at, pr_size, coding_hours, pickup_hours, review_hours, deploy_hours
    from {{ ref('fct_pull_requests') }}
    where merged_at >= (select min(window_start_at) from members) and not is_bot
),

-- Materialized (here and below): the planner underestimates the scopes (a grouped join) and
-- would otherwise re-run the medians once per scope in a nested loop (40 s at 1M pull requests).
merged_medians as materialized (
    select
        members.scope_type,
        members.scope,
        percentile_cont(0.5) within group (order by items.pr_size)::numeric as median_pr_size_12w
        {%- for stage in bottleneck_stages() %},
        percentile_cont(0.5) within group (order by items.{{ stage }}_hours)::numeric as median_{{ stage }}_hours_12w
        {%- endfor %}
    from members
    inner join merged_items as items
        on items.repo_full_name = members.repo_full_name and items.merged_at >= members.window_start_at
    group by members.scope_type, members.scope
),

restore_medians as materialized (
    select
        members.scope_type,
        members.scope,
        percentile_cont(0.5) within group (order by incidents.restore_hours)::numeric
            as median_time_to_restore_hours_12w
    from members
    inner join {{ ref('fct_incidents') }} as incidents
        on incidents.repo_full_name = members.repo_full_name and incidents.week_start >= members.window_start
    group by members.scope_type, members.scope
)

select
    windows.scope_type,
    windows.scope,
    windows.week_start,
    windows.deployments_12w,
    windows.median_weekly_deployment_days_12w,
    latest.change_failure_rate_12w,
    windows.incidents_12w,
    restore_medians.median_time_to_restore_hours_12w,
    windows.merged_prs_12w,
    latest.review_coverage_12w,
    latest.lead_time_hours_12w as median_lead_time_hours_12w,
    merged_medians.median_pr_size_12w
    {%- for stage in bottleneck_stages() %},
    merged_medians.median_{{ stage }}_hours_12w
    {%- endfor %}
from windows
inner join {{ ref('fct_dora_weekly') }} as latest
    on latest.scope_type = windows.scope_type
    and latest.scope = windows.scope
    and latest.week_start = windows.week_start
left join merged_medians on merged_medians.scope_type = windows.scope_type and merged_medians.scope = windows.scope
left join restore_medians on restore_medians.scope_type = windows.scope_type and restore_medians.scope = windows.scope
