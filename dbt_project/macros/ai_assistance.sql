{#- AI assistance (docs/ai.md): rules from the ai_* dbt vars. -#}

{#- A dbt var's list of strings as a Postgres text[] literal. -#}
{% macro text_array(values) -%}
    array[{% for value in values %}'{{ value | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor %}]::text[]
{%- endmacro %}

{#- One row per pull request with AI evidence in the messages of `commits` (a relation or CTE
    with pull_request_id, sha, authored_at, message): the strongest, by rule (an AI co-author
    before a Made-with-style trailer), then the earliest commit (authored_at, then sha), then
    the first such line of its message (docs/ai.md). A trailer is a line `Key: value` (leading
    blanks allowed); `Co-authored-by: name <email>` is one whose key is co-authored-by.
    Messages without a trailer key and a colon are skipped by one cheap test; the others are
    split into trailer lines by one regular expression for both rules. -#}
{% macro ai_commit_evidence(commits) -%}
    {%- set keys = (['co-authored-by'] + var('ai_trailer_keys')) | join("|") | replace("'", "''") -%}
    with candidates as (
        select pull_request_id, sha, authored_at, message
        from {{ commits }}
        where message ~* '({{ keys }})[ \t]*:'
    ),

    trailers as (
        select
            candidates.pull_request_id,
            candidates.authored_at,
            candidates.sha,
            line.position,
            line.match[1] as key,
            btrim(line.match[2], E' \t') as value
        from candidates
        cross join lateral regexp_matches(candidates.message, '^[ \t]*({{ keys }})[ \t]*:[ \t]*([^\n]*)', 'gin')
            with ordinality as line (match, position)
    ),

    evidence as (
        select
            trailers.pull_request_id,
            1 as rule_rank,
            trailers.authored_at,
            trailers.sha,
            trailers.position,
            'co-author ' || btrim(btrim(person[1], E' \t') || ' <' || btrim(person[2], E' \t') || '>')
                || ' in commit ' || left(trailers.sha, 7) as evidence
        from trailers
        cross join lateral regexp_match(trailers.value, '^([^<]*)<([^>]*)>') as person
        where lower(trailers.key) = 'co-authored-by'
            and btrim(person[2], E' \t') ~* any({{ text_array(var('ai_coauthor_emails')) }})
        union all
        select
            pull_request_id,
            2 as rule_rank,
            authored_at,
            sha,
            position,
            'trailer ' || key || ': ' || value || ' in commit ' || left(sha, 7) as evidence
        from trailers
        where lower(key) <> 'co-authored-by'
            and value ~* '{{ var("ai_tool_pattern") | replace("'", "''") }}'
    )

    select distinct on (pull_request_id) pull_request_id, evidence
    from evidence
    order by pull_request_id, rule_rank, authored_at, sha, position
{%- endmacro %}

{#- A cohort's figures over the rows of a group, `merged` and `shipped` being the conditions
    that a row is merged (shipped) in the window; null when fewer than ai_cohort_min_prs merged
    pull requests, with is_too_small<suffix> saying so. -#}
{% macro ai_cohort_figures(merged, shipped, suffix='') -%}
    {%- set enough = "count(*) filter (where " ~ merged ~ ") >= " ~ var('ai_cohort_min_prs') -%}
    count(*) filter (where {{ merged }}) as merged_prs{{ suffix }},
    not ({{ enough }}) as is_too_small{{ suffix }},
    {%- for stage in ['coding', 'pickup', 'review', 'deploy'] %}
    case when {{ enough }} then percentile_cont(0.5) within group (order by {{ stage }}_hours)
        filter (where {{ merged }})::numeric end as median_{{ stage }}_hours{{ suffix }},
    {%- endfor %}
    case when {{ enough }} then percentile_cont(0.5) within group (order by lead_time_hours)
        filter (where {{ shipped }})::numeric end as median_lead_time_hours{{ suffix }},
    case when {{ enough }} then percentile_cont(0.5) within group (order by pr_size)
        filter (where {{ merged }})::numeric end as median_pr_size{{ suffix }},
    case when {{ enough }} then (count(*) filter (where ({{ merged }}) and has_review))::numeric
        / count(*) filter (where {{ merged }}) end as review_coverage{{ suffix }},
    case when {{ enough }} then (count(*) filter (where ({{ shipped }}) and fails_change))::numeric
        / nullif(count(*) filter (where {{ shipped }}), 0) end as change_failure_rate{{ suffix }},
    case when {{ enough }} then (count(*) filter (where ({{ merged }}) and is_rework))::numeric
        / count(*) filter (where {{ merged }}) end as rework_rate{{ suffix }}
{%- endmacro %}

{#- The items of one row of int_ai_cohort_scope_weeks (`pieces`, for a lateral subquery): a
    row per pull request merged in its week (is_merged, with its merge-time values) and a row
    per one shipped in it (is_shipped, lead_time_hours, fails_change), the columns that
    ai_cohort_figures reads. -#}
{% macro ai_cohort_piece_items(pieces) -%}
    select
        merged.*,
        true as is_merged,
        false as is_shipped,
        null as lead_time_hours,
        null as fails_change
    from unnest(
        {{ pieces }}.coding_hours_list, {{ pieces }}.pickup_hours_list, {{ pieces }}.review_hours_list,
        {{ pieces }}.deploy_hours_list, {{ pieces }}.pr_size_list, {{ pieces }}.has_review_list, {{ pieces }}.is_rework_list
    ) as merged (coding_hours, pickup_hours, review_hours, deploy_hours, pr_size, has_review, is_rework)
    union all
    select null, null, null, null, null, null, null, false, true, shipped.lead_time_hours, shipped.fails_change
    from unnest({{ pieces }}.lead_time_hours_list, {{ pieces }}.fails_change_list) as shipped (lead_time_hours, fails_change)
{%- endmacro %}

{#- Before an incremental fct_ai_cohorts_weekly run (fct_dora_weekly and int_ai_cohort_scope_weeks
    are built): drop the weeks it recomputes, then every week of a scope whose stored rows no
    longer fit, and the run rewrites those scopes whole:
    - the scope's weeks before the recomputed ones are not exactly fct_dora_weekly's (a scope
      gone, new, or whose first week moved);
    - int_ai_cohort_scope_weeks rewrote the scope's earlier weeks in this dbt invocation (its
      repositories or their rules changed);
    - a stored row's is_too_small disagrees with `ai_cohort_min_prs` (the var changed). -#}
{% macro ai_cohorts_weekly_prune() -%}
    delete from {{ this }} where week_start >= {{ dora_recompute_from(this) }};
    delete from {{ this }} as stale
    using (
        {{ scopes_out_of_step_with_dora_weekly() }}
        union
        select scope_type, scope
        from {{ ref('int_ai_cohort_scope_weeks') }}
        where _invocation_id = '{{ invocation_id }}'
            and week_start < (select coalesce(max(week_start) + 7, '-infinity'::date) from {{ this }})
        union
        select scope_type, scope
        from {{ this }}
        where is_too_small is distinct from (merged_prs < {{ var('ai_cohort_min_prs') }})
            or is_too_small_12w is distinct from (merged_prs_12w < {{ var('ai_cohort_min_prs') }})
    ) as changed
    where stale.scope_type = changed.scope_type and stale.scope = changed.scope
{%- endmacro %}

{#- Before an incremental fct_ai_adoption run: drop the scopes no longer in fct_dora_weekly. -#}
{% macro ai_adoption_prune() -%}
    delete from {{ this }} as stored
    where not exists (
        select 1 from {{ ref('fct_dora_weekly') }} as weekly
        where weekly.scope_type = stored.scope_type and weekly.scope = stored.scope
    )
{%- endmacro %}
