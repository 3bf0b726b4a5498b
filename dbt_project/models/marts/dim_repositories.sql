with repositories as (
    select * from {{ ref('stg_github__repositories') }}
),

sources as (
    select * from {{ ref('int_repository_deployment_sources') }}
),

weekly as (
    select * from {{ ref('fct_dora_weekly') }} where scope_type = 'repository'
),

bounds as (
    select scope, min(week_start) as first_week, max(week_start) as last_week
    from weekly
    group by scope
)

select
    repositories.repo_full_name,
    repositories.repository_id,
    repositories.default_branch,
    repositories.is_archived,
    sources.deployment_source,
    bounds.first_week,
    bounds.last_week,
    latest.deployment_frequency_grade,
    latest.lead_time_grade,
    latest.change_failure_rate_grade,
    latest.time_to_restore_grade,
    latest.performance_score
from repositories
left join sources on sources.repo_full_name = repositories.repo_full_name
left join bounds on bounds.scope = repositories.repo_full_name
left join weekly as latest
    on latest.scope = bounds.scope
    and latest.week_start = bounds.last_week
