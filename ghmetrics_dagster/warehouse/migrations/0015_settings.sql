-- Organisation-wide settings written by `ghmetrics benchmark set` (one row per setting; a
-- missing row means the default). dbt reads them through the source app.settings.
create table if not exists app.settings (
    name text primary key,
    value text not null,
    updated_at timestamptz not null default now()
);
