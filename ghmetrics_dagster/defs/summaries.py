"""The per-user summary asset: thin wiring over ghmetrics_dagster.summaries."""


import dagster as dg

from ghmetrics_dagster.defs.partitions import users_partitions
from ghmetrics_dagster.defs.resources import LLMResource, ReportsResource, WarehouseResource
from ghmetrics_dagster.defs.transform import MARTS_FRESHNESS
from ghmetrics_dagster.summaries import publish, report
from ghmetrics_dagster.summaries.service import summarise_user


@dg.asset(
    key=["app", "user_summaries"],
    partitions_def=users_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
    deps=[
        dg.AssetKey(["marts", "fct_dora_weekly"]),
        dg.AssetKey(["marts", "fct_pull_requests"]),
        dg.AssetKey(["marts", "dora_benchmarks"]),
        dg.AssetKey(["ml", "insights"]),
    ],
    kinds={"python", "postgres"},
    group_name="summaries",
    # The refresh promise (the nightly wave, plus the login TTL): at most 25 hours old.
    freshness_policy=MARTS_FRESHNESS,
    description=(
        "A grounded summary of the delivery of the user's repositories (the overall Quick Check score "
        "against DORA's 2025 benchmark, DORA's five metrics and their scores) written by the LLM router "
        "(OpenAI/Anthropic when keys are set, else rule-based) into app.summaries, plus an HTML and a JSON "
        "report."
    ),
)
def user_summaries(context: dg.AssetExecutionContext, warehouse: WarehouseResource, llm: LLMResource,
                   reports: ReportsResource) -> dg.MaterializeResult:
    logins = list(context.partition_keys)
    url = warehouse.url()
    failed: dict[str, str] = {}
    outcomes = []
    for login in logins:
        # One user's failure (a provider error, a write error) must not cost the others theirs.
        try:
            router = llm.router(url, context.run.run_id, logger=context.log)
            outcome = summarise_user(login, url, router, reports.directory, run_id=context.run.run_id)
        except Exception as exc:  # noqa: BLE001 - reported below, the run fails after the others
            context.log.error(f"{login}: no summary: {type(exc).__name__}: {exc}")
            failed[login] = f"{type(exc).__name__}: {exc}"
            continue
        outcomes.append(outcome)
        published = publish.publish_reports(
            [outcome.html_path, outcome.json_path, outcome.html_path.parent / report.PLOTLY_FILE], reports.uri
        )
        if outcome.result.budget_exhausted:
            context.log.warning(f"{login}: LLM budget exhausted, rule-based summary used")
        if len(logins) == 1:
            return dg.MaterializeResult(metadata=_summary_metadata(outcome, published))
    if failed:
        raise dg.Failure(
            f"no summary for {len(failed)} of {len(logins)} users: " + "; ".join(f"{k}: {v}" for k, v in failed.items()),
            metadata={"failed": dg.MetadataValue.json(failed)},
        )
    return dg.MaterializeResult(
        metadata={
            "users": len(outcomes),
            "cost_usd": dg.MetadataValue.float(float(sum(o.result.cost_usd for o in outcomes))),
            "grounded": sum(1 for o in outcomes if o.result.grounded),
            "providers": ", ".join(sorted({o.result.provider for o in outcomes})),
            "cache_hits": sum(1 for o in outcomes if o.result.cache_hit),
        }
    )


def _summary_metadata(outcome, published) -> dict:
    result = outcome.result
    cost = f"${result.cost_usd:.6f}"
    header = (
        f"**{result.provider} / {result.model}**, cost {cost}"
        f"{', cache hit' if result.cache_hit else ''}{'' if result.grounded else ', NOT grounded'}"
    )
    notes = "\n".join(f"- {note}" for note in result.notes)
    markdown = f"{header}\n\n{result.text}" + (f"\n\n{notes}" if notes else "")
    return {
        "summary": dg.MetadataValue.md(markdown),
        "provider": result.provider,
        "model": result.model,
        "cost_usd": dg.MetadataValue.float(float(result.cost_usd)),
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "latency_ms": result.latency_ms,
        "cache_hit": result.cache_hit,
        "grounded": result.grounded,
        "budget_exhausted": result.budget_exhausted,
        "tier": result.tier,
        "attempts": dg.MetadataValue.json([a.__dict__ for a in result.attempts]),
        "summary_id": outcome.summary_id,
        "report_html": dg.MetadataValue.path(str(outcome.html_path)),
        "report_json": dg.MetadataValue.path(str(outcome.json_path)),
        **({"report_s3": dg.MetadataValue.json(published)} if published else {}),
    }


defs = dg.Definitions(assets=[user_summaries])
