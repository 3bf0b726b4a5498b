with source as (
    select * from {{ source('github', 'deployments') }}
),

renamed as (
    select
        source.id as deployment_id,
        source.repo_full_name,
        source.data ->> 'environment' as environment,
        raw.try_timestamptz(source.data ->> 'createdAt') as created_at,
        source.data ->> 'commitOid' as commit_oid,
        coalesce(outcome.last_state in ('FAILURE', 'ERROR'), false) as is_failed,
        case
            when outcome.first_success_at is not null then outcome.first_success_at
            when outcome.last_state in ('FAILURE', 'ERROR') then outcome.last_status_at
        end as deployed_at,
        source.ingested_at
    from source
    -- Per deployment from its own statuses (so that a filter on the raw rows reads only
    -- those): in time order, INACTIVE ones ignored (GitHub marks superseded deployments so).
    left join lateral (
        select
            min(statuses.created_at) filter (where statuses.state = 'SUCCESS') as first_success_at,
            (array_agg(statuses.state order by statuses.created_at, statuses.position))[count(*)] as last_state,
            max(statuses.created_at) as last_status_at
        from (
            select
                status.value ->> 'state' as state,
                raw.try_timestamptz(status.value ->> 'createdAt') as created_at,
                status.position
            from jsonb_array_elements(case when jsonb_typeof(source.data -> 'statuses') = 'array' then source.data -> 'statuses' else '[]'::jsonb end)
                with ordinality as status (value, position)
            where status.value ->> 'state' <> 'INACTIVE'
        ) as statuses
    ) as outcome on true
)

select * from renamed
