-- Incidents attributed to the latest successful deployment of their repository at or before
-- the start and within the attribution window (docs/contracts.md).
with incidents as (
    select * from {{ ref('int_incidents') }}
),

attributed as (
    select
        incidents.*,
        attribution.deployment_id
    from incidents
    left join lateral (
        select deployments.deployment_id
        from {{ ref('int_deployments') }} as deployments
        where deployments.repo_full_name = incidents.repo_full_name
            and not deployments.is_failed
            and deployments.deployed_at <= incidents.started_at
            and deployments.deployed_at > incidents.started_at - interval '{{ var("attribution_window_days") }} days'
        order by deployments.deployed_at desc, deployments.deployment_id desc
        limit 1
    ) as attribution on true
),

incidents_with_restore as (
    select
        incident_id,
        repo_full_name,
        kind,
        started_at,
        restored_at,
        {{ hours_between('started_at', 'restored_at') }} as restore_hours,
        {{ week_start('started_at') }} as week_start,
        deployment_id,
        reverted_pull_request_id
    from attributed
)

select * from incidents_with_restore
