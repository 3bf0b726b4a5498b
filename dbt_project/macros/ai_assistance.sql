{#- AI assistance (docs/ai.md): rules from the ai_* dbt vars. -#}

{#- A dbt var's list of strings as a Postgres text[] literal. -#}
{% macro text_array(values) -%}
    array[{% for value in values %}'{{ value | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor %}]::text[]
{%- endmacro %}

{#- Lines of a commit message: `Co-authored-by: name <email>` (captures name, email) -#}
{% macro ai_coauthor_line_regex() -%}
    '^[ \t]*co-authored-by[ \t]*:[ \t]*([^<\n]*)<([^>\n]*)>'
{%- endmacro %}

{#- Lines `Key: value` for the ai_trailer_keys (captures the key as written, the value) -#}
{% macro ai_trailer_line_regex() -%}
    '^[ \t]*({{ var("ai_trailer_keys") | join("|") | replace("'", "''") }})[ \t]*:[ \t]*([^\n]*)'
{%- endmacro %}

{#- Items of the AI cohorts: merged pull requests by people (the items of fct_dora_weekly's
    pull-request figures) of each scope's repositories, with their cohort, week merged and
    week shipped, and whether their shipping deployment failed a change. -#}
{% macro ai_cohort_items() -%}
    select
        scope_repositories.scope_type,
        scope_repositories.scope,
        case when pull_requests.ai_assisted then 'ai_assisted' else 'other' end as cohort,
        {{ week_start('pull_requests.merged_at') }} as merged_week,
        {{ week_start('pull_requests.shipped_at') }} as shipped_week,
        pull_requests.coding_hours,
        pull_requests.pickup_hours,
        pull_requests.review_hours,
        pull_requests.deploy_hours,
        pull_requests.lead_time_hours,
        pull_requests.pr_size,
        pull_requests.first_review_at is not null as has_review,
        pull_requests.rework_reason is not null as is_rework,
        coalesce(deployments.fails_change, false) as fails_change
    from ({{ dora_scope_repositories() }}) as scope_repositories
    inner join {{ ref('fct_pull_requests') }} as pull_requests
        on pull_requests.repo_full_name = scope_repositories.repo_full_name
    left join {{ ref('fct_deployments') }} as deployments
        on deployments.deployment_id = pull_requests.shipping_deployment_id
    where pull_requests.merged_at is not null and not pull_requests.is_bot
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
