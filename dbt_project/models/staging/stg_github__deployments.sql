with source as (
    select * from {{ source('github', 'deployments') }}
),

-- Statuses in time order, INACTIVE ones ignored (GitHub marks superseded deployments so).
statuses as (
    select
        source.id as deployment_id,
        status.value ->> 'state' as state,
        (status.value ->> 'createdAt')::timestamptz as created_at,
        status.position
    from source
    cross join lateral jsonb_array_elements(coalesce(source.data -> 'statuses', '[]'::jsonb))
        with ordinality as status (value, position)
    where status.value ->> 'state' <> 'INACTIVE'
),

outcome as (
    select
        deployment_id,
        min(created_at) filter (where state = 'SUCCESS') as first_success_at,
        (array_agg(state order by created_at, position))[count(*)] as last_state,
        max(created_at) as last_status_at
    from statuses
    group by deployment_id
),

renamed as (
    select
        source.id as deployment_id,
        source.repo_full_name,
        source.data ->> 'environment' as environment,
        (source.data ->> 'createdAt')::timestamptz as created_at,
        source.data ->> 'commitOid' as commit_oid,
        coalesce(outcome.last_state in ('FAILURE', 'ERROR'), false) as is_failed,
        case
            when outcome.first_success_at is not null then outcome.first_success_at
            when outcome.last_state in ('FAILURE', 'ERROR') then outcome.last_status_at
        end as deployed_at,
        source.ingested_at
    from source
    left join outcome on outcome.deployment_id = source.id
)

select * from renamed
