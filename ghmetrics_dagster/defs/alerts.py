"""Posts a message to GHMETRICS_ALERT_WEBHOOK_URL (Slack-compatible) when any run fails."""

import dagster as dg

from ghmetrics_dagster.defs.resources import AlertsResource
from ghmetrics_dagster.refresh import alerts


@dg.run_failure_sensor(
    monitor_all_code_locations=True,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts the failing job, asset steps and errors to GHMETRICS_ALERT_WEBHOOK_URL.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts_webhook: AlertsResource):
    # Dagster calls this once per failed run it finds after the cursor; a returned SkipReason
    # becomes that tick's skip reason in the UI's tick history (a tick that finds no failed run
    # never calls it). Returning None marks the failure handled.
    run = context.dagster_run
    url = alerts_webhook.webhook_url
    if not url:
        return dg.SkipReason(alerts.no_webhook_reason(run.job_name, run.run_id))
    failed_steps = [
        (event.step_key or "run", root_cause(event.step_failure_data.error))
        for event in context.get_step_failure_events()
    ]
    if not failed_steps and context.failure_event.message:
        failed_steps = [("run", context.failure_event.message)]
    body = alerts.failure_message(run.job_name, run.run_id, failed_steps, run.tags.get("dagster/partition"))
    alerts.post_webhook(url, body)
    context.log.info(f"posted the failure of run {run.run_id} to the alert webhook")


def root_cause(error) -> str:
    """Dagster wraps the asset's exception; the innermost one says what went wrong."""
    if error is None:
        return ""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


defs = dg.Definitions(sensors=[run_failure_alert_sensor])
