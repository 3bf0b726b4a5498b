{{ config(
    materialized='incremental',
    unique_key='deployment_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[
        {'columns': ['deployment_id'], 'unique': True},
        {'columns': ['repo_full_name', 'deployed_at']},
    ],
    pre_hook=["{% if is_incremental() %}{{ int_deployments_prune() }}{% endif %}"],
) }}

-- The production deployments of every repository under the source in effect. A table with
-- an index because every merged pull request looks up its shipping deployment here.
-- Incremental runs add the candidates ingested after the newest stored row, and every
-- candidate of a repository without rows under its current rules (new, or its rules changed:
-- the pre-hook drops its old rows).

{#- One branch per source in use (asked before the run): Postgres cannot tell that no
    repository uses a source and would compute every candidate of it (all merged pull
    requests for `merges`: 100 s of a full refresh at 1,000,000 pull requests). Each branch
    keeps the repositories that use its source. -#}
{%- set sources_in_use = [] -%}
{%- if execute -%}
    {%- set in_use = run_query(
        "select distinct deployment_source from " ~ ref('int_repository_deployment_sources')
        ~ " where deployment_source is not null order by 1"
    ) -%}
    {%- set sources_in_use = in_use.columns[0].values() | list -%}
{%- endif -%}
{#- Incremental: the newest row's raw ingested_at, and the repositories to recompute whole (no
    rows, or rows under other rules: the pre-hook drops those), asked before the pre-hook
    runs. As constants, Postgres filters the raw rows by them before parsing any JSON. -#}
{%- set high_water, recompute = none, [] -%}
{%- if execute and is_incremental() -%}
    {%- set high_water = run_query(
        "select coalesce(max(_ingested_at), '-infinity')::text from " ~ this
    ).columns[0].values()[0] -%}
    {%- set recompute = run_query(
        "select sources.repo_full_name from " ~ ref('int_repository_deployment_sources') ~ " as sources"
        ~ " where sources.deployment_source is not null and not exists (select 1 from " ~ this ~ " as stored"
        ~ " where stored.repo_full_name = sources.repo_full_name and stored.source = sources.deployment_source"
        ~ " and stored._deployment_rules_hash = sources.deployment_rules_hash)"
    ).columns[0].values() | list -%}
{%- endif -%}
{%- for source in sources_in_use or ['github_deployments'] %}
select
    candidates.deployment_id,
    candidates.repo_full_name,
    candidates.source,
    candidates.environment,
    candidates.deployed_at,
    candidates.is_failed,
    candidates._ingested_at,
    sources.deployment_rules_hash as _deployment_rules_hash
from {{ ref('int_deployment_candidates') }} as candidates
inner join {{ ref('int_repository_deployment_sources') }} as sources
    on sources.repo_full_name = candidates.repo_full_name
where candidates.source = '{{ source }}'
    and candidates.repo_full_name in (
        select repo_full_name from {{ ref('int_repository_deployment_sources') }}
        where deployment_source = '{{ source }}'
    )
    {%- if is_incremental() %}
    and (
        candidates._ingested_at > {{ dbt.string_literal(high_water) }}::timestamptz
        {%- if recompute %}
        or candidates.repo_full_name in ({% for repo in recompute %}{{ dbt.string_literal(repo) }}{{ ', ' if not loop.last }}{% endfor %})
        {%- endif %}
    )
    {%- endif %}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
