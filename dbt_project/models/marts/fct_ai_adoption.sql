{{ config(
    materialized='table',
    indexes=[{'columns': ['scope_type', 'scope'], 'unique': True}],
) }}

-- One row per scope of fct_dora_weekly (docs/ai.md): its adoption week, the first week whose
-- AI-assisted share of the merged pull requests by people reaches ai_adoption_share (null when
-- none does), and the figures of all its merged pull requests by people before that week
-- (before_*) and from it on (after_*), by the rules of fct_ai_cohorts_weekly (merged, or
-- shipped, before / from the adoption week; ai_cohort_min_prs). Without an adoption week the
-- before and after figures are null and both periods count as too small.

with

items as materialized (
    {{ ai_cohort_items() }}
),

scopes as (
    select distinct scope_type, scope from {{ ref('fct_dora_weekly') }}
),

weekly_shares as (
    select
        scope_type,
        scope,
        merged_week,
        count(*) as merged_prs,
        count(*) filter (where cohort = 'ai_assisted') as ai_assisted_prs
    from items
    group by scope_type, scope, merged_week
),

adoption as (
    select distinct on (scope_type, scope)
        scope_type,
        scope,
        merged_week as adoption_week,
        ai_assisted_prs::numeric / merged_prs as adoption_week_share
    from weekly_shares
    where ai_assisted_prs::numeric / merged_prs >= {{ var('ai_adoption_share') }}
    order by scope_type, scope, merged_week
),

periods as (
    select
        scopes.scope_type,
        scopes.scope,
        adoption.adoption_week,
        adoption.adoption_week_share,
        items.coding_hours,
        items.pickup_hours,
        items.review_hours,
        items.deploy_hours,
        items.lead_time_hours,
        items.pr_size,
        items.has_review,
        items.is_rework,
        items.fails_change,
        items.cohort = 'ai_assisted' as is_ai_assisted,
        items.merged_week < adoption.adoption_week as is_merged_before,
        items.shipped_week < adoption.adoption_week as is_shipped_before,
        items.merged_week >= adoption.adoption_week as is_merged_after,
        items.shipped_week >= adoption.adoption_week as is_shipped_after
    from scopes
    left join adoption on adoption.scope_type = scopes.scope_type and adoption.scope = scopes.scope
    left join items on items.scope_type = scopes.scope_type and items.scope = scopes.scope
),

final as (
    select
        scope_type,
        scope,
        count(is_ai_assisted) as merged_prs,  -- the items (null without any)
        count(*) filter (where is_ai_assisted) as ai_assisted_prs,
        adoption_week,
        adoption_week_share,
        {{ ai_cohort_figures('is_merged_before', 'is_shipped_before', '_before') }},
        {{ ai_cohort_figures('is_merged_after', 'is_shipped_after', '_after') }}
    from periods
    group by scope_type, scope, adoption_week, adoption_week_share
)

select * from final
