"""A failed run posts exactly one Slack-compatible message to a local webhook receiver."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

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


def test_failed_run_posts_exactly_one_message(receiver, monkeypatch, tmp_path):
    url, received = receiver
    monkeypatch.setenv("GHMETRICS_ALERT_WEBHOOK_URL", url)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        # Evaluate the sensor the way the daemon does: ticks that carry a cursor over the event
        # log. The first tick only starts watching; the failure comes after it.
        defs = dg.Definitions(assets=[doomed_asset], sensors=[run_failure_alert_sensor])
        cursor = None
        for _ in range(3):
            if _ == 1:
                result = dg.materialize([doomed_asset], instance=instance, raise_on_error=False)
                assert not result.success
            # Contexts are closed so the instance they open does not outlive the test.
            with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as context:
                tick = run_failure_alert_sensor.evaluate_tick(context)
            cursor = tick.cursor
    assert len(received) == 1
    message = received[0]
    assert "doomed_asset" in message["text"] and result.run_id in message["text"]
    assert "GitHub said no" in message["text"]
    assert SECRET not in json.dumps(message)
    assert message["blocks"][0]["type"] == "section"
