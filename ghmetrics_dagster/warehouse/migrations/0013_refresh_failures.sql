-- Refreshes that failed and wait for their retry, as the login sensor sees them: the dashboard
-- tells a user why their figures are not fresh yet instead of "refreshing" forever.
create table if not exists app.refresh_failures (
    login text primary key references app.users (login) on delete cascade,
    attempts integer not null,
    failed_at timestamptz not null,
    retry_at timestamptz not null,
    reason text not null
);
