{#- The pooled 12-week medians sort every item twelve times: keep those sorts in memory. -#}
{{ config(
    materialized='incremental',
    unique_key=['scope_type', 'scope', 'week_start'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['scope_type', 'scope', 'week_start'], 'unique': True}],
    pre_hook=[
        "set work_mem = '128MB'",
        "{% if is_incremental() %}{{ dora_weekly_prune() }}{% endif %}",
    ],
    post_hook="reset work_mem",
) }}

-- DORA and pull-request metrics per scope (a repository, or a user = the union of their
-- repositories) and UTC week, zero-filled from the scope's first week with a pull request or
-- deployment through the last week with any event in the warehouse, with grades on the
-- trailing 12 weeks (docs/contracts.md). Performance score weights: deployment frequency
-- 0.25, lead time 0.25, change failure rate 0.20, time to restore 0.15, review coverage 0.15.
--
-- Incremental runs rewrite each scope only from the earliest week whose inputs may have
-- changed (a week's grades read the 11 weeks before it, so those are recomputed as inputs
-- but not written: their parts of the 12-week windows are read back from _window_parts, so
-- items are read only from the first week written). A repository's weeks may have changed
-- from the earliest week of:
-- its pull requests written since the last run (created, merged, shipped); a week whose
-- deployments or incidents differ from the fingerprints stored in its rows (this also sees
-- deleted deployments and incidents). Everything of a scope is recomputed when its first
-- week, its repositories or their metric rules changed; new weeks of every scope when the
-- warehouse's last week moved on. The pre-hook drops scopes and weeks that no longer exist.

with recursive

-- Repositories with a pull request (a loose scan of the (repository, created_at) index)
-- or a deployment: the repository scopes.
pull_request_repositories as (
    (select repo_full_name from {{ ref('fct_pull_requests') }} order by repo_full_name limit 1)
    union all
    select (
        select pull_requests.repo_full_name
        from {{ ref('fct_pull_requests') }} as pull_requests
        where pull_requests.repo_full_name > pull_request_repositories.repo_full_name
        order by pull_requests.repo_full_name
        limit 1
    )
    from pull_request_repositories
    where pull_request_repositories.repo_full_name is not null
),

active_repositories as (
    select repo_full_name from pull_request_repositories where repo_full_name is not null
    union
    select repo_full_name from {{ ref('fct_deployments') }}
),

scope_members as (
    select 'repository' as scope_type, repo_full_name as scope, repo_full_name
    from active_repositories
    union all
    select 'user' as scope_type, login as scope, repo_full_name
    from {{ ref('stg_app__user_repositories') }}
),

-- Integer keys: the large sorts below group by them instead of by text.
scope_keys as (
    select scope_type, scope, row_number() over (order by scope_type, scope) as scope_id
    from (select distinct scope_type, scope from scope_members) as distinct_scopes
),

repository_keys as (
    select repo_full_name, row_number() over (order by repo_full_name) as repo_id
    from (select distinct repo_full_name from scope_members) as distinct_repositories
),

all_scope_repositories as (
    select scope_keys.scope_id, repository_keys.repo_id, scope_members.repo_full_name
    from scope_members
    inner join scope_keys using (scope_type, scope)
    inner join repository_keys using (repo_full_name)
),

warehouse_last_week as (
    select {{ week_start(dora_last_event_at()) }} as last_week
),

-- Per repository by index: its first event, and what decides its metrics besides events.
repository_first_event as (
    select
        repository_keys.repo_full_name,
        repository_keys.repo_id,
        least(
            (select min(created_at) from {{ ref('fct_pull_requests') }} as pull_requests
             where pull_requests.repo_full_name = repository_keys.repo_full_name),
            (select min(deployed_at) from {{ ref('fct_deployments') }} as deployments
             where deployments.repo_full_name = repository_keys.repo_full_name)
        ) as first_event_at
    from repository_keys
),

repository_rules as (
    select
        repository_keys.repo_id,
        concat_ws(
            ':', repository_keys.repo_full_name, sources.deployment_rules_hash, sources.incident_label_regex
        ) as rules
    from repository_keys
    left join {{ ref('int_repository_deployment_sources') }} as sources
        on sources.repo_full_name = repository_keys.repo_full_name
),

all_scopes as (
    select
        all_scope_repositories.scope_id,
        {{ week_start('min(repository_first_event.first_event_at)') }} as first_week,
        md5(string_agg(repository_rules.rules, '|' order by repository_rules.rules)) as inputs_hash
    from all_scope_repositories
    inner join repository_first_event using (repo_id)
    inner join repository_rules using (repo_id)
    group by all_scope_repositories.scope_id
    having min(repository_first_event.first_event_at) is not null
),

{% if is_incremental() %}
previous_scopes as (
    select scope_type, scope, min(week_start) as first_week, max(_inputs_hash) as inputs_hash
    from {{ this }}
    group by scope_type, scope
),

previous_run as (
    select
        max(week_start) as last_week,
        coalesce(max(_pull_requests_high_water), '-infinity'::timestamptz) as pull_requests_high_water
    from {{ this }}
),

-- The weeks of each repository whose inputs may have changed since the last run.
changed_weeks as (
    select repo_full_name, least(
        {{ week_start('created_at') }}, {{ week_start('merged_at') }}, {{ week_start('shipped_at') }}
    ) as week_start
    from {{ ref('fct_pull_requests') }}
    where _source_high_water > (select pull_requests_high_water from previous_run)
    {%- for mart, stored_fingerprint in [('fct_deployments', '_deployments_fingerprint'),
                                         ('fct_incidents', '_incidents_fingerprint')] %}
    union all
    select coalesce(computed.repo_full_name, stored.scope), coalesce(computed.week_start, stored.week_start)
    from (
        select repo_full_name, week_start, {{ dora_fingerprint() }} as fingerprint
        from {{ ref(mart) }}
        group by repo_full_name, week_start
    ) as computed
    full join (
        select scope, week_start, {{ stored_fingerprint }} as fingerprint
        from {{ this }} where scope_type = 'repository'
    ) as stored on stored.scope = computed.repo_full_name and stored.week_start = computed.week_start
    where computed.fingerprint is distinct from stored.fingerprint
    {%- endfor %}
),

changed_repository_weeks as materialized (
    select repo_full_name, week_start
    from changed_weeks
    group by repo_full_name, week_start
),

-- Per scope, the earliest changed week of its repositories (one grouped join: a correlated
-- subquery per scope costs seconds on a thousand scopes).
changed_scopes as (
    select all_scopes.scope_id, min(changed.week_start) as changed_from
    from all_scopes
    inner join all_scope_repositories using (scope_id)
    inner join changed_repository_weeks as changed using (repo_full_name)
    cross join warehouse_last_week
    -- incidents before the first week or after the last one are in no row
    where changed.week_start between all_scopes.first_week and warehouse_last_week.last_week
    group by all_scopes.scope_id
),

scopes as (
    select all_scopes.scope_id, all_scopes.first_week, all_scopes.inputs_hash, case
        when previous_scopes.scope is null
            or previous_scopes.first_week <> all_scopes.first_week
            or previous_scopes.inputs_hash is distinct from all_scopes.inputs_hash
            or previous_run.last_week > warehouse_last_week.last_week
            then all_scopes.first_week
        else least(
            changed_scopes.changed_from,
            case when warehouse_last_week.last_week > previous_run.last_week
                then (previous_run.last_week + 7) end
        )
    end as write_from
    from all_scopes
    inner join scope_keys using (scope_id)
    cross join warehouse_last_week
    cross join previous_run
    left join previous_scopes using (scope_type, scope)
    left join changed_scopes using (scope_id)
),
{% else %}
scopes as (
    select scope_id, first_week, inputs_hash, first_week as write_from
    from all_scopes
),
{% endif %}

-- The scopes to write, with the first week their windows read.
planned_scopes as (
    select
        scope_id,
        first_week,
        inputs_hash,
        write_from,
        greatest(first_week, write_from - 77) as read_from
    from scopes
    where write_from is not null
),

scope_repositories as (
    select all_scope_repositories.*, planned_scopes.write_from
    from all_scope_repositories
    inner join planned_scopes using (scope_id)
),

-- Per repository, the first week any scope holding it writes, as a UTC timestamp: items are
-- read from there (the weeks before it that the windows need are stored rows).
repository_reads as (
    select
        repo_id,
        repo_full_name,
        min(write_from) as read_from,
        (min(write_from)::timestamp at time zone 'UTC') as read_from_at
    from scope_repositories
    group by repo_id, repo_full_name
),

weeks as (
    select
        planned_scopes.scope_id,
        scope_keys.scope_type,
        scope_keys.scope,
        week::date as week_start
    from planned_scopes
    inner join scope_keys using (scope_id)
    cross join warehouse_last_week
    cross join lateral generate_series(planned_scopes.write_from, warehouse_last_week.last_week, interval '1 week') as week
),

-- Items of each metric with the week they count in.
{% if is_incremental() %}
pull_requests as (
    -- by index, from the first week read
    select repository_reads.repo_id, pull_requests.*
    from repository_reads
    cross join lateral (
        select
            merged_at, shipped_at, is_bot, first_review_at, pr_size, coding_hours, pickup_hours,
            review_hours, deploy_hours, lead_time_hours
        from {{ ref('fct_pull_requests') }} as pull_requests
        where pull_requests.repo_full_name = repository_reads.repo_full_name
            and pull_requests.merged_at >= repository_reads.read_from_at
        -- per repository by index (a join would scan every row)
        offset 0
    ) as pull_requests
),

shipped_pull_requests as (
    select repository_reads.repo_id, pull_requests.*
    from repository_reads
    cross join lateral (
        select shipped_at, is_bot, lead_time_hours
        from {{ ref('fct_pull_requests') }} as pull_requests
        where pull_requests.repo_full_name = repository_reads.repo_full_name
            and pull_requests.shipped_at >= repository_reads.read_from_at
        -- per repository by index (a join would scan every row)
        offset 0
    ) as pull_requests
),

deployments as (
    select repository_reads.repo_id, deployments.*
    from repository_reads
    cross join lateral (
        select deployment_id, week_start, deployed_at, is_failed, fails_change, _fingerprint
        from {{ ref('fct_deployments') }} as deployments
        where deployments.repo_full_name = repository_reads.repo_full_name
            and deployments.deployed_at >= repository_reads.read_from_at
        -- per repository by index (a join would scan every row)
        offset 0
    ) as deployments
),

incidents as (
    select repository_reads.repo_id, incidents.*
    from {{ ref('fct_incidents') }} as incidents
    inner join repository_reads using (repo_full_name)
    where incidents.week_start >= repository_reads.read_from
),
{% else %}
pull_requests as (
    select repository_reads.repo_id, pull_requests.*
    from {{ ref('fct_pull_requests') }} as pull_requests
    inner join repository_reads using (repo_full_name)
),

shipped_pull_requests as (
    select * from pull_requests
),

deployments as (
    select repository_reads.repo_id, deployments.*
    from {{ ref('fct_deployments') }} as deployments
    inner join repository_reads using (repo_full_name)
),

incidents as (
    select repository_reads.repo_id, incidents.*
    from {{ ref('fct_incidents') }} as incidents
    inner join repository_reads using (repo_full_name)
),
{% endif %}

merged_items as (
    select
        repo_id,
        {{ week_start('merged_at') }} as week_start,
        first_review_at is not null as is_reviewed,
        pr_size,
        coding_hours,
        pickup_hours,
        review_hours,
        deploy_hours
    from pull_requests
    where merged_at is not null and not is_bot
),

shipped_items as (
    select
        repo_id,
        {{ week_start('shipped_at') }} as week_start,
        lead_time_hours
    from shipped_pull_requests
    where shipped_at is not null and not is_bot and lead_time_hours is not null
),

deployment_items as (
    select
        repo_id,
        week_start,
        case when not is_failed then {{ utc_date('deployed_at') }} end as success_date,
        fails_change
    from deployments
),

incident_items as (
    select repo_id, week_start, restore_hours
    from incidents
),

-- Fingerprints of each repository week's deployments and incidents, stored in its rows:
-- the next incremental run compares them to find the weeks that changed.
deployment_fingerprints as (
    select repo_id as fp_repo_id, week_start as fp_week, {{ dora_fingerprint() }} as fp_deployments
    from deployments
    group by repo_id, week_start
),

incident_fingerprints as (
    select repo_id as fp_repo_id, week_start as fp_week, {{ dora_fingerprint() }} as fp_incidents
    from incidents
    group by repo_id, week_start
),

weekly_deployments as (
    select
        scope_repositories.scope_id,
        items.week_start,
        count(*) as deployments,
        count(distinct items.success_date) as deployment_days,
        count(*) filter (where items.fails_change) as failed_changes
    from scope_repositories
    inner join deployment_items as items on items.repo_id = scope_repositories.repo_id
        and items.week_start >= scope_repositories.write_from
    group by 1, 2
),

weekly_merged as (
    select
        scope_repositories.scope_id,
        items.week_start,
        count(*) as merged_prs,
        count(*) filter (where items.is_reviewed) as reviewed_prs,
        percentile_cont(0.5) within group (order by items.pr_size) as median_pr_size,
        percentile_cont(0.9) within group (order by items.pr_size) as p90_pr_size,
        percentile_cont(0.5) within group (order by items.coding_hours) as median_coding_hours,
        percentile_cont(0.5) within group (order by items.pickup_hours) as median_pickup_hours,
        percentile_cont(0.5) within group (order by items.review_hours) as median_review_hours,
        percentile_cont(0.5) within group (order by items.deploy_hours) as median_deploy_hours
    from scope_repositories
    inner join merged_items as items on items.repo_id = scope_repositories.repo_id
        and items.week_start >= scope_repositories.write_from
    group by 1, 2
),

weekly_shipped as (
    select
        scope_repositories.scope_id,
        items.week_start,
        percentile_cont(0.5) within group (order by items.lead_time_hours) as median_lead_time_hours,
        count(*) as lead_times,
        {{ median_parts('items.lead_time_hours', 24, 'lead_24') }},
        {{ median_parts('items.lead_time_hours', 168, 'lead_168') }},
        {{ median_parts('items.lead_time_hours', 720, 'lead_720') }}
    from scope_repositories
    inner join shipped_items as items on items.repo_id = scope_repositories.repo_id
        and items.week_start >= scope_repositories.write_from
    group by 1, 2
),

weekly_incidents as (
    select
        scope_repositories.scope_id,
        items.week_start,
        count(*) as incidents,
        percentile_cont(0.5) within group (order by items.restore_hours) as median_time_to_restore_hours,
        count(items.restore_hours) as restores,
        {{ median_parts('items.restore_hours', 1, 'restore_1') }},
        {{ median_parts('items.restore_hours', 24, 'restore_24') }},
        {{ median_parts('items.restore_hours', 168, 'restore_168') }}
    from scope_repositories
    inner join incident_items as items on items.repo_id = scope_repositories.repo_id
        and items.week_start >= scope_repositories.write_from
    group by 1, 2
),

computed_weeks as (
    select
        weeks.scope_id,
        weeks.scope_type,
        weeks.scope,
        weeks.week_start,
        coalesce(weekly_deployments.deployments, 0) as deployments,
        coalesce(weekly_deployments.deployment_days, 0) as deployment_days,
        weekly_shipped.median_lead_time_hours::numeric as median_lead_time_hours,
        coalesce(weekly_deployments.failed_changes, 0) as failed_changes,
        coalesce(weekly_incidents.incidents, 0) as incidents,
        weekly_incidents.median_time_to_restore_hours::numeric as median_time_to_restore_hours,
        coalesce(weekly_merged.merged_prs, 0) as merged_prs,
        weekly_merged.median_pr_size::numeric as median_pr_size,
        weekly_merged.p90_pr_size::numeric as p90_pr_size,
        weekly_merged.median_coding_hours::numeric as median_coding_hours,
        weekly_merged.median_pickup_hours::numeric as median_pickup_hours,
        weekly_merged.median_review_hours::numeric as median_review_hours,
        weekly_merged.median_deploy_hours::numeric as median_deploy_hours,
        -- from here on in the order of dora_window_parts()
        coalesce(weekly_merged.reviewed_prs, 0) as reviewed_prs,
        coalesce(weekly_shipped.lead_times, 0) as lead_times,
        coalesce(weekly_incidents.restores, 0) as restores,
        coalesce(weekly_shipped.lead_24_below, 0) as lead_24_below,
        weekly_shipped.lead_24_below_max,
        weekly_shipped.lead_24_above_min,
        coalesce(weekly_shipped.lead_168_below, 0) as lead_168_below,
        weekly_shipped.lead_168_below_max,
        weekly_shipped.lead_168_above_min,
        coalesce(weekly_shipped.lead_720_below, 0) as lead_720_below,
        weekly_shipped.lead_720_below_max,
        weekly_shipped.lead_720_above_min,
        coalesce(weekly_incidents.restore_1_below, 0) as restore_1_below,
        weekly_incidents.restore_1_below_max,
        weekly_incidents.restore_1_above_min,
        coalesce(weekly_incidents.restore_24_below, 0) as restore_24_below,
        weekly_incidents.restore_24_below_max,
        weekly_incidents.restore_24_above_min,
        coalesce(weekly_incidents.restore_168_below, 0) as restore_168_below,
        weekly_incidents.restore_168_below_max,
        weekly_incidents.restore_168_above_min
    from weeks
    left join weekly_deployments using (scope_id, week_start)
    left join weekly_merged using (scope_id, week_start)
    left join weekly_shipped using (scope_id, week_start)
    left join weekly_incidents using (scope_id, week_start)
),

{% if is_incremental() %}
-- The weeks before the first one written that the windows read, from their stored rows.
stored_weeks as (
    select
        planned_scopes.scope_id,
        scope_keys.scope_type,
        scope_keys.scope,
        stored.week_start,
        stored.deployments,
        stored.deployment_days,
        null::numeric as median_lead_time_hours,
        stored.failed_changes,
        stored.incidents,
        null::numeric as median_time_to_restore_hours,
        stored.merged_prs,
        null::numeric as median_pr_size,
        null::numeric as p90_pr_size,
        null::numeric as median_coding_hours,
        null::numeric as median_pickup_hours,
        null::numeric as median_review_hours,
        null::numeric as median_deploy_hours,
        {%- for part, type in dora_window_parts().items() %}
        stored._window_parts[{{ loop.index }}]::{{ type }} as {{ part }}{{ ',' if not loop.last }}
        {%- endfor %}
    from planned_scopes
    inner join scope_keys using (scope_id)
    cross join lateral (
        select *
        from {{ this }} as stored
        where stored.scope_type = scope_keys.scope_type
            and stored.scope = scope_keys.scope
            and stored.week_start >= planned_scopes.read_from
            and stored.week_start < planned_scopes.write_from
        -- per scope by the unique index (a join hashes every stored row)
        offset 0
    ) as stored
),
{% endif %}

weekly as (
    select * from computed_weeks
    {% if is_incremental() %}
    union all
    select * from stored_weeks
    {% endif %}
),

-- Weekly rows are contiguous per scope, so the 12-week window is the row and 11 before it.
-- Materialised: inlined, the grades below would re-evaluate the window aggregates per use.
windowed as materialized (
    select
        weekly.*,
        sum(deployments) over last_12_weeks as deployments_12w,
        sum(failed_changes) over last_12_weeks as failed_changes_12w,
        sum(merged_prs) over last_12_weeks as merged_prs_12w,
        sum(reviewed_prs) over last_12_weeks as reviewed_prs_12w,
        sum(deployment_days) over last_12_weeks as deployment_days_12w,
        count(*) over last_12_weeks as weeks_12w,
        sum(lead_times) over last_12_weeks as lead_times_12w,
        sum(restores) over last_12_weeks as restores_12w,
        sum(lead_24_below) over last_12_weeks as lead_24_below_12w,
        max(lead_24_below_max) over last_12_weeks as lead_24_below_max_12w,
        min(lead_24_above_min) over last_12_weeks as lead_24_above_min_12w,
        sum(lead_168_below) over last_12_weeks as lead_168_below_12w,
        max(lead_168_below_max) over last_12_weeks as lead_168_below_max_12w,
        min(lead_168_above_min) over last_12_weeks as lead_168_above_min_12w,
        sum(lead_720_below) over last_12_weeks as lead_720_below_12w,
        max(lead_720_below_max) over last_12_weeks as lead_720_below_max_12w,
        min(lead_720_above_min) over last_12_weeks as lead_720_above_min_12w,
        sum(restore_1_below) over last_12_weeks as restore_1_below_12w,
        max(restore_1_below_max) over last_12_weeks as restore_1_below_max_12w,
        min(restore_1_above_min) over last_12_weeks as restore_1_above_min_12w,
        sum(restore_24_below) over last_12_weeks as restore_24_below_12w,
        max(restore_24_below_max) over last_12_weeks as restore_24_below_max_12w,
        min(restore_24_above_min) over last_12_weeks as restore_24_above_min_12w,
        sum(restore_168_below) over last_12_weeks as restore_168_below_12w,
        max(restore_168_below_max) over last_12_weeks as restore_168_below_max_12w,
        min(restore_168_above_min) over last_12_weeks as restore_168_above_min_12w,
        count(*) filter (where deployment_days < 1) over last_12_weeks as days_1_below_12w,
        max(deployment_days) filter (where deployment_days < 1) over last_12_weeks as days_1_below_max_12w,
        min(deployment_days) filter (where deployment_days >= 1) over last_12_weeks as days_1_above_min_12w,
        count(*) filter (where deployment_days < 5) over last_12_weeks as days_5_below_12w,
        max(deployment_days) filter (where deployment_days < 5) over last_12_weeks as days_5_below_max_12w,
        min(deployment_days) filter (where deployment_days >= 5) over last_12_weeks as days_5_above_min_12w
    from weekly
    window last_12_weeks as (partition by scope_id order by week_start rows between 11 preceding and current row)
),

graded as (
    select
        windowed.*,
        -- Medians of the window decided against each threshold (macro median_below).
        case
            when not {{ median_below('windowed.weeks_12w', 'windowed.days_5_below_12w', 'windowed.days_5_below_max_12w', 'windowed.days_5_above_min_12w', 5) }} then 'elite'
            when not {{ median_below('windowed.weeks_12w', 'windowed.days_1_below_12w', 'windowed.days_1_below_max_12w', 'windowed.days_1_above_min_12w', 1) }} then 'high'
            -- at least once a month on average: mean >= 12/52, compared without rounding
            when windowed.deployment_days_12w * 52 >= 12 * windowed.weeks_12w then 'medium'
            else 'low'
        end as deployment_frequency_grade,
        case
            when windowed.lead_times_12w = 0 then null
            when {{ median_below('windowed.lead_times_12w', 'windowed.lead_24_below_12w', 'windowed.lead_24_below_max_12w', 'windowed.lead_24_above_min_12w', 24) }} then 'elite'
            when {{ median_below('windowed.lead_times_12w', 'windowed.lead_168_below_12w', 'windowed.lead_168_below_max_12w', 'windowed.lead_168_above_min_12w', 168) }} then 'high'
            when {{ median_below('windowed.lead_times_12w', 'windowed.lead_720_below_12w', 'windowed.lead_720_below_max_12w', 'windowed.lead_720_above_min_12w', 720) }} then 'medium'
            else 'low'
        end as lead_time_grade,
        case
            when windowed.deployments_12w = 0 then null
            when windowed.failed_changes_12w * 100 <= 5 * windowed.deployments_12w then 'elite'
            when windowed.failed_changes_12w * 100 <= 10 * windowed.deployments_12w then 'high'
            when windowed.failed_changes_12w * 100 <= 15 * windowed.deployments_12w then 'medium'
            else 'low'
        end as change_failure_rate_grade,
        case
            when windowed.restores_12w = 0 then null
            when {{ median_below('windowed.restores_12w', 'windowed.restore_1_below_12w', 'windowed.restore_1_below_max_12w', 'windowed.restore_1_above_min_12w', 1) }} then 'elite'
            when {{ median_below('windowed.restores_12w', 'windowed.restore_24_below_12w', 'windowed.restore_24_below_max_12w', 'windowed.restore_24_above_min_12w', 24) }} then 'high'
            when {{ median_below('windowed.restores_12w', 'windowed.restore_168_below_12w', 'windowed.restore_168_below_max_12w', 'windowed.restore_168_above_min_12w', 168) }} then 'medium'
            else 'low'
        end as time_to_restore_grade,
        case when windowed.merged_prs_12w > 0
            then trim_scale(windowed.reviewed_prs_12w::numeric / windowed.merged_prs_12w) end as review_coverage_12w
    from windowed
),

scored as (
    select
        graded.*,
        (
            coalesce(0.25 * {{ grade_points('deployment_frequency_grade') }}, 0)
            + coalesce(0.25 * {{ grade_points('lead_time_grade') }}, 0)
            + coalesce(0.20 * {{ grade_points('change_failure_rate_grade') }}, 0)
            + coalesce(0.15 * {{ grade_points('time_to_restore_grade') }}, 0)
            + coalesce(0.15 * review_coverage_12w * 100, 0)
        ) / nullif(
            case when deployment_frequency_grade is not null then 0.25 else 0 end
            + case when lead_time_grade is not null then 0.25 else 0 end
            + case when change_failure_rate_grade is not null then 0.20 else 0 end
            + case when time_to_restore_grade is not null then 0.15 else 0 end
            + case when review_coverage_12w is not null then 0.15 else 0 end,
            0
        ) as performance_score
    from graded
)

select
    scope_type,
    scope,
    week_start,
    deployments,
    deployment_days,
    median_lead_time_hours,
    case when deployments > 0 then trim_scale(failed_changes::numeric / deployments) end as change_failure_rate,
    failed_changes,
    incidents,
    median_time_to_restore_hours,
    merged_prs,
    case when merged_prs > 0 then trim_scale(reviewed_prs::numeric / merged_prs) end as review_coverage,
    median_pr_size,
    p90_pr_size,
    median_coding_hours,
    median_pickup_hours,
    median_review_hours,
    median_deploy_hours,
    deployment_frequency_grade,
    lead_time_grade,
    change_failure_rate_grade,
    time_to_restore_grade,
    review_coverage_12w,
    performance_score,
    planned_scopes.inputs_hash as _inputs_hash,
    (select max(_source_high_water) from {{ ref('fct_pull_requests') }}) as _pull_requests_high_water,
    deployment_fingerprints.fp_deployments as _deployments_fingerprint,
    incident_fingerprints.fp_incidents as _incidents_fingerprint,
    array[
        {%- for part in dora_window_parts() %}
        {{ part }}::numeric{{ ',' if not loop.last }}
        {%- endfor %}
    ] as _window_parts
from scored
inner join planned_scopes using (scope_id)
left join repository_keys
    on scored.scope_type = 'repository' and repository_keys.repo_full_name = scored.scope
left join deployment_fingerprints
    on deployment_fingerprints.fp_repo_id = repository_keys.repo_id
    and deployment_fingerprints.fp_week = scored.week_start
left join incident_fingerprints
    on incident_fingerprints.fp_repo_id = repository_keys.repo_id
    and incident_fingerprints.fp_week = scored.week_start
where scored.week_start >= planned_scopes.write_from
