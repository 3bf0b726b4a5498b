-- Objects from GitHub whose shape or types are wrong: kept aside with the reason instead of
-- failing their repository's sync or, once stored, every user's dbt build.
create table if not exists raw.quarantine (
    repo_full_name text not null,
    stream text not null,
    object_key text not null,  -- the object's id, or a hash of it when the id is unusable
    reason text not null,
    data jsonb,
    ingested_at timestamptz not null default now(),
    primary key (repo_full_name, stream, object_key)
);

-- Casts for the staging models that give null instead of failing the build on a bad value.
-- Plain SQL with a regular-expression guard, so the planner inlines them (no per-row
-- exception block).
create or replace function raw.try_integer(value text) returns integer
language sql immutable parallel safe as $$
    select case when value ~ '^\s*[-+]?[0-9]{1,9}\s*$' then value::integer end
$$;

create or replace function raw.try_boolean(value text) returns boolean
language sql immutable parallel safe as $$
    select case when lower(value) in ('true', 'false') then value::boolean end
$$;

-- ISO 8601 with a valid calendar date (2026-02-30 is null, not an error). Nested CASEs: SQL
-- does not promise to evaluate AND left to right, and the date arithmetic needs the regex first.
create or replace function raw.try_timestamptz(value text) returns timestamptz
language sql stable parallel safe as $$
    select case
        when value ~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?)?(Z|z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?$'
        then case
            when substr(value, 1, 4)::integer >= 1
                 and substr(value, 9, 2)::integer <= extract(day from make_date(greatest(substr(value, 1, 4)::integer, 1),
                     substr(value, 6, 2)::integer, 1) + interval '1 month' - interval '1 day')
            then value::timestamptz
        end
    end
$$;
