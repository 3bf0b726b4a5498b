{{ config(
    materialized='incremental',
    unique_key=['scope_type', 'scope'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['scope_type', 'scope'], 'unique': True}],
    pre_hook=["{% if is_incremental() %}{{ ai_adoption_prune() }}{% endif %}"],
) }}

-- One row per scope of fct_dora_weekly (docs/ai.md): its adoption week, the first week whose
-- AI-assisted share of the merged pull requests (by people and AI agents) reaches
-- ai_adoption_share (null when none does), and the figures of all its merged pull requests in
-- the ai_adoption_window_weeks weeks before that week (before_*) and in as many from it on
-- (after_*), by the rules of fct_ai_cohorts_weekly (merged, or shipped, in the window;
-- ai_cohort_min_prs). Without an adoption week both windows are empty and too small.
--
-- Incremental: a run rereads only the scopes whose answer can change. Their changed weeks
-- start at the first week int_ai_cohort_scope_weeks wrote in this dbt invocation
-- (changed_from, by its _invocation_id index). Earlier weeks are unchanged, and none of them
-- before the stored adoption week reached the share, so the adoption week is searched from
-- changed_from on unless it is earlier; the windows are read only when they reach
-- changed_from. A new scope, or one rewritten whole, is read from its first week. This keeps
-- a wave from rereading every scope's history (at 100,000 pull requests a table took 2.1 s
-- of each wave and grew with the history).

with

scopes as (
    select distinct scope_type, scope from {{ ref('fct_dora_weekly') }}
),

changed as (
    select scope_type, scope, min(week_start) as changed_from
    from {{ ref('int_ai_cohort_scope_weeks') }}
    {% if is_incremental() -%}
    where _invocation_id = '{{ invocation_id }}'
    {%- endif %}
    group by scope_type, scope
),

-- The scopes to recompute, with the first week whose share may now reach ai_adoption_share
-- (search_from) or their adoption week when it is settled (kept_adoption_week).
recomputed as (
    select
        scopes.scope_type,
        scopes.scope,
        {% if is_incremental() -%}
        case
            when stored.scope is null then '-infinity'::date
            when stored.adoption_week is null or stored.adoption_week >= changed.changed_from then changed.changed_from
        end as search_from,
        case when stored.adoption_week < changed.changed_from then stored.adoption_week end as kept_adoption_week,
        case when stored.adoption_week < changed.changed_from then stored.adoption_week_share end as kept_adoption_week_share
        {%- else -%}
        '-infinity'::date as search_from,
        null::date as kept_adoption_week,
        null::numeric as kept_adoption_week_share
        {%- endif %}
    from scopes
    left join changed on changed.scope_type = scopes.scope_type and changed.scope = scopes.scope
    {% if is_incremental() -%}
    left join {{ this }} as stored on stored.scope_type = scopes.scope_type and stored.scope = scopes.scope
    where stored.scope is null
        or (changed.scope is not null and (
            stored.adoption_week is null
            or stored.adoption_week + 7 * {{ var('ai_adoption_window_weeks') }} > changed.changed_from
        ))
    {%- endif %}
),

weekly_shares as (
    select
        pieces.scope_type,
        pieces.scope,
        pieces.week_start,
        sum(pieces.merged_prs) as merged_prs,
        sum(pieces.merged_prs) filter (where pieces.cohort = 'ai_assisted') as ai_assisted_prs
    from recomputed
    inner join {{ ref('int_ai_cohort_scope_weeks') }} as pieces
        on pieces.scope_type = recomputed.scope_type
        and pieces.scope = recomputed.scope
        and pieces.week_start >= recomputed.search_from
    group by pieces.scope_type, pieces.scope, pieces.week_start
    having sum(pieces.merged_prs) > 0
),

found as (
    select distinct on (scope_type, scope)
        scope_type,
        scope,
        week_start as adoption_week,
        coalesce(ai_assisted_prs, 0)::numeric / merged_prs as adoption_week_share
    from weekly_shares
    where coalesce(ai_assisted_prs, 0)::numeric / merged_prs >= {{ var('ai_adoption_share') }}
    order by scope_type, scope, week_start
),

adoption as (
    select
        recomputed.scope_type,
        recomputed.scope,
        coalesce(recomputed.kept_adoption_week, found.adoption_week) as adoption_week,
        coalesce(recomputed.kept_adoption_week_share, found.adoption_week_share) as adoption_week_share
    from recomputed
    left join found on found.scope_type = recomputed.scope_type and found.scope = recomputed.scope
),

-- The items of the weeks around each adoption week (both cohorts), with the window they are
-- merged (shipped) in; a scope without an adoption week keeps one row without items, so its
-- figures below are those of empty windows (0 pull requests, too small).
windows as (
    select
        adoption.scope_type,
        adoption.scope,
        adoption.adoption_week,
        adoption.adoption_week_share,
        items.*,
        items.is_merged and pieces.week_start < adoption.adoption_week as is_merged_before,
        items.is_shipped and pieces.week_start < adoption.adoption_week as is_shipped_before,
        items.is_merged and pieces.week_start >= adoption.adoption_week as is_merged_after,
        items.is_shipped and pieces.week_start >= adoption.adoption_week as is_shipped_after
    from adoption
    left join {{ ref('int_ai_cohort_scope_weeks') }} as pieces
        on pieces.scope_type = adoption.scope_type
        and pieces.scope = adoption.scope
        and pieces.week_start >= adoption.adoption_week - 7 * {{ var('ai_adoption_window_weeks') }}
        and pieces.week_start < adoption.adoption_week + 7 * {{ var('ai_adoption_window_weeks') }}
    left join lateral ({{ ai_cohort_piece_items('pieces') }}) as items on true
),

final as (
    select
        scope_type,
        scope,
        adoption_week,
        adoption_week_share,
        {{ var('ai_adoption_window_weeks') }} as window_weeks,
        {{ ai_cohort_figures('is_merged_before', 'is_shipped_before', '_before') }},
        {{ ai_cohort_figures('is_merged_after', 'is_shipped_after', '_after') }}
    from windows
    group by scope_type, scope, adoption_week, adoption_week_share
)

select * from final
