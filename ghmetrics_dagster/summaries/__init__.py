"""Grounded per-user summaries: an LLM router over OpenAI and Anthropic with failover, a budget,
a cache and a grounding check, a rule-based writer as the last resort, and per-user reports.

Entry points: `service.summarise_user(login, database_url)` (what the Dagster asset runs),
`service.demo_summary()` (for `ghmetrics demo`), `router.Router.from_env(...).summarise(data)`
with `aggregates.load_summary_input(conn, login)`. No Dagster import here.
"""
