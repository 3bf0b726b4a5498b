"""A failed run posts exactly one Slack-compatible message to a local webhook receiver."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from conftest import env_resources

from ghmetrics_dagster.defs.alerts import run_failure_alert_sensor

SECRET = "ghp_" + "A1b2C3d4E5f6G7h8I9j0" * 2


@pytest.fixture
def receiver():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


@dg.asset
def doomed_asset():
    raise ValueError(f"GitHub said no to token {SECRET}")


@dg.definitions
def alert_defs():
    """Loaded when the code location loads, with the webhook its environment has then."""
    return dg.Definitions(assets=[doomed_asset], sensors=[run_failure_alert_sensor],
                          resources={"alerts_webhook": env_resources()["alerts_webhook"]})


def _ticks_around_a_failed_run(tmp_path):
    """Evaluates the sensor the way the daemon does: ticks that carry a cursor over the event
    log. The first tick only starts watching; the failure comes after it; the last finds nothing."""
    ticks = []
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        cursor = None
        for _ in range(3):
            if _ == 1:
                result = dg.materialize([doomed_asset], instance=instance, raise_on_error=False)
                assert not result.success
            # Contexts are closed so the instance they open does not outlive the test.
            with dg.build_sensor_context(resources=env_resources(), instance=instance, cursor=cursor, definitions=alert_defs()) as context:
                ticks.append(run_failure_alert_sensor.evaluate_tick(context))
            cursor = ticks[-1].cursor
    return result, ticks


def test_failed_run_posts_exactly_one_message(receiver, monkeypatch, tmp_path):
    url, received = receiver
    monkeypatch.setenv("GHMETRICS_ALERT_WEBHOOK_URL", url)
    result, ticks = _ticks_around_a_failed_run(tmp_path)
    # The tick that found the failure handled it: no skip reason, one reaction without error.
    assert ticks[1].skip_message is None
    assert [(r.dagster_run.run_id, r.error) for r in ticks[1].dagster_run_reactions] == [(result.run_id, None)]
    assert len(received) == 1
    message = received[0]
    assert "doomed_asset" in message["text"] and result.run_id in message["text"]
    assert "GitHub said no" in message["text"]
    assert SECRET not in json.dumps(message)
    assert message["blocks"][0]["type"] == "section"


NO_WEBHOOK = "no webhook configured (set GHMETRICS_ALERT_WEBHOOK_URL"


def test_without_a_webhook_the_tick_that_finds_a_failed_run_says_why_nothing_was_posted(receiver, monkeypatch,
                                                                                       tmp_path):
    _, received = receiver
    monkeypatch.delenv("GHMETRICS_ALERT_WEBHOOK_URL", raising=False)
    result, ticks = _ticks_around_a_failed_run(tmp_path)
    reason = ticks[1].skip_message
    assert reason.startswith(NO_WEBHOOK)
    assert f"the failure of {result.dagster_run.job_name}, run {result.run_id}, was not posted" in reason
    assert not ticks[1].dagster_run_reactions and not ticks[1].run_requests
    # The cursor moved past the failure: the next tick does not report it again.
    assert ticks[2].cursor == ticks[1].cursor and NO_WEBHOOK not in (ticks[2].skip_message or "")
    assert received == []


@pytest.mark.parametrize("webhook", [False, True])
def test_the_daemon_records_the_reason_on_the_tick(receiver, monkeypatch, tmp_path, webhook):
    """What the UI's tick history shows: the ticks the sensor daemon stores on the instance."""
    import datetime as dt
    import logging

    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.scheduler.instigation import TickStatus
    from dagster._core.test_utils import (
        InProcessTestWorkspaceLoadTarget,
        create_test_daemon_workspace_context,
        freeze_time,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._daemon.sensor import execute_sensor_iteration

    url, received = receiver
    if webhook:
        monkeypatch.setenv("GHMETRICS_ALERT_WEBHOOK_URL", url)
    else:
        monkeypatch.delenv("GHMETRICS_ALERT_WEBHOOK_URL", raising=False)
    origin = LoadableTargetOrigin(python_file=__file__, attribute="alert_defs")
    with (
        dg.instance_for_test(temp_dir=str(tmp_path)) as instance,
        create_test_daemon_workspace_context(
            InProcessTestWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin)), instance
        ) as workspace,
    ):
        start = dt.datetime.now(dt.UTC)
        for minute in range(3):  # past the sensor's 30 s minimum interval each time
            if minute == 1:
                result = dg.materialize([doomed_asset], instance=instance, raise_on_error=False)
            with freeze_time(start + dt.timedelta(minutes=minute)):
                list(execute_sensor_iteration(workspace, logging.getLogger("test_alerts"), None, None))
        (state,) = instance.all_instigator_state()
        ticks = sorted(instance.get_ticks(state.instigator_origin_id, state.selector_id), key=lambda t: t.timestamp)
    assert len(ticks) == 3
    failure_tick = ticks[1]
    if webhook:
        assert failure_tick.status == TickStatus.SUCCESS and not failure_tick.skip_reason
        assert len(received) == 1 and result.run_id in received[0]["text"]
    else:
        assert failure_tick.status == TickStatus.SKIPPED
        assert failure_tick.skip_reason.startswith(NO_WEBHOOK) and result.run_id in failure_tick.skip_reason
        assert received == []
