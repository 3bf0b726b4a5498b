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
-- candidate of a repository with no rows (new, or the pre-hook dropped them because its
-- rules changed).

with sources as (
    select repo_full_name, deployment_source, deployment_rules_hash
    from {{ ref('int_repository_deployment_sources') }}
    where deployment_source is not null
),

{% if is_incremental() %}
high_water as (
    select coalesce(max(_ingested_at), '-infinity'::timestamptz) as ingested_at from {{ this }}
),

unprocessed as (
    select sources.repo_full_name
    from sources
    where not exists (select 1 from {{ this }} as stored where stored.repo_full_name = sources.repo_full_name)
),
{% endif %}

candidates as (
    {#- One branch per source, so that Postgres computes only the candidates of the
        repositories that use it (a join on the source column computes every source). -#}
    {%- for source in ['github_deployments', 'workflow_runs', 'releases', 'merges'] %}
    select candidates.*
    from {{ ref('int_deployment_candidates') }} as candidates
    where candidates.source = '{{ source }}'
        and candidates.repo_full_name in (
            select repo_full_name from sources where deployment_source = '{{ source }}'
        )
        {%- if is_incremental() %}
        and (
            candidates._ingested_at > (select ingested_at from high_water)
            or candidates.repo_full_name in (select repo_full_name from unprocessed)
        )
        {%- endif %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select
    candidates.deployment_id,
    candidates.repo_full_name,
    candidates.source,
    candidates.environment,
    candidates.deployed_at,
    candidates.is_failed,
    candidates._ingested_at,
    sources.deployment_rules_hash as _deployment_rules_hash
from candidates
inner join sources on sources.repo_full_name = candidates.repo_full_name
