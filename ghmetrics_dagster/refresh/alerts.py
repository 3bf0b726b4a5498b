"""Run-failure notifications as Slack-compatible webhook messages (no Dagster import)."""

from __future__ import annotations

import requests

from ghmetrics_dagster.core.redact import redact


def failure_message(job_name: str, run_id: str, failed_steps: list[tuple[str, str]], partition: str | None) -> dict:
    """A Slack incoming-webhook body: `text` for any client, `blocks` for Slack."""
    where = f" (user {partition})" if partition else ""
    lines = [f"*{step}*: {redact(error)[:500]}" for step, error in failed_steps] or ["the run failed before any step ran"]
    headline = f"ghmetrics run failed: {job_name}{where}, run {run_id}"
    return {
        "text": headline + "\n" + "\n".join(lines),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f":red_circle: {headline}"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
        ],
    }


def no_webhook_reason(job_name: str, run_id: str) -> str:
    """Why a failed run was not posted: the skip reason on the sensor's tick."""
    return (
        "no webhook configured (set GHMETRICS_ALERT_WEBHOOK_URL to a Slack-compatible incoming-webhook URL "
        f"where Dagster runs): the failure of {job_name}, run {run_id}, was not posted"
    )


def post_webhook(url: str, body: dict, timeout: float = 10.0) -> None:
    response = requests.post(url, json=body, timeout=timeout)
    if response.status_code >= 300:
        raise RuntimeError(f"the alert webhook answered HTTP {response.status_code}; check GHMETRICS_ALERT_WEBHOOK_URL")
