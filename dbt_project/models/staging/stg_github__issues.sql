with source as (
    select * from {{ source('github', 'issues') }}
),

renamed as (
    select
        id as issue_id,
        repo_full_name,
        (data ->> 'number')::integer as number,
        data ->> 'title' as title,
        data ->> 'state' as state,
        (data ->> 'createdAt')::timestamptz as created_at,
        (data ->> 'closedAt')::timestamptz as closed_at,
        array(
            select label ->> 'name'
            from jsonb_array_elements(coalesce(data -> 'labels', '[]'::jsonb)) as label
        ) as labels,
        ingested_at
    from source
)

select * from renamed
