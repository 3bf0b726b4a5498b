{{ config(
    materialized='incremental',
    unique_key='pull_request_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['pull_request_id'], 'unique': True}],
    post_hook=["{% if is_incremental() %}delete from {{ this }} where not _is_merged_revert{% endif %}"],
) }}

-- The merged pull requests that revert another: few, but finding them parses every pull
-- request, so a table that incremental runs extend with the pull requests ingested since
-- the last run. A re-ingested one that no longer is a merged revert is written with
-- _is_merged_revert false and dropped by the post-hook.
select
    pull_request_id,
    repo_full_name,
    number,
    merged_at,
    reverted_sha,
    reverted_title,
    is_revert and merged_at is not null as _is_merged_revert,
    (select max(ingested_at) from {{ source('github', 'pull_requests') }}) as _source_high_water
from {{ ref('stg_github__pull_requests') }}
{% if is_incremental() %}
where ingested_at > (select coalesce(max(_source_high_water), '-infinity'::timestamptz) from {{ this }})
{% else %}
where is_revert and merged_at is not null
{% endif %}
