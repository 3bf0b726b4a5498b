{#- Shared expressions for the metric rules of docs/contracts.md. -#}

{#- Hours from `start_ts` to `end_ts` as numeric, negative spans clamped to 0; null if either is null. -#}
{% macro hours_between(start_ts, end_ts) -%}
    {#- greatest() skips nulls, so a null span needs its own case -#}
    (case when ({{ start_ts }}) is not null and ({{ end_ts }}) is not null
        then trim_scale(greatest(extract(epoch from ({{ end_ts }}) - ({{ start_ts }})) / 3600, 0)) end)
{%- endmacro %}

{#- Monday of the UTC week holding `ts`. -#}
{% macro week_start(ts) -%}
    (date_trunc('week', ({{ ts }}) at time zone 'UTC'))::date
{%- endmacro %}

{#- The UTC calendar date of `ts`. -#}
{% macro utc_date(ts) -%}
    (({{ ts }}) at time zone 'UTC')::date
{%- endmacro %}

{#- Settings regexes are Python style; a leading (?i) means case-insensitive, which
    Postgres spells as the ~* operator instead of an inline flag. -#}
{% macro regex_matches(value, pattern) -%}
    (case
        when left({{ pattern }}, 4) = '(?i)' then ({{ value }}) ~* substr({{ pattern }}, 5)
        else ({{ value }}) ~ ({{ pattern }})
    end)
{%- endmacro %}

{#- Bots: GraphQL typename Bot, or a login ending in [bot]. A null author (ghost) is not a bot. -#}
{% macro is_bot(author_json) -%}
    coalesce(({{ author_json }}) ->> '__typename' = 'Bot' or ({{ author_json }}) ->> 'login' like '%[bot]', false)
{%- endmacro %}

{#- Points of a DORA grade for the performance score. -#}
{% macro grade_points(grade) -%}
    (case {{ grade }} when 'elite' then 100 when 'high' then 75 when 'medium' then 50 when 'low' then 25 end)
{%- endmacro %}

{#- The login of an actor: GraphQL names an app `dependabot` where REST and the web say
    `dependabot[bot]`; the marts use the latter so that a bot reads the same everywhere.
    Null (the deleted user) stays null. -#}
{% macro actor_login(actor_json) -%}
    (case
        when ({{ actor_json }}) ->> '__typename' = 'Bot' and ({{ actor_json }}) ->> 'login' not like '%[bot]'
            then (({{ actor_json }}) ->> 'login') || '[bot]'
        else ({{ actor_json }}) ->> 'login'
    end)
{%- endmacro %}

{#- Per-week parts that decide, over any set of weeks, whether the median of the pooled
    values is below `threshold` without pooling the values: how many there are, how many are
    below, the largest below and the smallest at or above. Summed (counts) and maxed/mined
    over a window they give the window's parts. -#}
{% macro median_parts(value, threshold, prefix) -%}
    count({{ value }}) filter (where {{ value }} < {{ threshold }}) as {{ prefix }}_below,
    max({{ value }}) filter (where {{ value }} < {{ threshold }}) as {{ prefix }}_below_max,
    min({{ value }}) filter (where {{ value }} >= {{ threshold }}) as {{ prefix }}_above_min
{%- endmacro %}

{#- percentile_cont(0.5) < threshold, from the parts: with n values of which `below` are
    under the threshold, the median (the middle value, or the mean of the two middle ones)
    is below it when more than half are, not when fewer than half are, and for an even n
    with exactly half below when the two middle values (the largest below, the smallest
    above) average below it. -#}
{% macro median_below(n, below, below_max, above_min, threshold) -%}
    (case
        when {{ n }} % 2 = 1 then 2 * {{ below }} >= {{ n }} + 1
        when 2 * {{ below }} >= {{ n }} + 2 then true
        when 2 * {{ below }} <= {{ n }} - 2 then false
        else {{ below_max }} + {{ above_min }} < 2 * {{ threshold }}
    end)
{%- endmacro %}

{#- Quick Check band 1..6 of a duration in hours (lead time, failed deployment recovery time;
    docs/dora.md): more than six months (182.5 days) .. less than one hour. Null stays null. -#}
{% macro quick_check_hours_band(hours) -%}
    (case
        when ({{ hours }}) is null then null
        when ({{ hours }}) < 1 then 6
        when ({{ hours }}) < 24 then 5
        when ({{ hours }}) < 168 then 4
        when ({{ hours }}) < 720 then 3
        when ({{ hours }}) < 4380 then 2
        else 1
    end)
{%- endmacro %}

{#- The mean of the columns that are not null; null when all are. -#}
{% macro mean_of_present(columns) -%}
    trim_scale((
        {%- for column in columns %}coalesce({{ column }}, 0){{ ' + ' if not loop.last }}{% endfor -%}
    )::numeric / nullif(
        {%- for column in columns %}(case when {{ column }} is not null then 1 else 0 end){{ ' + ' if not loop.last }}{% endfor -%}
    , 0))
{%- endmacro %}
