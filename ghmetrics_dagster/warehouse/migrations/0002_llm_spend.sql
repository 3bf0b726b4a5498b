-- LLM spend ledger: the per-day budget spans runs and processes, so it lives in Postgres.
-- A call reserves its worst-case cost before it is made (state 'reserved') and settles to
-- the billed cost from the provider's usage fields afterwards (state 'settled').
create table app.llm_spend (
    id bigserial primary key,
    day date not null default (now() at time zone 'utc')::date,
    run_id text,
    provider text not null,
    model text not null,
    cost_usd numeric not null,
    state text not null check (state in ('reserved', 'settled')),
    created_at timestamptz not null default now()
);
create index llm_spend_day_idx on app.llm_spend (day);
