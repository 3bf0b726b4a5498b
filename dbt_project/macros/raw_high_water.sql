{#- The newest ingested_at over every raw input of the pull-request marts, taken when a run
    starts. Incremental runs reprocess what arrived after the value stored by the last run.
    Each max() is an index lookup (migration 0002_dbt_indexes). -#}
{% macro raw_high_water() -%}
    greatest(
        (select max(ingested_at) from {{ source('github', 'pull_requests') }}),
        (select max(ingested_at) from {{ source('github', 'pull_request_reviews') }}),
        (select max(ingested_at) from {{ source('github', 'pull_request_commits') }}),
        (select max(ingested_at) from {{ source('github', 'deployments') }}),
        (select max(ingested_at) from {{ source('github', 'releases') }}),
        (select max(ingested_at) from {{ source('github', 'workflow_runs') }}),
        '-infinity'::timestamptz
    )
{%- endmacro %}
