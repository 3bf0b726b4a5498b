with source as (
    select * from {{ source('github', 'workflow_runs') }}
),

-- REST object: snake_case fields.
renamed as (
    select
        id as workflow_run_id,
        repo_full_name,
        data ->> 'name' as workflow_name,
        data ->> 'head_branch' as head_branch,
        data ->> 'head_sha' as head_sha,
        data ->> 'status' as status,
        data ->> 'conclusion' as conclusion,
        raw.try_timestamptz(data ->> 'created_at') as created_at,
        -- the completion time of a completed run
        raw.try_timestamptz(data ->> 'updated_at') as completed_at,
        ingested_at
    from source
)

select * from renamed
