with source as (
    select * from {{ source('github', 'releases') }}
),

renamed as (
    select
        id as release_id,
        repo_full_name,
        data ->> 'name' as name,
        data ->> 'tagName' as tag_name,
        coalesce((data ->> 'isDraft')::boolean, false) as is_draft,
        coalesce((data ->> 'isPrerelease')::boolean, false) as is_prerelease,
        (data ->> 'createdAt')::timestamptz as created_at,
        (data ->> 'publishedAt')::timestamptz as published_at,
        ingested_at
    from source
)

select * from renamed
