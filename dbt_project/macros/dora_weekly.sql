{#- Helpers of the incremental fct_dora_weekly. -#}

{#- What a week of a repository's deployments or incidents contributes, as one value (a
    change of any row of the week, or one more or fewer, changes it): the count and the sum
    of the rows' 64-bit hashes (their _fingerprint, computed when they are written), which
    needs no sort. -#}
{% macro dora_fingerprint() -%}
    count(*) || ':' || sum(_fingerprint)
{%- endmacro %}

{#- A deployment's hash, stored in fct_deployments._fingerprint when the row is written. -#}
{% macro dora_deployment_hash() -%}
    hashtextextended(concat_ws(',', deployment_id, extract(epoch from deployed_at), is_failed, fails_change), 0)
{%- endmacro %}

{#- An incident's hash, stored in fct_incidents._fingerprint. -#}
{% macro dora_incident_hash() -%}
    hashtextextended(concat_ws(',', incident_id, extract(epoch from started_at), restore_hours), 0)
{%- endmacro %}

{#- Per scope of `scope_type` whose name is `scope`: its first and last week, each by the
    (scope_type, scope, week_start) index of fct_dora_weekly (a grouped scan of every weekly
    row would cost the dimensions most of their time). -#}
{% macro dora_scope_bounds(scope_type, scope) -%}
    (select min(week_start) from {{ ref('fct_dora_weekly') }} as weekly
     where weekly.scope_type = '{{ scope_type }}' and weekly.scope = {{ scope }}) as first_week,
    (select max(week_start) from {{ ref('fct_dora_weekly') }} as weekly
     where weekly.scope_type = '{{ scope_type }}' and weekly.scope = {{ scope }}) as last_week
{%- endmacro %}

{#- The warehouse's last event: the newest pull request created, merged or closed (by the
    fct_pull_requests index on the greatest of the three), deployment or incident. -#}
{% macro dora_last_event_at() -%}
    greatest(
        (select max(greatest(created_at, merged_at, closed_at)) from {{ ref('fct_pull_requests') }}),
        (select max(deployed_at) from {{ ref('fct_deployments') }}),
        (select max(started_at) from {{ ref('fct_incidents') }})
    )
{%- endmacro %}

{#- Before an incremental run: drop the weeks after the warehouse's last week and the scopes
    with no pull request or deployment left (a removed user, a repository's last events gone). -#}
{% macro dora_weekly_prune() -%}
    delete from {{ this }}
    where week_start > {{ week_start(dora_last_event_at()) }};
    delete from {{ this }} as stale
    using (
        select stored.scope_type, stored.scope
        from (select distinct scope_type, scope from {{ this }}) as stored
        where not exists (
            select 1
            from (
                select stored.scope as repo_full_name where stored.scope_type = 'repository'
                union all
                select members.repo_full_name
                from {{ ref('stg_app__user_repositories') }} as members
                where stored.scope_type = 'user' and members.login = stored.scope
            ) as repositories
            where exists (
                select 1 from {{ ref('fct_pull_requests') }} as pull_requests
                where pull_requests.repo_full_name = repositories.repo_full_name
            ) or exists (
                select 1 from {{ ref('fct_deployments') }} as deployments
                where deployments.repo_full_name = repositories.repo_full_name
            )
        )
    ) as gone
    where stale.scope_type = gone.scope_type and stale.scope = gone.scope
{%- endmacro %}


{#- The per-week inputs of the 12-week windows besides the stored count columns, in the order
    fct_dora_weekly computes them: counts, and the median parts of median_parts(). Stored in
    this order as the row's _window_parts (a numeric array: a fraction of the size of a JSON
    object, which every scan of the table pays for), they let an incremental run window over
    weeks it does not recompute. -#}
{% macro dora_window_parts() -%}
    {%- set parts = {'reviewed_prs': 'bigint', 'lead_times': 'bigint', 'restores': 'bigint'} -%}
    {%- for prefix in ['lead_24', 'lead_168', 'lead_720', 'restore_1', 'restore_24', 'restore_168'] -%}
        {%- do parts.update({prefix ~ '_below': 'bigint', prefix ~ '_below_max': 'numeric', prefix ~ '_above_min': 'numeric'}) -%}
    {%- endfor -%}
    {{ return(parts) }}
{%- endmacro %}
