-- Every ingested repository with its metric rules: app.repository_settings where set,
-- the defaults of docs/contracts.md where the row or a column is missing.
select
    repositories.repo_full_name,
    repositories.default_branch,
    coalesce(settings.deployment_source, '{{ var("default_deployment_source") }}') as configured_deployment_source,
    coalesce(settings.production_environment_regex, '{{ var("default_production_environment_regex") }}')
        as production_environment_regex,
    coalesce(settings.deploy_workflow_regex, '{{ var("default_deploy_workflow_regex") }}') as deploy_workflow_regex,
    coalesce(settings.incident_label_regex, '{{ var("default_incident_label_regex") }}') as incident_label_regex,
    coalesce(settings.hotfix_label_regex, '{{ var("default_hotfix_label_regex") }}') as hotfix_label_regex,
    coalesce(settings.hotfix_branch_regex, '{{ var("default_hotfix_branch_regex") }}') as hotfix_branch_regex
from {{ ref('stg_github__repositories') }} as repositories
left join {{ ref('stg_app__repository_settings') }} as settings
    on settings.repo_full_name = repositories.repo_full_name
