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

scopes as (
    select distinct scope_type, scope from {{ ref('fct_dora_weekly') }}
),

weekly_shares as (
    select
        scope_type,
        scope,
        week_start,
        sum(merged_prs) as merged_prs,
        sum(merged_prs) filter (where cohort = 'ai_assisted') as ai_assisted_prs
    from {{ ref('int_ai_cohort_scope_weeks') }}
    group by scope_type, scope, week_start
    having sum(merged_prs) > 0
),

adoption as (
    select distinct on (scope_type, scope)
        scope_type,
        scope,
        week_start as adoption_week,
        coalesce(ai_assisted_prs, 0)::numeric / merged_prs as adoption_week_share
    from weekly_shares
    where coalesce(ai_assisted_prs, 0)::numeric / merged_prs >= {{ var('ai_adoption_share') }}
    order by scope_type, scope, week_start
),

totals as (
    select scope_type, scope, sum(merged_prs) as merged_prs, sum(ai_assisted_prs) as ai_assisted_prs
    from weekly_shares
    group by scope_type, scope
),

-- Each scope's items from the pieces of its weeks (both cohorts), with the period they are
-- merged (shipped) in: before the adoption week or from it on (neither without one).
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
        items.is_merged and pieces.week_start < adoption.adoption_week as is_merged_before,
        items.is_shipped and pieces.week_start < adoption.adoption_week as is_shipped_before,
        items.is_merged and pieces.week_start >= adoption.adoption_week as is_merged_after,
        items.is_shipped and pieces.week_start >= adoption.adoption_week as is_shipped_after
    from scopes
    inner join adoption on adoption.scope_type = scopes.scope_type and adoption.scope = scopes.scope
    inner join {{ ref('int_ai_cohort_scope_weeks') }} as pieces
        on pieces.scope_type = scopes.scope_type and pieces.scope = scopes.scope
    cross join lateral ({{ ai_cohort_piece_items('pieces') }}) as items
),

figures as (
    select
        scope_type,
        scope,
        adoption_week,
        adoption_week_share,
        {{ ai_cohort_figures('is_merged_before', 'is_shipped_before', '_before') }},
        {{ ai_cohort_figures('is_merged_after', 'is_shipped_after', '_after') }}
    from periods
    group by scope_type, scope, adoption_week, adoption_week_share
),

final as (
    select
        scopes.scope_type,
        scopes.scope,
        coalesce(totals.merged_prs, 0)::bigint as merged_prs,
        coalesce(totals.ai_assisted_prs, 0)::bigint as ai_assisted_prs,
        figures.adoption_week,
        figures.adoption_week_share,
        {%- for suffix in ['_before', '_after'] %}
        coalesce(figures.merged_prs{{ suffix }}, 0) as merged_prs{{ suffix }},
        coalesce(figures.is_too_small{{ suffix }}, true) as is_too_small{{ suffix }},
        {%- for column in ['median_coding_hours', 'median_pickup_hours', 'median_review_hours', 'median_deploy_hours',
                           'median_lead_time_hours', 'median_pr_size', 'review_coverage', 'change_failure_rate', 'rework_rate'] %}
        figures.{{ column }}{{ suffix }}{{ ',' if not (loop.last and suffix == '_after') }}
        {%- endfor %}
        {%- endfor %}
    from scopes
    left join totals on totals.scope_type = scopes.scope_type and totals.scope = scopes.scope
    left join figures on figures.scope_type = scopes.scope_type and figures.scope = scopes.scope
)

select * from final
