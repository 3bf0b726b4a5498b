with source as (
    select * from {{ source('github', 'issues') }}
),

renamed as (
    select
        id as issue_id,
        repo_full_name,
        raw.try_integer(data ->> 'number') as number,
        data ->> 'title' as title,
        data ->> 'state' as state,
        raw.try_timestamptz(data ->> 'createdAt') as created_at,
        raw.try_timestamptz(data ->> 'closedAt') as closed_at,
        array(
            select label ->> 'name'
            from jsonb_array_elements(case when jsonb_typeof(data -> 'labels') = 'array' then data -> 'labels' else '[]'::jsonb end) as label
        ) as labels,
        -- the pull request that closed it (the closer of its latest ClosedEvent), if any
        case when data -> 'closedBy' ->> '__typename' = 'PullRequest'
            then data -> 'closedBy' ->> 'id' end as closed_by_pull_request_id,
        ingested_at
    from source
)

select * from renamed
