{#- Helpers of int_dora_scope_weeks and fct_dora_weekly. -#}

{#- The warehouse's last event: the newest pull request created, merged or closed (by the
    fct_pull_requests index on the greatest of the three), deployment or incident. -#}
{% macro dora_last_event_at() -%}
    greatest(
        (select max(greatest(created_at, merged_at, closed_at)) from {{ ref('fct_pull_requests') }}),
        (select max(deployed_at) from {{ ref('fct_deployments') }}),
        (select max(started_at) from {{ ref('fct_incidents') }})
    )
{%- endmacro %}

{#- The first week an incremental run of `relation` rewrites: `recompute_weeks` weeks up to
    the warehouse's last week, or the week after the newest stored one when that is earlier
    (no refresh for longer than the window). After the pre-hook deleted the weeks from it,
    the model evaluates the same week (or, on the sparse int_dora_scope_weeks, maybe an
    earlier one, whose rows delete+insert replaces). -#}
{% macro dora_recompute_from(relation) -%}
    least(
        {{ week_start(dora_last_event_at()) }} - 7 * ({{ var('recompute_weeks') }} - 1),
        (select max(week_start) + 7 from {{ relation }})
    )
{%- endmacro %}

{#- (scope_type, scope, repo_full_name, first_event_at): each repository with a pull request
    or a deployment is its own scope and belongs to the scope of each user it is granted to.
    first_event_at is the repository's first pull request or deployment (two index lookups). -#}
{% macro dora_scope_repositories() -%}
    with active_repositories as (
        select repo_full_name, first_event_at
        from (
            select
                repositories.repo_full_name,
                least(
                    (select min(pull_requests.created_at) from {{ ref('fct_pull_requests') }} as pull_requests
                     where pull_requests.repo_full_name = repositories.repo_full_name),
                    (select min(deployments.deployed_at) from {{ ref('fct_deployments') }} as deployments
                     where deployments.repo_full_name = repositories.repo_full_name)
                ) as first_event_at
            from {{ ref('stg_github__repositories') }} as repositories
        ) as repositories
        where first_event_at is not null
    )
    select 'repository' as scope_type, repo_full_name as scope, repo_full_name, first_event_at
    from active_repositories
    union all
    select 'user' as scope_type, members.login as scope, members.repo_full_name, active_repositories.first_event_at
    from {{ ref('stg_app__user_repositories') }} as members
    inner join active_repositories on active_repositories.repo_full_name = members.repo_full_name
{%- endmacro %}

{#- (scope_type, scope, inputs_hash): what decides a scope's items besides the events, its
    repositories and their deployment and incident rules. A change recomputes every week of
    the scope. -#}
{% macro dora_scope_inputs() -%}
    select
        scope_repositories.scope_type,
        scope_repositories.scope,
        md5(string_agg(
            concat_ws(':', scope_repositories.repo_full_name, sources.deployment_rules_hash, sources.incident_label_regex),
            '|' order by scope_repositories.repo_full_name
        )) as inputs_hash
    from ({{ dora_scope_repositories() }}) as scope_repositories
    left join {{ ref('int_repository_deployment_sources') }} as sources
        on sources.repo_full_name = scope_repositories.repo_full_name
    group by scope_repositories.scope_type, scope_repositories.scope
{%- endmacro %}

{#- (scope_type, scope, first_week): the weekly rows of a scope start with the week of the
    first pull request or deployment of its repositories. -#}
{% macro dora_scopes() -%}
    select scope_type, scope, {{ week_start('min(first_event_at)') }} as first_week
    from ({{ dora_scope_repositories() }}) as scope_repositories
    group by scope_type, scope
{%- endmacro %}

{#- Before an incremental int_dora_scope_weeks run: drop the weeks it recomputes, and every
    week of a scope that is gone or whose inputs changed (the run recomputes scopes with no
    rows whole). -#}
{% macro dora_scope_weeks_prune() -%}
    delete from {{ this }} where week_start >= {{ dora_recompute_from(this) }};
    delete from {{ this }} as stored
    where not exists (
        select 1
        from ({{ dora_scope_inputs() }}) as current_scopes
        where current_scopes.scope_type = stored.scope_type
            and current_scopes.scope = stored.scope
            and current_scopes.inputs_hash = stored._inputs_hash
    )
{%- endmacro %}

{#- Before an incremental fct_dora_weekly run: drop the weeks it recomputes, and every week of
    a scope that is gone, whose first week moved, whose stored weeks no longer match
    int_dora_scope_weeks, or whose benchmark changed (the run rewrites scopes with no rows
    whole). -#}
{% macro dora_weekly_prune() -%}
    {%- set counts = ['deployments', 'deployment_days', 'failed_changes', 'incidents', 'merged_prs',
                      'rework_deployments', 'recovered_deployments'] -%}
    {%- set medians = ['median_lead_time_hours', 'median_time_to_restore_hours', 'median_recovery_hours',
                       'median_pr_size', 'p90_pr_size',
                       'median_coding_hours', 'median_pickup_hours', 'median_review_hours', 'median_deploy_hours'] -%}
    delete from {{ this }} where week_start >= {{ dora_recompute_from(this) }};
    delete from {{ this }} as stale
    using (
        select stored.scope_type, stored.scope
        from (
            select scope_type, scope, min(week_start) as first_week
            from {{ this }}
            group by scope_type, scope
        ) as stored
        left join ({{ dora_scopes() }}) as current_scopes
            on current_scopes.scope_type = stored.scope_type and current_scopes.scope = stored.scope
        where current_scopes.first_week is distinct from stored.first_week
        union
        select stored.scope_type, stored.scope
        from {{ this }} as stored
        left join {{ ref('int_dora_scope_weeks') }} as weekly
            on weekly.scope_type = stored.scope_type
            and weekly.scope = stored.scope
            and weekly.week_start = stored.week_start
        where (
            {%- for column in counts %} stored.{{ column }},{% endfor %}
            {%- for column in medians %} stored.{{ column }},{% endfor %}
            stored.review_coverage
        ) is distinct from (
            {%- for column in counts %} coalesce(weekly.{{ column }}, 0),{% endfor %}
            {%- for column in medians %} weekly.{{ column }},{% endfor %}
            case when weekly.merged_prs > 0 then trim_scale(weekly.reviewed_prs::numeric / weekly.merged_prs) end
        )
        union
        -- the benchmark segment changed (`ghmetrics benchmark set`)
        select stored.scope_type, stored.scope
        from {{ this }} as stored
        cross join ({{ dora_benchmark_means() }}) as benchmark
        where (stored.overall_vs_benchmark, stored.throughput_vs_benchmark, stored.stability_vs_benchmark)
            is distinct from (trim_scale(stored.overall_score - benchmark.overall),
                              trim_scale(stored.throughput_score - benchmark.throughput),
                              trim_scale(stored.stability_score - benchmark.stability))
    ) as changed
    where stale.scope_type = changed.scope_type and stale.scope = changed.scope
{%- endmacro %}

{#- Per scope of `scope_type` whose name is `scope`: its first and last week, each by the
    (scope_type, scope, week_start) index of fct_dora_weekly. -#}
{% macro dora_scope_bounds(scope_type, scope) -%}
    (select min(week_start) from {{ ref('fct_dora_weekly') }} as weekly
     where weekly.scope_type = '{{ scope_type }}' and weekly.scope = {{ scope }}) as first_week,
    (select max(week_start) from {{ ref('fct_dora_weekly') }} as weekly
     where weekly.scope_type = '{{ scope_type }}' and weekly.scope = {{ scope }}) as last_week
{%- endmacro %}

{#- One row (overall, throughput, stability): the chosen benchmark's means on the score scale. -#}
{% macro dora_benchmark_means() -%}
    select
        max(mean_score) filter (where metric = 'overall') as overall,
        max(mean_score) filter (where metric = 'throughput') as throughput,
        max(mean_score) filter (where metric = 'stability') as stability
    from {{ ref('dora_benchmarks') }}
{%- endmacro %}

{#- The CTEs an incremental per-scope-week model starts from (int_dora_scope_weeks,
    int_ai_cohort_scope_weeks): scope_repositories, scope_inputs, scopes (each scope with its
    inputs_hash and read_from, the first week it recomputes: -infinity for every week), members
    (each scope's repositories with its read_from) and read_window (the first week any scope
    recomputes, as a date and as a UTC timestamp). Call as `with {{ scope_weeks_members() }}, ...`. -#}
{% macro scope_weeks_members() -%}
scope_repositories as (
    {{ dora_scope_repositories() }}
),

scope_inputs as (
    {{ dora_scope_inputs() }}
),

{% if is_incremental() %}
stored_scopes as (
    select distinct scope_type, scope from {{ this }}
),
{% endif %}

-- The first week each scope recomputes (-infinity: every week).
scopes as (
    select
        scope_inputs.scope_type,
        scope_inputs.scope,
        scope_inputs.inputs_hash,
        {% if is_incremental() -%}
        case when stored_scopes.scope is not null
            then {{ dora_recompute_from(this) }} else '-infinity'::date end as read_from
        {%- else -%}
        '-infinity'::date as read_from
        {%- endif %}
    from scope_inputs
    {% if is_incremental() -%}
    left join stored_scopes
        on stored_scopes.scope_type = scope_inputs.scope_type and stored_scopes.scope = scope_inputs.scope
    {%- endif %}
),

members as (
    select scope_repositories.scope_type, scope_repositories.scope, scope_repositories.repo_full_name, scopes.read_from
    from scope_repositories
    inner join scopes
        on scopes.scope_type = scope_repositories.scope_type and scopes.scope = scope_repositories.scope
),

-- The first week any scope recomputes, as a date and as a UTC timestamp.
read_window as (
    select min(read_from) as read_from, min(read_from)::timestamp at time zone 'UTC' as read_from_at
    from members
)
{%- endmacro %}

{#- For the pre-hooks of the incremental marts with a row per fct_dora_weekly week (and more):
    (scope_type, scope) of each scope whose stored weeks before the ones a run rewrites are not
    exactly fct_dora_weekly's (a scope gone, new, or whose first week moved). A week stored
    twice (once per cohort) is found twice; the callers' union keeps each scope once. -#}
{% macro scopes_out_of_step_with_dora_weekly() -%}
    select coalesce(stored.scope_type, weekly.scope_type) as scope_type,
           coalesce(stored.scope, weekly.scope) as scope
    from (select scope_type, scope, week_start from {{ this }}) as stored
    full join (
        select scope_type, scope, week_start
        from {{ ref('fct_dora_weekly') }}
        where week_start < (select coalesce(max(week_start) + 7, '-infinity'::date) from {{ this }})
    ) as weekly
        on weekly.scope_type = stored.scope_type
        and weekly.scope = stored.scope
        and weekly.week_start = stored.week_start
    where stored.week_start is null or weekly.week_start is null
{%- endmacro %}
