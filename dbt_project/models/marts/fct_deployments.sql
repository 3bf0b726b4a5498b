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

hashed as (
    -- fct_dora_weekly sums these per week to see which weeks changed
    select computed.*, {{ dora_deployment_hash() }} as _fingerprint
    from computed
)

select computed.*
from hashed as computed
{% if is_incremental() %}
left join {{ this }} as processed on processed.deployment_id = computed.deployment_id
where processed.deployment_id is null
    or (processed.repo_full_name, processed.source, processed.environment, processed.deployed_at,
        processed.is_failed, processed.incident_count)
    is distinct from
        (computed.repo_full_name, computed.source, computed.environment, computed.deployed_at,
         computed.is_failed, computed.incident_count)
{% endif %}
