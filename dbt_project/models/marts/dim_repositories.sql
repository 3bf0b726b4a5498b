with repositories as (
    select * from {{ ref('stg_github__repositories') }}
),

sources as (
    select * from {{ ref('int_repository_deployment_sources') }}
),

bounds as (
    select repositories.repo_full_name as scope, {{ dora_scope_bounds('repository', 'repositories.repo_full_name') }}
    from repositories
)

select
    repositories.repo_full_name,
    repositories.repository_id,
    repositories.default_branch,
    repositories.is_archived,
    sources.deployment_source,
    bounds.first_week,
    bounds.last_week,
    latest.legacy_deployment_frequency_grade,
    latest.legacy_lead_time_grade,
    latest.legacy_change_failure_rate_grade,
    latest.legacy_time_to_restore_grade,
    latest.legacy_performance_score,
    latest.overall_score
from repositories
left join sources on sources.repo_full_name = repositories.repo_full_name
left join bounds on bounds.scope = repositories.repo_full_name
left join {{ ref('fct_dora_weekly') }} as latest
    on latest.scope_type = 'repository'
    and latest.scope = bounds.scope
    and latest.week_start = bounds.last_week
