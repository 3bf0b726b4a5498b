-- Which registered repositories each user's own token can read, recorded at each sync (with no
-- user token, the service token's visibility). A user's scope is app.user_scope: registered and
-- not recorded unreadable, so a repository another user ingested never shows in their metrics.
create table if not exists app.user_repository_access (
    login text not null references app.users (login) on delete cascade,
    repo_full_name text not null,
    readable boolean not null,
    checked_with text not null check (checked_with in ('user token', 'service token')),
    reason text,
    checked_at timestamptz not null default now(),
    primary key (login, repo_full_name)
);

create or replace view app.user_scope as
select r.login, r.repo_full_name
from app.user_repositories r
where not exists (
    select 1 from app.user_repository_access a
    where a.login = r.login and lower(a.repo_full_name) = lower(r.repo_full_name) and not a.readable
);
