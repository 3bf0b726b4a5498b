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
-- One branch per source so that Postgres computes only the candidates of the repositories
-- that use it (a join on the source column would compute every source for every repository).
-- Incremental runs add the candidates ingested since the last run, and every candidate of a
-- repository with no rows stored (new, or its rules changed: the pre-hook dropped its rows,
-- and those of raw rows ingested again, which are re-added if they still qualify).

{% if is_incremental() %}
with last_run as (
    select coalesce(max(_source_high_water), '-infinity'::timestamptz) as high_water from {{ this }}
),

unprocessed as (
    select sources.repo_full_name
    from {{ ref('int_repository_deployment_sources') }} as sources
    where sources.deployment_source is not null
        and not exists (select 1 from {{ this }} as stored where stored.repo_full_name = sources.repo_full_name)
)
{% endif %}

{% set parts = ['new', 'unprocessed'] if is_incremental() else ['all'] %}
{% for source in ['github_deployments', 'workflow_runs', 'releases', 'merges'] %}
{% set last_source = loop.last %}
{% for part in parts %}
select
    candidates.deployment_id,
    candidates.repo_full_name,
    candidates.source,
    candidates.environment,
    candidates.deployed_at,
    candidates.is_failed,
    candidates._ingested_at,
    sources.deployment_rules_hash as _deployment_rules_hash,
    {{ raw_high_water() }} as _source_high_water
{% if part == 'unprocessed' %}
-- per repository, so that nothing is computed when no repository is unprocessed
from unprocessed
inner join {{ ref('int_repository_deployment_sources') }} as sources
    on sources.repo_full_name = unprocessed.repo_full_name
cross join lateral (
    select *
    from {{ ref('int_deployment_candidates') }} as candidates
    where candidates.repo_full_name = unprocessed.repo_full_name
        and candidates.source = '{{ source }}'
        and not candidates._ingested_at > (select high_water from last_run)
    offset 0
) as candidates
where sources.deployment_source = '{{ source }}'
{% else %}
from {{ ref('int_deployment_candidates') }} as candidates
inner join {{ ref('int_repository_deployment_sources') }} as sources
    on sources.repo_full_name = candidates.repo_full_name
where candidates.source = '{{ source }}'
    and candidates.repo_full_name in (
        select repo_full_name from {{ ref('int_repository_deployment_sources') }}
        where deployment_source = '{{ source }}'
    )
    {% if part == 'new' %}
    and candidates._ingested_at > (select high_water from last_run)
    {% endif %}
{% endif %}
{% if not (loop.last and last_source) %}union all{% endif %}
{% endfor %}
{% endfor %}
