with source as (
    select * from {{ source('github', 'releases') }}
),

renamed as (
    select
        id as release_id,
        repo_full_name,
        data ->> 'name' as name,
        data ->> 'tagName' as tag_name,
        coalesce(raw.try_boolean(data ->> 'isDraft'), false) as is_draft,
        coalesce(raw.try_boolean(data ->> 'isPrerelease'), false) as is_prerelease,
        raw.try_timestamptz(data ->> 'createdAt') as created_at,
        raw.try_timestamptz(data ->> 'publishedAt') as published_at,
        ingested_at
    from source
)

select * from renamed
