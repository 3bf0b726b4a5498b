with source as (
    select * from {{ source('github', 'pull_request_commits') }}
),

renamed as (
    select
        pull_request_id,
        repo_full_name,
        pull_request_number,
        sha,
        (data ->> 'authoredDate')::timestamptz as authored_at,
        ingested_at
    from source
)

select * from renamed
