{{ config(
    materialized='incremental',
    unique_key='deployment_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[
        {'columns': ['deployment_id'], 'unique': True},
        {'columns': ['repo_full_name', 'deployed_at']},
    ],
    post_hook=[
        "{% if is_incremental() %}delete from {{ this }} as processed where not exists (select 1 from {{ ref('int_deployments') }} as deployments where deployments.deployment_id = processed.deployment_id){% endif %}",
    ],
) }}

-- One row per production deployment under the repository's source in effect. Incremental
-- runs write the deployments that are new or changed, or whose attributed incidents changed;
-- the post-hook drops those no longer deployments (e.g. the source in effect changed).

with deployments as (
    select * from {{ ref('int_deployments') }}
),

incident_counts as (
    select deployment_id, count(*) as incident_count
    from {{ ref('fct_incidents') }}
    where deployment_id is not null
    group by deployment_id
),

computed as (
    select
        deployments.deployment_id,
        deployments.repo_full_name,
        deployments.source,
        deployments.environment,
        deployments.deployed_at,
        {{ week_start('deployments.deployed_at') }} as week_start,
        deployments.is_failed,
        coalesce(incident_counts.incident_count, 0) as incident_count,
        deployments.is_failed or coalesce(incident_counts.incident_count, 0) > 0 as fails_change
    from deployments
    left join incident_counts on incident_counts.deployment_id = deployments.deployment_id
),

final as (
    select * from computed
)

select final.*
from final
{% if is_incremental() %}
-- only the new and changed rows (a plain comparison with the stored contract columns)
left join {{ this }} as processed on processed.deployment_id = final.deployment_id
where processed.deployment_id is null
    or (processed.repo_full_name, processed.source, processed.environment, processed.deployed_at,
        processed.is_failed, processed.incident_count)
    is distinct from
        (final.repo_full_name, final.source, final.environment, final.deployed_at,
         final.is_failed, final.incident_count)
{% endif %}
