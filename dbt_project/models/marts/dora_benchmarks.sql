-- DORA's 2025 Quick Check benchmarks of the chosen segment, one row per metric, on the score
-- scale (higher is better): instability-scale figures are shown as 10 minus the mean, as the
-- Quick Check shows them (docs/dora.md). The segment is the industry chosen with
-- `ghmetrics benchmark set`, else the organisation size, else all industries; a metric the
-- segment lacks comes from all industries.
with benchmarks as (
    select * from {{ ref('dora_benchmarks_2025') }}
),

choice as (
    select
        max(value) filter (where name = 'benchmark_industry') as industry,
        max(value) filter (where name = 'benchmark_organization_size') as organization_size
    from {{ source('app', 'settings') }}
),

chosen as (
    select benchmarks.*
    from benchmarks
    cross join choice
    where (benchmarks.segment_type = 'industry' and benchmarks.segment = choice.industry)
        or (choice.industry is null and benchmarks.segment_type = 'organization_size'
            and benchmarks.segment = choice.organization_size)
),

per_metric as (
    select distinct on (benchmarks.metric)
        benchmarks.segment_type,
        benchmarks.segment,
        benchmarks.segment_label,
        benchmarks.metric,
        benchmarks.mean,
        benchmarks.standard_deviation,
        benchmarks.scale
    from (
        select *, 1 as preference from chosen
        union all
        select *, 2 as preference from benchmarks where segment_type = 'all'
    ) as benchmarks
    order by benchmarks.metric, benchmarks.preference
),

renamed as (
    select
        case metric
            when 'instability' then 'stability'
            when 'change_fail_rate' then 'change_fail'
            when 'rework_rate' then 'rework'
            when 'failure_recovery' then 'recovery'
            else metric
        end as metric,
        segment_type,
        segment,
        segment_label,
        case when scale = 'instability' then 10 - mean else mean end as mean_score,
        standard_deviation,
        mean as published_mean,
        scale as published_scale
    from per_metric
)

select * from renamed
