with source as (
    select * from {{ source('github', 'pull_request_reviews') }}
),

renamed as (
    select
        id as review_id,
        pull_request_id,
        repo_full_name,
        data ->> 'state' as state,
        raw.try_timestamptz(data ->> 'submittedAt') as submitted_at,
        -- kept null for the deleted user: a review by nobody known counts as someone else's
        {{ actor_login("data -> 'author'") }} as author_login,
        updated_at,
        ingested_at
    from source
)

select * from renamed
