{{ config(
    materialized='incremental',
    unique_key='pull_request_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['pull_request_id'], 'unique': True}],
) }}

-- The merged pull requests that revert another: few, but finding them parses every pull
-- request, so a table that incremental runs extend with the pull requests ingested after the
-- newest stored one (by the index on raw ingested_at). A merged revert edited into something
-- else stays until the nightly full refresh.
select
    pull_request_id,
    repo_full_name,
    number,
    merged_at,
    reverted_sha,
    reverted_title,
    ingested_at as _ingested_at
from {{ ref('stg_github__pull_requests') }}
where is_revert and merged_at is not null
{% if is_incremental() %}
    and ingested_at > (select coalesce(max(_ingested_at), '-infinity'::timestamptz) from {{ this }})
{% endif %}
