-- GitHub Copilot usage metrics reports, per organisation (docs/contracts.md, "Copilot usage
-- metrics"): one row per organisation-day and per organisation-day-user, `data` the report
-- file's record as GitHub wrote it. A day's rows are replaced whenever a report covers it.
create table if not exists raw.copilot_org_days (
    org text not null,
    day date not null,
    data jsonb not null,
    ingested_at timestamptz not null default now(),
    primary key (org, day)
);

create table if not exists raw.copilot_user_days (
    org text not null,
    day date not null,
    user_login text not null,
    data jsonb not null,
    ingested_at timestamptz not null default now(),
    primary key (org, day, user_login)
);

-- As raw.try_integer, for the reports' decimals (median minutes to merge).
create or replace function raw.try_numeric(value text) returns numeric
language sql immutable parallel safe as $$
    select case when value ~ '^\s*[-+]?[0-9]{1,15}(\.[0-9]{1,15})?([eE][-+]?[0-9]{1,3})?\s*$' then value::numeric end
$$;
