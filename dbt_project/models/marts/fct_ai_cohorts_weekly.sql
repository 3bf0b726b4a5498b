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
-- A table: each pull request enters only the windows that hold its merge or its shipping week
-- (12 or a few more), joined to the rows by equality.

with

items as materialized (
    {{ ai_cohort_items() }}
),

scope_weeks as (
    select weekly.scope_type, weekly.scope, weekly.week_start, cohorts.cohort
    from {{ ref('fct_dora_weekly') }} as weekly
    cross join (values ('ai_assisted'), ('other')) as cohorts (cohort)
),

-- Each pull request in the weeks whose windows hold it: from its merge week to 11 weeks after
-- its shipping week (its merge week when not shipped).
item_weeks as (
    select
        items.*,
        window_weeks.week_start::date as week_start
    from items
    cross join lateral generate_series(
        items.merged_week, coalesce(items.shipped_week, items.merged_week) + 77, interval '7 days'
    ) as window_weeks (week_start)
),

windowed as (
    select
        scope_weeks.scope_type,
        scope_weeks.scope,
        scope_weeks.week_start,
        scope_weeks.cohort,
        item_weeks.coding_hours,
        item_weeks.pickup_hours,
        item_weeks.review_hours,
        item_weeks.deploy_hours,
        item_weeks.lead_time_hours,
        item_weeks.pr_size,
        item_weeks.has_review,
        item_weeks.is_rework,
        item_weeks.fails_change,
        item_weeks.merged_week = scope_weeks.week_start as is_merged_in_week,
        item_weeks.shipped_week = scope_weeks.week_start as is_shipped_in_week,
        item_weeks.merged_week >= scope_weeks.week_start - 77 as is_merged_in_12w,
        item_weeks.shipped_week between scope_weeks.week_start - 77 and scope_weeks.week_start as is_shipped_in_12w
    from scope_weeks
    left join item_weeks
        on item_weeks.scope_type = scope_weeks.scope_type
        and item_weeks.scope = scope_weeks.scope
        and item_weeks.cohort = scope_weeks.cohort
        and item_weeks.week_start = scope_weeks.week_start
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
