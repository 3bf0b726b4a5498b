-- One row per organisation, day and user active that day, from GitHub's Copilot usage metrics
-- users report (docs/contracts.md, "Copilot usage metrics").
with user_days as (
    select * from {{ ref('stg_github__copilot_user_days') }}
),

breakdowns as (
    select
        user_days.org,
        user_days.day,
        user_days.user_login,
        (select sum(raw.try_integer(feature ->> 'loc_added_sum'))
         from jsonb_array_elements(user_days.totals_by_feature) as feature
         where feature ->> 'feature' = 'agent_edit') as agent_loc_added,
        (select string_agg(distinct ide ->> 'ide', ',' order by ide ->> 'ide')
         from jsonb_array_elements(user_days.totals_by_ide) as ide) as ides
    from user_days
)

select
    user_days.org,
    user_days.day,
    date_trunc('week', user_days.day)::date as week_start,
    user_days.user_login,
    user_days.user_initiated_interactions,
    user_days.code_generation_activities,
    user_days.code_acceptance_activities,
    user_days.code_acceptance_activities::numeric / nullif(user_days.code_generation_activities, 0) as acceptance_rate,
    user_days.loc_suggested_to_add,
    user_days.loc_suggested_to_delete,
    user_days.loc_added,
    user_days.loc_deleted,
    coalesce(breakdowns.agent_loc_added, 0) as agent_loc_added,
    user_days.used_chat,
    user_days.used_agent,
    user_days.used_cli,
    breakdowns.ides
from user_days
inner join breakdowns
    on breakdowns.org = user_days.org and breakdowns.day = user_days.day and breakdowns.user_login = user_days.user_login
