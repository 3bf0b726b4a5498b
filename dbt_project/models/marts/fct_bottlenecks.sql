{{ config(
    materialized='incremental',
    unique_key=['scope_type', 'scope', 'week_start'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['scope_type', 'scope', 'week_start'], 'unique': True}],
    pre_hook=["{% if is_incremental() %}{{ bottlenecks_prune() }}{% endif %}"],
) }}

-- The lead-time bottleneck of each scope-week of fct_dora_weekly (docs/dora.md, Bottlenecks):
-- over the trailing 12 weeks ending with the row's week, the pull requests counted in the
-- scope's lead time (shipped in those weeks, not by a bot, with a lead time) that have all four
-- stage durations; their hours per stage summed, each stage's share of the four stages' hours,
-- the stage with the largest share (ties: coding, pickup, review, deploy) and its share in the
-- window's earlier 6 weeks and recent 6. With fewer than `bottleneck_min_prs` pull requests
-- (dbt var, default 5) no stage is named. The week's stage sums come from int_dora_scope_weeks
-- (staged_*), which does the per-pull-request work incrementally.
--
-- Incremental, as fct_dora_weekly: a run rewrites the trailing `recompute_weeks` weeks of every
-- scope (their windows read the 11 weeks before), and every week of a scope without rows: new,
-- or dropped by the pre-hook (bottlenecks_prune: its weeks or its windows no longer match
-- fct_dora_weekly and int_dora_scope_weeks). Not a table, because that was measured not to be
-- cheap: on the 1,000,000-PR benchmark (bench/dbt.py, 110,000 scope-weeks; wave 8.6 s without
-- this model) a table took 2.1 s of each wave and put the wave at 21.7 % of the full build,
-- above its 20 % target; incremental it takes 1.1 s (0.6 s of it the pre-hook's check) and the
-- wave is at 18.9 %.

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

-- The weeks written and the 11 before them that their windows read.
weekly as (
    select
        weekly.scope_type,
        weekly.scope,
        weekly.week_start,
        {% if is_incremental() -%}
        stored_scopes.scope is null or weekly.week_start >= recompute.write_from as is_written
        {%- else -%}
        true as is_written
        {%- endif %}
    from {{ ref('fct_dora_weekly') }} as weekly
    {% if is_incremental() -%}
    cross join recompute
    left join stored_scopes on stored_scopes.scope_type = weekly.scope_type and stored_scopes.scope = weekly.scope
    where stored_scopes.scope is null or weekly.week_start >= recompute.write_from - 77
    {%- endif %}
),

staged as (
    select
        weekly.*,
        coalesce(stages.staged_prs, 0) as prs,
        {%- for stage in bottleneck_stages() %}
        coalesce(stages.staged_{{ stage }}_hours, 0) as {{ stage }}_hours{{ ',' if not loop.last }}
        {%- endfor %}
    from weekly
    left join {{ ref('int_dora_scope_weeks') }} as stages
        on stages.scope_type = weekly.scope_type
        and stages.scope = weekly.scope
        and stages.week_start = weekly.week_start
),

-- Weekly rows are contiguous per scope, so the 12-week window is the row and the 11 before it:
-- its recent half the row and the 5 before, its earlier half the recent half 6 rows before
-- (none in a scope's first 6 weeks).
recent as (
    select
        staged.*,
        sum(prs) over recent_6_weeks as prs_recent
        {%- for stage in bottleneck_stages() %},
        sum({{ stage }}_hours) over recent_6_weeks as {{ stage }}_hours_recent
        {%- endfor %}
    from staged
    window recent_6_weeks as (partition by scope_type, scope order by week_start rows between 5 preceding and current row)
),

halves as (
    select
        recent.*,
        coalesce(lag(prs_recent, 6) over scope_weeks, 0) as prs_earlier
        {%- for stage in bottleneck_stages() %},
        coalesce(lag({{ stage }}_hours_recent, 6) over scope_weeks, 0) as {{ stage }}_hours_earlier
        {%- endfor %}
    from recent
    window scope_weeks as (partition by scope_type, scope order by week_start)
),

windows as (
    select
        scope_type,
        scope,
        week_start,
        (prs_earlier + prs_recent)::bigint as prs_12w,
        {%- for stage in bottleneck_stages() %}
        {{ stage }}_hours_earlier + {{ stage }}_hours_recent as {{ stage }}_hours_12w,
        {{ stage }}_hours_earlier,
        {{ stage }}_hours_recent,
        {%- endfor %}
        {%- for part in ['earlier', 'recent'] %}
        {% for stage in bottleneck_stages() %}{{ stage }}_hours_{{ part }}{{ ' + ' if not loop.last }}{% endfor %} as hours_{{ part }},
        {%- endfor %}
        {% for stage in bottleneck_stages() %}{{ stage }}_hours_earlier + {{ stage }}_hours_recent{{ ' + ' if not loop.last }}{% endfor %} as hours_12w
    from halves
    where is_written
),

-- The dominant stage, compared on the exact sums (the shares' order); a CASE takes the first
-- branch that matches, so a tie goes to the earlier of coding, pickup, review, deploy.
dominant as (
    select
        windows.*,
        case when prs_12w >= {{ var('bottleneck_min_prs') }} and hours_12w > 0 then
            case greatest(coding_hours_12w, pickup_hours_12w, review_hours_12w, deploy_hours_12w)
                {%- for stage in bottleneck_stages() %}
                {% if not loop.last %}when {{ stage }}_hours_12w then{% else %}else{% endif %} '{{ stage }}'
                {%- endfor %}
            end
        end as dominant_stage
    from windows
),

shares as (
    select
        dominant.*,
        {%- for part in ['12w', 'earlier', 'recent'] %}
        case when hours_{{ part }} > 0 then trim_scale(
            case dominant_stage
                {%- for stage in bottleneck_stages() %}
                when '{{ stage }}' then {{ stage }}_hours_{{ part }}
                {%- endfor %}
            end / hours_{{ part }}
        ) end as dominant_share_{{ part }}{{ ',' if not loop.last }}
        {%- endfor %}
    from dominant
)

select
    scope_type,
    scope,
    week_start,
    prs_12w,
    {%- for stage in bottleneck_stages() %}
    {{ stage }}_hours_12w,
    {%- endfor %}
    {%- for stage in bottleneck_stages() %}
    case when hours_12w > 0 then trim_scale({{ stage }}_hours_12w / hours_12w) end as {{ stage }}_share_12w,
    {%- endfor %}
    dominant_stage,
    dominant_share_12w,
    dominant_share_earlier as dominant_share_earlier_6w,
    dominant_share_recent as dominant_share_recent_6w,
    trim_scale(dominant_share_recent - dominant_share_earlier) as dominant_share_change
from shares
