{#- Before an incremental int_deployments run: drop the rows whose raw object was ingested
    again after the newest row (the run re-adds those that still qualify), then every row of
    a repository whose deployment rules changed or that has no source any more (the run
    recomputes those repositories whole). In this order, so that the first delete sees the
    high-water mark the run compiled with. -#}
{% macro int_deployments_prune() -%}
    {%- set raw_tables = {
        'github_deployments': 'deployments',
        'workflow_runs': 'workflow_runs',
        'releases': 'releases',
        'merges': 'pull_requests',
    } -%}
    delete from {{ this }} as stored
    where
    {%- for kind, table in raw_tables.items() %}
        (stored.source = '{{ kind }}' and stored.deployment_id in (
            select id from {{ source('github', table) }}
            where ingested_at > (select max(_ingested_at) from {{ this }})
        )){% if not loop.last %} or{% endif %}
    {%- endfor %};
    delete from {{ this }} as stored
    where not exists (
        select 1
        from {{ ref('int_repository_deployment_sources') }} as sources
        where sources.repo_full_name = stored.repo_full_name
            and sources.deployment_source = stored.source
            and sources.deployment_rules_hash = stored._deployment_rules_hash
    )
{%- endmacro %}
