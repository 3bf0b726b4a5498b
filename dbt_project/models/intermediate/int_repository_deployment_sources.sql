{{ config(materialized='table') }}

-- The deployment source in effect per repository: the configured one, or for `auto` the
-- first of github_deployments, workflow_runs, releases, merges with at least one deployment.
-- A table: several models read it, and the candidates behind it are large.

-- The first source with a deployment, each asked by an EXISTS on the repository's rows
-- (the filter on the constant `source` keeps only that branch of the candidates).
with first_available as (
    select
        settings.repo_full_name,
        case
        {%- for source in ['github_deployments', 'workflow_runs', 'releases'] %}
            when exists (
                select 1
                from {{ ref('int_deployment_candidates') }} as candidates
                where candidates.repo_full_name = settings.repo_full_name
                    and candidates.source = '{{ source }}'
            ) then '{{ source }}'
        {%- endfor %}
            -- merges: stops at the first merge into the default branch
            when exists (
                select 1
                from {{ ref('stg_github__pull_requests') }} as pull_requests
                where pull_requests.repo_full_name = settings.repo_full_name
                    and pull_requests.merged_at is not null
                    and pull_requests.base_ref_name = settings.default_branch
            ) then 'merges'
        end as source
    from {{ ref('int_repository_settings') }} as settings
)

select
    settings.repo_full_name,
    settings.default_branch,
    settings.configured_deployment_source,
    case
        when settings.configured_deployment_source <> 'auto' then settings.configured_deployment_source
        -- null while nothing has deployed under any source
        else first_available.source
    end as deployment_source,
    settings.production_environment_regex,
    settings.deploy_workflow_regex,
    settings.incident_label_regex,
    -- Changes when anything that decides which events are deployments changes; incremental
    -- marts reprocess the repository then.
    md5(concat_ws(
        '|',
        settings.default_branch,
        settings.configured_deployment_source,
        coalesce(first_available.source, 'merges'),
        settings.production_environment_regex,
        settings.deploy_workflow_regex
    )) as deployment_rules_hash
from {{ ref('int_repository_settings') }} as settings
left join first_available on first_available.repo_full_name = settings.repo_full_name
