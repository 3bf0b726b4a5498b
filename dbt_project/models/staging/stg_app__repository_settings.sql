select
    repo_full_name,
    deployment_source,
    production_environment_regex,
    deploy_workflow_regex,
    incident_label_regex,
    hotfix_label_regex,
    hotfix_branch_regex,
    updated_at
from {{ source('app', 'repository_settings') }}
