-- The numeric columns of fct_dora_weekly: the feature table of the ML assets. A table, not
-- a view: the nightly full refresh replaces fct_dora_weekly and would drop a view on it.
{{ config(materialized='table') }}

select
    scope_type,
    scope,
    week_start,
    deployments,
    deployment_days,
    median_lead_time_hours,
    change_failure_rate,
    failed_changes,
    incidents,
    median_time_to_restore_hours,
    merged_prs,
    review_coverage,
    median_pr_size,
    p90_pr_size,
    median_coding_hours,
    median_pickup_hours,
    median_review_hours,
    median_deploy_hours,
    review_coverage_12w,
    performance_score
from {{ ref('fct_dora_weekly') }}
