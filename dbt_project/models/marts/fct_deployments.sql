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

-- One row per production deployment under the repository's source in effect, with whether
-- it failed a change and why, when it recovered, and whether it was rework (docs/dora.md).
-- Incremental runs write the deployments that are new or changed, or whose attributed
-- incidents, recovery or rework changed; the post-hook drops those no longer deployments
-- (e.g. the source in effect changed).

with deployments as (
    select * from {{ ref('int_deployments') }}
),

incident_counts as (
    select
        deployment_id,
        count(*) as incident_count,
        bool_or(attribution_evidence = 'revert') as is_reverted
    from {{ ref('fct_incidents') }}
    where deployment_id is not null
    group by deployment_id
),

-- The pull requests that fix a failed deployment: the reverts of a change it shipped and the
-- closing pull requests of the issue incidents attributed to it.
identified_fixes as (
    select
        deployment_id,
        case when kind = 'revert' then incident_id else closing_pull_request_id end as fix_pull_request_id
    from {{ ref('fct_incidents') }}
    where deployment_id is not null
        and (kind = 'revert' or closing_pull_request_id is not null)
),

rework_shipped as (
    select distinct shipping_deployment_id as deployment_id
    from {{ ref('fct_pull_requests') }}
    where rework_reason is not null and shipping_deployment_id is not null
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
        deployments.is_failed or coalesce(incident_counts.incident_count, 0) > 0 as fails_change,
        case
            when deployments.is_failed then 'status'
            when incident_counts.is_reverted then 'revert'
            when incident_counts.incident_count > 0 then 'incident'
        end as failure_cause,
        rework_shipped.deployment_id is not null as is_rework
    from deployments
    left join incident_counts on incident_counts.deployment_id = deployments.deployment_id
    left join rework_shipped on rework_shipped.deployment_id = deployments.deployment_id
),

-- Recovery of a deployment that fails a change: the first later deployment shipping one of
-- its identified fixes, or without any, the repository's next successful deployment. Joins,
-- not a lookup per failed deployment: at 1,000,000 pull requests a correlated lookup into the
-- fixes took 30 s a wave.
fixed_deployments as (
    select distinct deployment_id from identified_fixes
),

first_fix_shipped as (
    select distinct on (identified_fixes.deployment_id)
        identified_fixes.deployment_id,
        shipping.deployment_id as recovery_deployment_id,
        shipping.deployed_at as recovered_at
    from identified_fixes
    inner join {{ ref('fct_pull_requests') }} as pull_requests
        on pull_requests.pull_request_id = identified_fixes.fix_pull_request_id
    inner join {{ ref('int_deployments') }} as shipping
        on shipping.deployment_id = pull_requests.shipping_deployment_id
    inner join deployments as failed on failed.deployment_id = identified_fixes.deployment_id
    where shipping.deployed_at > failed.deployed_at
    order by identified_fixes.deployment_id, shipping.deployed_at, shipping.deployment_id
),

recovered as (
    select
        computed.*,
        coalesce(first_fix_shipped.recovery_deployment_id, next_success.deployment_id) as recovery_deployment_id,
        coalesce(first_fix_shipped.recovered_at, next_success.deployed_at) as recovered_at,
        case
            when first_fix_shipped.deployment_id is not null then 'fix'
            when next_success.deployment_id is not null then 'next_success'
        end as recovery_evidence
    from computed
    left join fixed_deployments on fixed_deployments.deployment_id = computed.deployment_id
    left join first_fix_shipped on first_fix_shipped.deployment_id = computed.deployment_id
    -- by the (repository, deployed_at) index, for the failed deployments without a fix only
    left join lateral (
        select later.deployment_id, later.deployed_at
        from {{ ref('int_deployments') }} as later
        where computed.fails_change  -- a one-time filter: no lookup for the others
            and fixed_deployments.deployment_id is null
            and later.repo_full_name = computed.repo_full_name
            and not later.is_failed
            and later.deployed_at > computed.deployed_at
        order by later.deployed_at, later.deployment_id
        limit 1
    ) as next_success on true
),

final as (
    select
        deployment_id,
        repo_full_name,
        source,
        environment,
        deployed_at,
        week_start,
        is_failed,
        incident_count,
        fails_change,
        failure_cause,
        is_rework,
        recovered_at,
        {{ hours_between('deployed_at', 'recovered_at') }} as recovery_hours,
        recovery_deployment_id,
        recovery_evidence
    from recovered
)

select final.*
from final
{% if is_incremental() %}
-- only the new and changed rows (a plain comparison with the stored contract columns)
left join {{ this }} as processed on processed.deployment_id = final.deployment_id
where processed.deployment_id is null
    or (processed.repo_full_name, processed.source, processed.environment, processed.deployed_at,
        processed.is_failed, processed.incident_count, processed.failure_cause, processed.is_rework,
        processed.recovery_deployment_id, processed.recovered_at, processed.recovery_evidence)
    is distinct from
        (final.repo_full_name, final.source, final.environment, final.deployed_at,
         final.is_failed, final.incident_count, final.failure_cause, final.is_rework,
         final.recovery_deployment_id, final.recovered_at, final.recovery_evidence)
{% endif %}
