-- Every event that counts as a production deployment under each of the four sources; the
-- source in effect per repository is chosen in int_repository_deployment_sources.

with settings as (
    select * from {{ ref('int_repository_settings') }}
),

github_deployments as (
    select
        deployments.deployment_id,
        deployments.repo_full_name,
        'github_deployments' as source,
        deployments.environment,
        deployments.deployed_at,
        deployments.is_failed,
        deployments.ingested_at as _ingested_at
    from {{ ref('stg_github__deployments') }} as deployments
    inner join settings on settings.repo_full_name = deployments.repo_full_name
    -- no success and no failure yet (pending, queued, in progress): not a deployment yet
    where deployments.deployed_at is not null
        and {{ regex_matches('deployments.environment', 'settings.production_environment_regex') }}
),

workflow_runs as (
    select
        runs.workflow_run_id as deployment_id,
        runs.repo_full_name,
        'workflow_runs' as source,
        cast(null as text) as environment,
        runs.completed_at as deployed_at,
        runs.conclusion = 'failure' as is_failed,
        runs.ingested_at as _ingested_at
    from {{ ref('stg_github__workflow_runs') }} as runs
    inner join settings on settings.repo_full_name = runs.repo_full_name
    where runs.status = 'completed'
        and runs.conclusion in ('success', 'failure')
        and runs.head_branch = settings.default_branch
        and {{ regex_matches('runs.workflow_name', 'settings.deploy_workflow_regex') }}
),

releases as (
    select
        releases.release_id as deployment_id,
        releases.repo_full_name,
        'releases' as source,
        cast(null as text) as environment,
        releases.published_at as deployed_at,
        false as is_failed,
        releases.ingested_at as _ingested_at
    from {{ ref('stg_github__releases') }} as releases
    where releases.published_at is not null
        and not releases.is_draft
        and not releases.is_prerelease
),

merges as (
    select
        pull_requests.pull_request_id as deployment_id,
        pull_requests.repo_full_name,
        'merges' as source,
        cast(null as text) as environment,
        pull_requests.merged_at as deployed_at,
        false as is_failed,
        pull_requests.ingested_at as _ingested_at
    from {{ ref('stg_github__pull_requests') }} as pull_requests
    inner join settings on settings.repo_full_name = pull_requests.repo_full_name
    where pull_requests.merged_at is not null
        and pull_requests.base_ref_name = settings.default_branch
)

select * from github_deployments
union all
select * from workflow_runs
union all
select * from releases
union all
select * from merges
