-- Application tables (DESIGN.md section 3) and the raw landing tables (docs/contracts.md).
create schema if not exists app;
create schema if not exists raw;
create schema if not exists ml;

create table app.users (
    login text primary key,
    display_name text,
    token_ciphertext text,
    created_at timestamptz not null default now()
);

create table app.user_repositories (
    login text not null references app.users (login) on delete cascade,
    repo_full_name text not null,
    primary key (login, repo_full_name)
);

create table app.user_logins (
    id bigserial primary key,
    login text not null,
    logged_in_at timestamptz not null default now()
);
create index user_logins_login_idx on app.user_logins (login, logged_in_at desc);

create table app.repository_settings (
    repo_full_name text primary key,
    deployment_source text check (deployment_source in
        ('auto', 'github_deployments', 'workflow_runs', 'releases', 'merges')),
    production_environment_regex text,
    deploy_workflow_regex text,
    incident_label_regex text,
    updated_at timestamptz not null default now()
);

-- One landing table per GitHub object; `data` is the object as fetched.
create table raw.repositories (
    id text primary key,
    repo_full_name text not null unique,
    data jsonb not null,
    updated_at timestamptz,
    ingested_at timestamptz not null default now()
);

create table raw.pull_requests (
    id text primary key,
    repo_full_name text not null,
    number integer not null,
    data jsonb not null,
    updated_at timestamptz,
    ingested_at timestamptz not null default now()
);
create index pull_requests_repo_idx on raw.pull_requests (repo_full_name, number);

create table raw.pull_request_reviews (
    id text primary key,
    repo_full_name text not null,
    pull_request_id text not null,
    pull_request_number integer not null,
    data jsonb not null,
    updated_at timestamptz,
    ingested_at timestamptz not null default now()
);
create index pull_request_reviews_pr_idx on raw.pull_request_reviews (pull_request_id);

create table raw.pull_request_commits (
    repo_full_name text not null,
    pull_request_number integer not null,
    sha text not null,
    pull_request_id text not null,
    data jsonb not null,
    updated_at timestamptz,
    ingested_at timestamptz not null default now(),
    primary key (repo_full_name, pull_request_number, sha)
);
create index pull_request_commits_pr_idx on raw.pull_request_commits (pull_request_id);

create table raw.deployments (
    id text primary key,
    repo_full_name text not null,
    data jsonb not null,
    updated_at timestamptz,
    ingested_at timestamptz not null default now()
);
create index deployments_repo_idx on raw.deployments (repo_full_name);

create table raw.releases (
    id text primary key,
    repo_full_name text not null,
    data jsonb not null,
    updated_at timestamptz,
    ingested_at timestamptz not null default now()
);
create index releases_repo_idx on raw.releases (repo_full_name);

create table raw.workflow_runs (
    id text primary key,
    repo_full_name text not null,
    data jsonb not null,
    updated_at timestamptz,
    ingested_at timestamptz not null default now()
);
create index workflow_runs_repo_idx on raw.workflow_runs (repo_full_name);

create table raw.issues (
    id text primary key,
    repo_full_name text not null,
    data jsonb not null,
    updated_at timestamptz,
    ingested_at timestamptz not null default now()
);
create index issues_repo_idx on raw.issues (repo_full_name);

-- Makes every stream incremental and resumable (docs/contracts.md).
create table raw.sync_state (
    repo_full_name text not null,
    stream text not null,
    watermark timestamptz,
    cursor text,
    etag text,
    etag_token_fingerprint text,
    last_success_at timestamptz,
    last_error text,
    rows_total bigint not null default 0,
    updated_at timestamptz not null default now(),
    primary key (repo_full_name, stream)
);

-- Outputs of the ML and LLM assets.
create table ml.insights (
    login text not null,
    scope_type text not null,
    scope text not null,
    week_start date not null,
    predicted_lead_time_hours numeric,
    predicted_performance_score numeric,
    anomaly_score numeric,
    is_anomaly boolean not null default false,
    anomaly_metric text,
    model_version text,
    created_at timestamptz not null default now(),
    primary key (login, scope_type, scope, week_start)
);

create table app.summaries (
    id bigserial primary key,
    login text not null,
    generated_at timestamptz not null default now(),
    provider text not null,
    model text,
    text text not null,
    input_tokens integer not null default 0,
    output_tokens integer not null default 0,
    cost_usd numeric not null default 0,
    latency_ms integer,
    cache_hit boolean not null default false,
    grounded boolean not null,
    run_id text
);
create index summaries_login_idx on app.summaries (login, generated_at desc);

create table app.llm_cache (
    request_sha256 text primary key,
    response text not null,
    provider text not null,
    model text not null,
    input_tokens integer not null default 0,
    output_tokens integer not null default 0,
    tokens integer not null default 0,
    created_at timestamptz not null default now()
);
