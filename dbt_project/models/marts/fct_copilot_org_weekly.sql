-- One row per organisation and week (Monday start) with Copilot usage reports: the adoption
-- curve the dashboard charts beside the DORA trend (docs/contracts.md, "Copilot usage metrics").
with org_days as (
    select * from {{ ref('fct_copilot_org_daily') }}
),

user_days as (
    select * from {{ ref('fct_copilot_user_daily') }}
),

weekly_users as (
    select org, week_start, count(distinct user_login) as weekly_active_users
    from user_days
    group by org, week_start
),

weeks as (
    select
        org,
        week_start,
        count(*) as days_reported,
        avg(daily_active_users) as average_daily_active_users,
        max(monthly_active_users) as max_monthly_active_users,
        sum(code_generation_activities) as code_generation_activities,
        sum(code_acceptance_activities) as code_acceptance_activities,
        sum(loc_suggested_to_add) as loc_suggested_to_add,
        sum(loc_added) as loc_added,
        sum(agent_loc_added) as agent_loc_added,
        sum(pull_requests_created) as pull_requests_created,
        sum(pull_requests_created_by_copilot) as pull_requests_created_by_copilot,
        sum(pull_requests_reviewed_by_copilot) as pull_requests_reviewed_by_copilot
    from org_days
    group by org, week_start
)

select
    weeks.org,
    weeks.week_start,
    weeks.days_reported,
    coalesce(weekly_users.weekly_active_users, 0) as weekly_active_users,
    weeks.average_daily_active_users,
    weeks.max_monthly_active_users,
    weeks.code_generation_activities,
    weeks.code_acceptance_activities,
    weeks.code_acceptance_activities::numeric / nullif(weeks.code_generation_activities, 0) as acceptance_rate,
    weeks.loc_suggested_to_add,
    weeks.loc_added,
    weeks.agent_loc_added,
    weeks.pull_requests_created,
    weeks.pull_requests_created_by_copilot,
    weeks.pull_requests_reviewed_by_copilot,
    weeks.pull_requests_created_by_copilot::numeric / nullif(weeks.pull_requests_created, 0) as copilot_created_share
from weeks
left join weekly_users on weekly_users.org = weeks.org and weekly_users.week_start = weeks.week_start
