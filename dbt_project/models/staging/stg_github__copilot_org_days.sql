-- One row per organisation-day of the Copilot usage metrics organisation report
-- (docs/contracts.md, "Copilot usage metrics"). Absent counters are null, never an error.
with source as (
    select * from {{ source('github', 'copilot_org_days') }}
),

renamed as (
    select
        org,
        day,
        data ->> 'organization_id' as organization_id,
        raw.try_integer(data ->> 'daily_active_users') as daily_active_users,
        raw.try_integer(data ->> 'weekly_active_users') as weekly_active_users,
        raw.try_integer(data ->> 'monthly_active_users') as monthly_active_users,
        raw.try_integer(data ->> 'monthly_active_chat_users') as monthly_active_chat_users,
        raw.try_integer(data ->> 'monthly_active_agent_users') as monthly_active_agent_users,
        raw.try_integer(data ->> 'user_initiated_interaction_count') as user_initiated_interactions,
        raw.try_integer(data ->> 'code_generation_activity_count') as code_generation_activities,
        raw.try_integer(data ->> 'code_acceptance_activity_count') as code_acceptance_activities,
        raw.try_integer(data ->> 'loc_suggested_to_add_sum') as loc_suggested_to_add,
        raw.try_integer(data ->> 'loc_suggested_to_delete_sum') as loc_suggested_to_delete,
        raw.try_integer(data ->> 'loc_added_sum') as loc_added,
        raw.try_integer(data ->> 'loc_deleted_sum') as loc_deleted,
        raw.try_integer(data -> 'pull_requests' ->> 'total_created') as pull_requests_created,
        raw.try_integer(data -> 'pull_requests' ->> 'total_reviewed') as pull_requests_reviewed,
        raw.try_integer(data -> 'pull_requests' ->> 'total_merged') as pull_requests_merged,
        raw.try_numeric(data -> 'pull_requests' ->> 'median_minutes_to_merge') as median_minutes_to_merge,
        raw.try_integer(data -> 'pull_requests' ->> 'total_created_by_copilot') as pull_requests_created_by_copilot,
        raw.try_integer(data -> 'pull_requests' ->> 'total_reviewed_by_copilot') as pull_requests_reviewed_by_copilot,
        raw.try_integer(data -> 'pull_requests' ->> 'total_merged_created_by_copilot') as pull_requests_merged_created_by_copilot,
        raw.try_integer(data -> 'pull_requests' ->> 'total_copilot_suggestions') as copilot_review_suggestions,
        raw.try_integer(data -> 'pull_requests' ->> 'total_copilot_applied_suggestions') as copilot_review_suggestions_applied,
        case when jsonb_typeof(data -> 'totals_by_feature') = 'array' then data -> 'totals_by_feature' else '[]'::jsonb end
            as totals_by_feature,
        ingested_at
    from source
)

select * from renamed
