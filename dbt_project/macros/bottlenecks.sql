{#- Helpers of fct_bottlenecks. -#}

{#- The lead-time stages, in the order that breaks ties (docs/dora.md, Bottlenecks). -#}
{% macro bottleneck_stages() -%}
    {{ return(['coding', 'pickup', 'review', 'deploy']) }}
{%- endmacro %}

{#- Before an incremental fct_bottlenecks run (fct_dora_weekly and int_dora_scope_weeks are
    built): drop the weeks it recomputes, then every week of a scope whose stored rows no longer
    fit, and the run rewrites those scopes whole:
    - the scope's weeks before the recomputed ones are not exactly fct_dora_weekly's (a scope
      gone, new, or whose first week moved);
    - a stored window differs from int_dora_scope_weeks: each row's 12-week sums minus the
      previous row's must be the week's staged_* minus those of the week 12 weeks before (the
      week entering the window minus the one leaving it); from the scope's first week on this
      pins every window, so a scope that int_dora_scope_weeks rewrote with other values (its
      repositories or their rules changed) is found, and only such a scope;
    - a row whose named stage disagrees with `bottleneck_min_prs` (the var changed).
    One pass over the stored rows, as dora_weekly_prune does for fct_dora_weekly. -#}
{% macro bottlenecks_prune() -%}
    delete from {{ this }} where week_start >= {{ dora_recompute_from(this) }};
    delete from {{ this }} as stale
    using (
        {{ scopes_out_of_step_with_dora_weekly() }}
        union
        select steps.scope_type, steps.scope
        from (
            select
                scope_type,
                scope,
                week_start,
                (dominant_stage is not null) as has_stage,
                prs_12w >= {{ var('bottleneck_min_prs') }}
                    and {% for stage in bottleneck_stages() %}{{ stage }}_hours_12w{{ ' + ' if not loop.last }}{% endfor %} > 0
                    as names_stage,
                prs_12w - coalesce(lag(prs_12w) over scope_weeks, 0) as prs_step
                {%- for stage in bottleneck_stages() %},
                {{ stage }}_hours_12w - coalesce(lag({{ stage }}_hours_12w) over scope_weeks, 0) as {{ stage }}_step
                {%- endfor %}
            from {{ this }}
            window scope_weeks as (partition by scope_type, scope order by week_start)
        ) as steps
        left join {{ ref('int_dora_scope_weeks') }} as entering
            on entering.scope_type = steps.scope_type
            and entering.scope = steps.scope
            and entering.week_start = steps.week_start
        left join {{ ref('int_dora_scope_weeks') }} as leaving
            on leaving.scope_type = steps.scope_type
            and leaving.scope = steps.scope
            and leaving.week_start = steps.week_start - 84
        where steps.has_stage is distinct from steps.names_stage
            or (
                steps.prs_step
                {%- for stage in bottleneck_stages() %}, steps.{{ stage }}_step{% endfor %}
            ) is distinct from (
                coalesce(entering.staged_prs, 0) - coalesce(leaving.staged_prs, 0)
                {%- for stage in bottleneck_stages() %},
                coalesce(entering.staged_{{ stage }}_hours, 0) - coalesce(leaving.staged_{{ stage }}_hours, 0)
                {%- endfor %}
            )
    ) as changed
    where stale.scope_type = changed.scope_type and stale.scope = changed.scope
{%- endmacro %}
