-- One row per organisation-day of GitHub's Copilot usage metrics organisation report
-- (docs/contracts.md, "Copilot usage metrics"): the report's figures, plus the acceptance rate
-- and two figures read from its per-feature breakdown (chat prompts, agent-written lines).
with org_days as (
    select * from {{ ref('stg_github__copilot_org_days') }}
),

features as (
    select
        org_days.org,
        org_days.day,
        sum(raw.try_integer(feature ->> 'user_initiated_interaction_count'))
            filter (where feature ->> 'feature' like 'chat%' or feature ->> 'feature' = 'inline_chat') as chat_interactions,
        sum(raw.try_integer(feature ->> 'loc_added_sum')) filter (where feature ->> 'feature' = 'agent_edit') as agent_loc_added
    from org_days
    cross join lateral jsonb_array_elements(org_days.totals_by_feature) as feature
    group by org_days.org, org_days.day
)

select
    org_days.org,
    org_days.day,
    date_trunc('week', org_days.day)::date as week_start,
    org_days.daily_active_users,
    org_days.weekly_active_users,
    org_days.monthly_active_users,
    org_days.monthly_active_chat_users,
    org_days.monthly_active_agent_users,
    org_days.user_initiated_interactions,
    coalesce(features.chat_interactions, 0) as chat_interactions,
    org_days.code_generation_activities,
    org_days.code_acceptance_activities,
    org_days.code_acceptance_activities::numeric / nullif(org_days.code_generation_activities, 0) as acceptance_rate,
    org_days.loc_suggested_to_add,
    org_days.loc_suggested_to_delete,
    org_days.loc_added,
    org_days.loc_deleted,
    coalesce(features.agent_loc_added, 0) as agent_loc_added,
    org_days.pull_requests_created,
    org_days.pull_requests_reviewed,
    org_days.pull_requests_merged,
    org_days.median_minutes_to_merge,
    org_days.pull_requests_created_by_copilot,
    org_days.pull_requests_reviewed_by_copilot,
    org_days.pull_requests_merged_created_by_copilot,
    org_days.copilot_review_suggestions,
    org_days.copilot_review_suggestions_applied
from org_days
left join features on features.org = org_days.org and features.day = org_days.day
