with source as (
    select * from {{ source('github', 'pull_request_commits') }}
),

renamed as (
    select
        pull_request_id,
        repo_full_name,
        pull_request_number,
        sha,
        raw.try_timestamptz(data ->> 'authoredDate') as authored_at,
        coalesce(data ->> 'message', '') as message,
        ingested_at
    from source
)

select * from renamed
