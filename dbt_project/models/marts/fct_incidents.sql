-- Incidents attributed to at most one deployment, the strongest evidence winning
-- (docs/dora.md): the shipping deployment of the change a revert undoes (`revert`), else the
-- latest successful deployment of the repository at or before the start and within the
-- attribution window (`closing_reference` when a merged pull request closed the incident,
-- `window` otherwise).
with incidents as (
    select * from {{ ref('int_incidents') }}
),

-- The pull request whose change the incident undoes: a revert incident's reverted pull
-- request, or the one the closing pull request reverts when that is a resolved revert.
reverted_changes as (
    select
        incidents.incident_id,
        coalesce(incidents.reverted_pull_request_id, closing_reverts.reverted_pull_request_id) as reverted_pull_request_id
    from incidents
    left join {{ ref('int_incidents') }} as closing_reverts
        on closing_reverts.kind = 'revert' and closing_reverts.incident_id = incidents.closing_pull_request_id
),

by_revert as (
    select reverted_changes.incident_id, pull_requests.shipping_deployment_id as deployment_id
    from reverted_changes
    inner join {{ ref('fct_pull_requests') }} as pull_requests
        on pull_requests.pull_request_id = reverted_changes.reverted_pull_request_id
    where pull_requests.shipping_deployment_id is not null
),

attributed as (
    select
        incidents.*,
        case
            when by_revert.deployment_id is not null then by_revert.deployment_id
            -- a revert whose change never shipped failed no deployment
            when incidents.kind = 'revert' then null
            else by_window.deployment_id
        end as deployment_id,
        case
            when by_revert.deployment_id is not null then 'revert'
            when incidents.kind = 'revert' or by_window.deployment_id is null then null
            when incidents.closing_pull_request_id is not null then 'closing_reference'
            else 'window'
        end as attribution_evidence
    from incidents
    left join by_revert on by_revert.incident_id = incidents.incident_id
    left join lateral (
        select deployments.deployment_id
        from {{ ref('int_deployments') }} as deployments
        where deployments.repo_full_name = incidents.repo_full_name
            and not deployments.is_failed
            and deployments.deployed_at <= incidents.started_at
            and deployments.deployed_at > incidents.started_at - interval '{{ var("attribution_window_days") }} days'
        order by deployments.deployed_at desc, deployments.deployment_id desc
        limit 1
    ) as by_window on true
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
        attribution_evidence,
        reverted_pull_request_id,
        closing_pull_request_id
    from attributed
)

select * from incidents_with_restore
