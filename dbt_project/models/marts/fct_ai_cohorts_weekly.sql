{{ config(
    materialized='incremental',
    unique_key=['scope_type', 'scope', 'week_start', 'cohort'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['scope_type', 'scope', 'week_start', 'cohort'], 'unique': True}],
    pre_hook=["{% if is_incremental() %}{{ ai_cohorts_weekly_prune() }}{% endif %}"],
) }}

-- Per row of fct_dora_weekly and cohort (ai_assisted, other; docs/ai.md): the pull-request
-- figures of the cohort's merged pull requests by people and AI agents, for the week and the
-- 12 weeks ending with it (_12w), pooled across a user's repositories. Medians of the stages
-- and size, review coverage and rework rate are over the pull requests merged in the window;
-- lead time and change failure rate (the share whose shipping deployment fails a change) over
-- those shipped in it. Fewer than ai_cohort_min_prs merged pull requests: the figures are null
-- and is_too_small says so.
--
-- Each row reads the pieces of its 12 weeks from int_ai_cohort_scope_weeks (by its index) and
-- takes exact medians over their arrays. Incremental, as fct_bottlenecks: a run rewrites the
-- trailing `recompute_weeks` weeks of every scope, and every week of a scope without rows: new,
-- or dropped by the pre-hook (ai_cohorts_weekly_prune). A table was measured not to be cheap:
-- at 20,000 pull requests (bench/dbt.py --quick) it took 14.5 s of a 17.9 s wave.

-- The weeks an incremental run rewrites (dora_recompute_from) follow the last event:
-- depends_on: {{ ref('fct_pull_requests') }}, {{ ref('fct_deployments') }}, {{ ref('fct_incidents') }}

with

{% if is_incremental() %}
stored_scopes as (
    select distinct scope_type, scope from {{ this }}
),

recompute as materialized (
    select {{ dora_recompute_from(this) }} as write_from
),
{% endif %}

written as (
    select weekly.scope_type, weekly.scope, weekly.week_start, cohorts.cohort
    from {{ ref('fct_dora_weekly') }} as weekly
    cross join (values ('ai_assisted'), ('other')) as cohorts (cohort)
    {% if is_incremental() -%}
    cross join recompute
    left join stored_scopes on stored_scopes.scope_type = weekly.scope_type and stored_scopes.scope = weekly.scope
    where stored_scopes.scope is null or weekly.week_start >= recompute.write_from
    {%- endif %}
),

windowed as (
    select
        written.scope_type,
        written.scope,
        written.week_start,
        written.cohort,
        items.*,
        items.is_merged and pieces.week_start = written.week_start as is_merged_in_week,
        items.is_shipped and pieces.week_start = written.week_start as is_shipped_in_week,
        items.is_merged as is_merged_in_12w,
        items.is_shipped as is_shipped_in_12w
    from written
    left join {{ ref('int_ai_cohort_scope_weeks') }} as pieces
        on pieces.scope_type = written.scope_type
        and pieces.scope = written.scope
        and pieces.cohort = written.cohort
        and pieces.week_start between written.week_start - 77 and written.week_start
    left join lateral ({{ ai_cohort_piece_items('pieces') }}) as items on true
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
