with users as (
    select * from {{ ref('stg_app__users') }}
),

-- Only repositories that are in the warehouse count: a granted but never ingested
-- repository is not part of the user's metrics.
repository_counts as (
    select user_repositories.login, count(*) as repository_count
    from {{ ref('stg_app__user_repositories') }} as user_repositories
    inner join {{ ref('stg_github__repositories') }} as repositories
        on repositories.repo_full_name = user_repositories.repo_full_name
    group by user_repositories.login
),

bounds as (
    select users.login as scope, {{ dora_scope_bounds('user', 'users.login') }}
    from users
)

select
    users.login,
    users.display_name,
    coalesce(repository_counts.repository_count, 0) as repository_count,
    bounds.first_week,
    bounds.last_week,
    latest.legacy_deployment_frequency_grade,
    latest.legacy_lead_time_grade,
    latest.legacy_change_failure_rate_grade,
    latest.legacy_time_to_restore_grade,
    latest.legacy_performance_score,
    latest.overall_score
from users
left join repository_counts on repository_counts.login = users.login
left join bounds on bounds.scope = users.login
left join {{ ref('fct_dora_weekly') }} as latest
    on latest.scope_type = 'user'
    and latest.scope = bounds.scope
    and latest.week_start = bounds.last_week
