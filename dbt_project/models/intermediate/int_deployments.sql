{{ config(
    materialized='table',
    indexes=[
        {'columns': ['deployment_id'], 'unique': True},
        {'columns': ['repo_full_name', 'deployed_at']},
    ],
) }}

-- The production deployments of every repository under the source in effect. A table with
-- an index because every merged pull request looks up its shipping deployment here.
-- One branch per source so that Postgres computes only the candidates of the repositories
-- that use it (a join on the source column would compute every source for every repository).
{% for source in ['github_deployments', 'workflow_runs', 'releases', 'merges'] %}
select
    candidates.deployment_id,
    candidates.repo_full_name,
    candidates.source,
    candidates.environment,
    candidates.deployed_at,
    candidates.is_failed,
    candidates._ingested_at
from {{ ref('int_deployment_candidates') }} as candidates
where candidates.source = '{{ source }}'
    and candidates.repo_full_name in (
        select repo_full_name from {{ ref('int_repository_deployment_sources') }}
        where deployment_source = '{{ source }}'
    )
{% if not loop.last %}union all{% endif %}
{% endfor %}
