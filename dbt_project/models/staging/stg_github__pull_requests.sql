with source as (
    select * from {{ source('github', 'pull_requests') }}
),

renamed as (
    select
        id as pull_request_id,
        repo_full_name,
        number,
        data ->> 'title' as title,
        data ->> 'body' as body,
        data ->> 'state' as state,
        coalesce(raw.try_boolean(data ->> 'isDraft'), false) as is_draft,
        raw.try_timestamptz(data ->> 'createdAt') as created_at,
        raw.try_timestamptz(data ->> 'closedAt') as closed_at,
        raw.try_timestamptz(data ->> 'mergedAt') as merged_at,
        raw.try_timestamptz(data -> 'readyForReview' ->> 'createdAt') as ready_for_review_at,
        coalesce(raw.try_integer(data ->> 'additions'), 0) as additions,
        coalesce(raw.try_integer(data ->> 'deletions'), 0) as deletions,
        data ->> 'baseRefName' as base_ref_name,
        data ->> 'headRefName' as head_ref_name,
        -- the labels on it now as GitHub's objects ([{"name": ...}]; ingestion replays the
        -- labeled/unlabeled timeline events). Left as jsonb, read only where a rule needs
        -- them: unpacking them here cost every pull request a subquery (20 s at 1,000,000).
        case when jsonb_typeof(data -> 'labels') = 'array' then data -> 'labels' else '[]'::jsonb end as labels,
        -- a null author is GitHub's deleted user
        coalesce({{ actor_login("data -> 'author'") }}, 'ghost') as author_login,
        {{ is_bot("data -> 'author'") }} as is_bot,
        coalesce((data ->> 'title') like 'Revert%', false)
            or coalesce((data ->> 'body') ~ 'This reverts commit [0-9A-Fa-f]{7}', false) as is_revert,
        substring(data ->> 'body' from 'This reverts commit ([0-9A-Fa-f]{7,40})') as reverted_sha,
        substring(data ->> 'title' from '^Revert "(.*)"') as reverted_title,
        updated_at,
        ingested_at
    from source
)

select * from renamed
