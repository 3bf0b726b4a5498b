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
        coalesce((data ->> 'isArchived')::boolean, false) as is_archived,
        coalesce((data ->> 'isFork')::boolean, false) as is_fork,
        (data ->> 'createdAt')::timestamptz as created_at,
        ingested_at
    from source
)

select * from renamed
