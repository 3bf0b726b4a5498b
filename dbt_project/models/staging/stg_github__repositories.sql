with source as (
    select * from {{ source('github', 'repositories') }}
),

renamed as (
    select
        repo_full_name,
        id as repository_id,
        data ->> 'name' as name,
        data -> 'owner' ->> 'login' as owner_login,
        -- null for an empty repository
        data -> 'defaultBranchRef' ->> 'name' as default_branch,
        coalesce(raw.try_boolean(data ->> 'isArchived'), false) as is_archived,
        coalesce(raw.try_boolean(data ->> 'isFork'), false) as is_fork,
        raw.try_timestamptz(data ->> 'createdAt') as created_at,
        ingested_at
    from source
)

select * from renamed
