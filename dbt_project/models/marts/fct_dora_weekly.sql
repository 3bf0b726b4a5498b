{{ config(
    materialized='incremental',
    unique_key=['scope_type', 'scope', 'week_start'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['scope_type', 'scope', 'week_start'], 'unique': True}],
    pre_hook=["{% if is_incremental() %}{{ dora_weekly_prune() }}{% endif %}"],
) }}

-- DORA and pull-request metrics per scope (a repository, or a user = the union of their
-- repositories) and UTC week, zero-filled from the scope's first week with a pull request or
-- deployment through the last week with any event in the warehouse, with grades on the
-- trailing 12 weeks: DORA's five metrics with their Quick Check bands and 0-10 scores against
-- DORA's 2025 benchmark (docs/dora.md), and the 2023 grades with the legacy performance score
-- (docs/contracts.md; weights: deployment frequency 0.25, lead time 0.25, change failure rate
-- 0.20, time to restore 0.15, review coverage 0.15). The week's values, the window parts and
-- the week's lead and recovery times come from int_dora_scope_weeks.
--
-- Incremental runs rewrite the trailing `recompute_weeks` weeks of every scope (their windows
-- read the 25 weeks before from int_dora_scope_weeks), and every week of a scope without
-- rows: new, or dropped by the pre-hook (gone, first week moved, or stored weeks that no
-- longer match int_dora_scope_weeks). The nightly full refresh rewrites everything.

with scopes as (
    {{ dora_scopes() }}
),

last_week as (
    select {{ week_start(dora_last_event_at()) }} as last_week
),

{% if is_incremental() %}
stored_scopes as (
    select distinct scope_type, scope from {{ this }}
),
{% endif %}

-- The first week each scope writes.
planned_scopes as (
    select
        scopes.scope_type,
        scopes.scope,
        scopes.first_week,
        {% if is_incremental() -%}
        case when stored_scopes.scope is not null
            then greatest(scopes.first_week, {{ dora_recompute_from(this) }}) else scopes.first_week end as write_from
        {%- else -%}
        scopes.first_week as write_from
        {%- endif %}
    from scopes
    {% if is_incremental() -%}
    left join stored_scopes on stored_scopes.scope_type = scopes.scope_type and stored_scopes.scope = scopes.scope
    {%- endif %}
),

-- The weeks written and the 25 before them that their windows read (12 and 26 weeks).
weeks as (
    select planned_scopes.scope_type, planned_scopes.scope, planned_scopes.write_from, week::date as week_start
    from planned_scopes
    cross join last_week
    cross join lateral generate_series(
        greatest(planned_scopes.first_week, planned_scopes.write_from - 175), last_week.last_week, interval '1 week'
    ) as week
),

-- The stored weeks of those weeks only: an incremental run reads its window, not the table.
scope_weeks as (
    select *
    from {{ ref('int_dora_scope_weeks') }}
    where week_start >= (select min(week_start) from weeks)
),

weekly as (
    select
        weeks.scope_type,
        weeks.scope,
        weeks.write_from,
        weeks.week_start,
        coalesce(scope_weeks.deployments, 0) as deployments,
        coalesce(scope_weeks.deployment_days, 0) as deployment_days,
        scope_weeks.median_lead_time_hours,
        coalesce(scope_weeks.failed_changes, 0) as failed_changes,
        coalesce(scope_weeks.successful_deployments, 0) as successful_deployments,
        coalesce(scope_weeks.rework_deployments, 0) as rework_deployments,
        coalesce(scope_weeks.recovered_deployments, 0) as recovered_deployments,
        scope_weeks.median_recovery_hours,
        coalesce(scope_weeks.incidents, 0) as incidents,
        scope_weeks.median_time_to_restore_hours,
        coalesce(scope_weeks.merged_prs, 0) as merged_prs,
        scope_weeks.median_pr_size,
        scope_weeks.p90_pr_size,
        scope_weeks.median_coding_hours,
        scope_weeks.median_pickup_hours,
        scope_weeks.median_review_hours,
        scope_weeks.median_deploy_hours,
        coalesce(scope_weeks.reviewed_prs, 0) as reviewed_prs,
        coalesce(scope_weeks.lead_times, 0) as lead_times,
        coalesce(scope_weeks.restores, 0) as restores,
        {%- for prefix in ['lead_24', 'lead_168', 'lead_720', 'restore_1', 'restore_24', 'restore_168'] %}
        coalesce(scope_weeks.{{ prefix }}_below, 0) as {{ prefix }}_below,
        scope_weeks.{{ prefix }}_below_max,
        scope_weeks.{{ prefix }}_above_min{{ ',' if not loop.last }}
        {%- endfor %}
    from weeks
    left join scope_weeks
        on scope_weeks.scope_type = weeks.scope_type
        and scope_weeks.scope = weeks.scope
        and scope_weeks.week_start = weeks.week_start
),

-- Weekly rows are contiguous per scope, so the 12-week window is the row and 11 before it.
windowed as (
    select
        weekly.*,
        sum(deployments) over last_12_weeks as deployments_12w,
        sum(failed_changes) over last_12_weeks as failed_changes_12w,
        sum(merged_prs) over last_12_weeks as merged_prs_12w,
        sum(reviewed_prs) over last_12_weeks as reviewed_prs_12w,
        sum(deployment_days) over last_12_weeks as deployment_days_12w,
        count(*) over last_12_weeks as weeks_12w,
        sum(successful_deployments) over last_12_weeks as successful_deployments_12w,
        sum(rework_deployments) over last_12_weeks as rework_deployments_12w,
        sum(deployments) over last_26_weeks as deployments_26w,
        sum(rework_deployments) over last_26_weeks as rework_deployments_26w,
        sum(lead_times) over last_12_weeks as lead_times_12w,
        sum(restores) over last_12_weeks as restores_12w,
        sum(lead_24_below) over last_12_weeks as lead_24_below_12w,
        max(lead_24_below_max) over last_12_weeks as lead_24_below_max_12w,
        min(lead_24_above_min) over last_12_weeks as lead_24_above_min_12w,
        sum(lead_168_below) over last_12_weeks as lead_168_below_12w,
        max(lead_168_below_max) over last_12_weeks as lead_168_below_max_12w,
        min(lead_168_above_min) over last_12_weeks as lead_168_above_min_12w,
        sum(lead_720_below) over last_12_weeks as lead_720_below_12w,
        max(lead_720_below_max) over last_12_weeks as lead_720_below_max_12w,
        min(lead_720_above_min) over last_12_weeks as lead_720_above_min_12w,
        sum(restore_1_below) over last_12_weeks as restore_1_below_12w,
        max(restore_1_below_max) over last_12_weeks as restore_1_below_max_12w,
        min(restore_1_above_min) over last_12_weeks as restore_1_above_min_12w,
        sum(restore_24_below) over last_12_weeks as restore_24_below_12w,
        max(restore_24_below_max) over last_12_weeks as restore_24_below_max_12w,
        min(restore_24_above_min) over last_12_weeks as restore_24_above_min_12w,
        sum(restore_168_below) over last_12_weeks as restore_168_below_12w,
        max(restore_168_below_max) over last_12_weeks as restore_168_below_max_12w,
        min(restore_168_above_min) over last_12_weeks as restore_168_above_min_12w,
        count(*) filter (where deployment_days < 1) over last_12_weeks as days_1_below_12w,
        max(deployment_days) filter (where deployment_days < 1) over last_12_weeks as days_1_below_max_12w,
        min(deployment_days) filter (where deployment_days >= 1) over last_12_weeks as days_1_above_min_12w,
        count(*) filter (where deployment_days < 5) over last_12_weeks as days_5_below_12w,
        max(deployment_days) filter (where deployment_days < 5) over last_12_weeks as days_5_below_max_12w,
        min(deployment_days) filter (where deployment_days >= 5) over last_12_weeks as days_5_above_min_12w
    from weekly
    window
        last_12_weeks as (partition by scope_type, scope order by week_start rows between 11 preceding and current row),
        last_26_weeks as (partition by scope_type, scope order by week_start rows between 25 preceding and current row)
),

graded as (
    select
        windowed.*,
        -- Medians of the window decided against each threshold (macro median_below).
        case
            when not {{ median_below('windowed.weeks_12w', 'windowed.days_5_below_12w', 'windowed.days_5_below_max_12w', 'windowed.days_5_above_min_12w', 5) }} then 'elite'
            when not {{ median_below('windowed.weeks_12w', 'windowed.days_1_below_12w', 'windowed.days_1_below_max_12w', 'windowed.days_1_above_min_12w', 1) }} then 'high'
            -- at least once a month on average: mean >= 12/52, compared without rounding
            when windowed.deployment_days_12w * 52 >= 12 * windowed.weeks_12w then 'medium'
            else 'low'
        end as deployment_frequency_grade,
        case
            when windowed.lead_times_12w = 0 then null
            when {{ median_below('windowed.lead_times_12w', 'windowed.lead_24_below_12w', 'windowed.lead_24_below_max_12w', 'windowed.lead_24_above_min_12w', 24) }} then 'elite'
            when {{ median_below('windowed.lead_times_12w', 'windowed.lead_168_below_12w', 'windowed.lead_168_below_max_12w', 'windowed.lead_168_above_min_12w', 168) }} then 'high'
            when {{ median_below('windowed.lead_times_12w', 'windowed.lead_720_below_12w', 'windowed.lead_720_below_max_12w', 'windowed.lead_720_above_min_12w', 720) }} then 'medium'
            else 'low'
        end as lead_time_grade,
        case
            when windowed.deployments_12w = 0 then null
            when windowed.failed_changes_12w * 100 <= 5 * windowed.deployments_12w then 'elite'
            when windowed.failed_changes_12w * 100 <= 10 * windowed.deployments_12w then 'high'
            when windowed.failed_changes_12w * 100 <= 15 * windowed.deployments_12w then 'medium'
            else 'low'
        end as change_failure_rate_grade,
        case
            when windowed.restores_12w = 0 then null
            when {{ median_below('windowed.restores_12w', 'windowed.restore_1_below_12w', 'windowed.restore_1_below_max_12w', 'windowed.restore_1_above_min_12w', 1) }} then 'elite'
            when {{ median_below('windowed.restores_12w', 'windowed.restore_24_below_12w', 'windowed.restore_24_below_max_12w', 'windowed.restore_24_above_min_12w', 24) }} then 'high'
            when {{ median_below('windowed.restores_12w', 'windowed.restore_168_below_12w', 'windowed.restore_168_below_max_12w', 'windowed.restore_168_above_min_12w', 168) }} then 'medium'
            else 'low'
        end as time_to_restore_grade,
        case when windowed.merged_prs_12w > 0
            then trim_scale(windowed.reviewed_prs_12w::numeric / windowed.merged_prs_12w) end as review_coverage_12w
    from windowed
),

scored as (
    select
        graded.*,
        (
            coalesce(0.25 * {{ grade_points('deployment_frequency_grade') }}, 0)
            + coalesce(0.25 * {{ grade_points('lead_time_grade') }}, 0)
            + coalesce(0.20 * {{ grade_points('change_failure_rate_grade') }}, 0)
            + coalesce(0.15 * {{ grade_points('time_to_restore_grade') }}, 0)
            + coalesce(0.15 * review_coverage_12w * 100, 0)
        ) / nullif(
            case when deployment_frequency_grade is not null then 0.25 else 0 end
            + case when lead_time_grade is not null then 0.25 else 0 end
            + case when change_failure_rate_grade is not null then 0.20 else 0 end
            + case when time_to_restore_grade is not null then 0.15 else 0 end
            + case when review_coverage_12w is not null then 0.15 else 0 end,
            0
        ) as performance_score
    from graded
),

-- DORA's five metrics over the trailing 12 weeks (26 for rework_rate_26w), for the weeks
-- written only: exact medians of the window's lead and recovery times by the
-- (scope_type, scope, week_start) index of int_dora_scope_weeks. Materialised: inlined, each
-- use of a median below re-ran its subquery (60 s instead of 1 s at 20,000 pull requests).
five_metrics as materialized (
    select
        scored.*,
        medians.lead_time_hours_12w,
        medians.recovery_hours_12w,
        trim_scale(scored.deployment_days_12w::numeric / scored.weeks_12w) as deployment_days_per_week_12w,
        case when scored.deployment_days_12w > 0
            then trim_scale(scored.successful_deployments_12w::numeric / scored.deployment_days_12w) end
            as deployments_per_deployment_day_12w,
        case when scored.deployments_12w > 0
            then trim_scale(scored.failed_changes_12w::numeric / scored.deployments_12w) end as change_failure_rate_12w,
        case when scored.deployments_12w > 0
            then trim_scale(scored.rework_deployments_12w::numeric / scored.deployments_12w) end as rework_rate_12w,
        case when scored.deployments_26w > 0
            then trim_scale(scored.rework_deployments_26w::numeric / scored.deployments_26w) end as rework_rate_26w
    from scored
    cross join lateral (
        select
            {%- for list, name in [('lead_time_hours_list', 'lead_time_hours_12w'), ('recovery_hours_list', 'recovery_hours_12w')] %}
            (
                select percentile_cont(0.5) within group (order by hours::numeric)::numeric
                from {{ ref('int_dora_scope_weeks') }} as stored
                cross join jsonb_array_elements_text(stored.{{ list }}) as hours
                where stored.scope_type = scored.scope_type
                    and stored.scope = scored.scope
                    and stored.week_start between scored.week_start - 77 and scored.week_start
            ) as {{ name }}{{ ',' if not loop.last }}
            {%- endfor %}
    ) as medians
    where scored.week_start >= scored.write_from
),

banded as (
    select
        five_metrics.*,
        {{ quick_check_hours_band('lead_time_hours_12w') }} as lead_time_band,
        {{ quick_check_hours_band('recovery_hours_12w') }} as recovery_band,
        case
            when deployment_days_12w >= 5 * weeks_12w and successful_deployments_12w >= 2 * deployment_days_12w then 6
            when deployment_days_12w >= 5 * weeks_12w then 5
            when deployment_days_12w >= weeks_12w then 4
            -- at least once a month on average: 12/52 per week, compared without rounding
            when deployment_days_12w * 52 >= 12 * weeks_12w then 3
            when deployment_days_12w > 0 then 2
            else 1
        end as deployment_frequency_band
    from five_metrics
),

quick_check as (
    select
        banded.*,
        (lead_time_band - 1) * 2 as lead_time_score,
        (deployment_frequency_band - 1) * 2 as deployment_frequency_score,
        (recovery_band - 1) * 2 as recovery_score,
        trim_scale(10 - 10 * change_failure_rate_12w) as change_fail_score,
        trim_scale(10 - 10 * rework_rate_12w) as rework_score
    from banded
),

aggregated as (
    select
        quick_check.*,
        {{ mean_of_present(['lead_time_score', 'deployment_frequency_score', 'recovery_score']) }} as throughput_score,
        {{ mean_of_present(['change_fail_score', 'rework_score']) }} as stability_score,
        {{ mean_of_present(['lead_time_score', 'deployment_frequency_score', 'recovery_score', 'change_fail_score', 'rework_score']) }}
            as overall_score
    from quick_check
),

benchmark as (
    {{ dora_benchmark_means() }}
)

select
    scope_type,
    scope,
    week_start,
    deployments,
    deployment_days,
    median_lead_time_hours,
    case when deployments > 0 then trim_scale(failed_changes::numeric / deployments) end as change_failure_rate,
    failed_changes,
    incidents,
    median_time_to_restore_hours,
    merged_prs,
    case when merged_prs > 0 then trim_scale(reviewed_prs::numeric / merged_prs) end as review_coverage,
    median_pr_size,
    p90_pr_size,
    median_coding_hours,
    median_pickup_hours,
    median_review_hours,
    median_deploy_hours,
    -- DORA's 2023 grades and the project's former 0-100 score: kept for one release
    deployment_frequency_grade as legacy_deployment_frequency_grade,
    lead_time_grade as legacy_lead_time_grade,
    change_failure_rate_grade as legacy_change_failure_rate_grade,
    time_to_restore_grade as legacy_time_to_restore_grade,
    review_coverage_12w,
    performance_score as legacy_performance_score,
    rework_deployments,
    case when deployments > 0 then trim_scale(rework_deployments::numeric / deployments) end as rework_rate,
    recovered_deployments,
    median_recovery_hours,
    lead_time_hours_12w,
    deployment_days_per_week_12w,
    deployments_per_deployment_day_12w,
    change_failure_rate_12w,
    recovery_hours_12w,
    rework_rate_12w,
    rework_rate_26w,
    lead_time_band,
    deployment_frequency_band,
    recovery_band,
    lead_time_score,
    deployment_frequency_score,
    recovery_score,
    change_fail_score,
    rework_score,
    throughput_score,
    stability_score,
    overall_score,
    trim_scale(overall_score - benchmark.overall) as overall_vs_benchmark,
    trim_scale(throughput_score - benchmark.throughput) as throughput_vs_benchmark,
    trim_scale(stability_score - benchmark.stability) as stability_vs_benchmark
from aggregated
cross join benchmark
