{{ config(
    materialized='table',
    indexes=[{'columns': ['scope_type', 'scope', 'week_start', 'cohort'], 'unique': True}],
) }}

-- Per row of fct_dora_weekly and cohort (ai_assisted, other; docs/ai.md): the pull-request
-- figures of the cohort's merged pull requests by people, for the week and for the trailing
-- 12 weeks ending with it (_12w), pooled across a user's repositories. Medians of the stages
-- and size, review coverage and rework rate are over the pull requests merged in the window;
-- lead time and change failure rate (the share whose shipping deployment fails a change) over
-- those shipped in it. Fewer than ai_cohort_min_prs merged pull requests: the figures are null
-- and is_too_small says so.
--
-- A table: each pull request enters the 13 windows that hold its merge or its shipping week.

with

items as materialized (
    {{ ai_cohort_items() }}
),

scope_weeks as (
    select weekly.scope_type, weekly.scope, weekly.week_start, cohorts.cohort
    from {{ ref('fct_dora_weekly') }} as weekly
    cross join (values ('ai_assisted'), ('other')) as cohorts (cohort)
),

windowed as (
    select
        scope_weeks.scope_type,
        scope_weeks.scope,
        scope_weeks.week_start,
        scope_weeks.cohort,
        items.coding_hours,
        items.pickup_hours,
        items.review_hours,
        items.deploy_hours,
        items.lead_time_hours,
        items.pr_size,
        items.has_review,
        items.is_rework,
        items.fails_change,
        items.merged_week = scope_weeks.week_start as is_merged_in_week,
        items.shipped_week = scope_weeks.week_start as is_shipped_in_week,
        items.merged_week between scope_weeks.week_start - 77 and scope_weeks.week_start as is_merged_in_12w,
        items.shipped_week between scope_weeks.week_start - 77 and scope_weeks.week_start as is_shipped_in_12w
    from scope_weeks
    left join items
        on items.scope_type = scope_weeks.scope_type
        and items.scope = scope_weeks.scope
        and items.cohort = scope_weeks.cohort
        and (
            items.merged_week between scope_weeks.week_start - 77 and scope_weeks.week_start
            or items.shipped_week between scope_weeks.week_start - 77 and scope_weeks.week_start
        )
),

final as (
    select
        scope_type,
        scope,
        week_start,
        cohort,
        {{ ai_cohort_figures('is_merged_in_week', 'is_shipped_in_week') }},
        {{ ai_cohort_figures('is_merged_in_12w', 'is_shipped_in_12w', '_12w') }}
    from windowed
    group by scope_type, scope, week_start, cohort
)

select * from final
