-- One row per organisation, day and user active that day, from the Copilot usage metrics
-- users report (docs/contracts.md, "Copilot usage metrics").
with source as (
    select * from {{ source('github', 'copilot_user_days') }}
),

renamed as (
    select
        org,
        day,
        user_login,
        raw.try_integer(data ->> 'user_id') as user_id,
        raw.try_integer(data ->> 'user_initiated_interaction_count') as user_initiated_interactions,
        raw.try_integer(data ->> 'code_generation_activity_count') as code_generation_activities,
        raw.try_integer(data ->> 'code_acceptance_activity_count') as code_acceptance_activities,
        raw.try_integer(data ->> 'loc_suggested_to_add_sum') as loc_suggested_to_add,
        raw.try_integer(data ->> 'loc_suggested_to_delete_sum') as loc_suggested_to_delete,
        raw.try_integer(data ->> 'loc_added_sum') as loc_added,
        raw.try_integer(data ->> 'loc_deleted_sum') as loc_deleted,
        coalesce(raw.try_boolean(data ->> 'used_chat'), false) as used_chat,
        coalesce(raw.try_boolean(data ->> 'used_agent'), false) as used_agent,
        coalesce(raw.try_boolean(data ->> 'used_cli'), false) as used_cli,
        case when jsonb_typeof(data -> 'totals_by_feature') = 'array' then data -> 'totals_by_feature' else '[]'::jsonb end
            as totals_by_feature,
        case when jsonb_typeof(data -> 'totals_by_ide') = 'array' then data -> 'totals_by_ide' else '[]'::jsonb end
            as totals_by_ide,
        ingested_at
    from source
)

select * from renamed
