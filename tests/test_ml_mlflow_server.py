"""A real `mlflow server` (127.0.0.1, free port, sqlite backend in tmp): train through it, then
read both registered models and their champion alias back through its REST API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import env_settings

from ml import registry, synthetic, training
from ml.policy import TrainingPolicy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts")],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MLFLOW_TRACKING_URI": ""},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("mlflow server did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_models_trained_through_a_server_are_listed_with_their_champion(mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.delenv("GHMETRICS_MLFLOW_ARTIFACT_ROOT", raising=False)
    store = training.store_for(env_settings())
    assert store.tracking_uri == mlflow_server and store.artifact_root is None  # the server keeps artifacts

    frame, labels = synthetic.weekly_features(scopes=12, weeks=30, seed=11)
    perf = training.train_performance(frame, store, policy=TrainingPolicy(), run_id="server-run")
    anom = training.train_anomaly(frame, store, policy=TrainingPolicy(), labels=labels, run_id="server-run")
    assert perf.promoted and anom.promoted

    found = requests.get(f"{mlflow_server}/api/2.0/mlflow/registered-models/search", timeout=10)
    found.raise_for_status()
    by_name = {m["name"]: m for m in found.json()["registered_models"]}
    assert set(by_name) >= {registry.PERFORMANCE, registry.ANOMALY}
    for name, outcome in ((registry.PERFORMANCE, perf), (registry.ANOMALY, anom)):
        aliases = {a["alias"]: a["version"] for a in by_name[name].get("aliases", [])}
        assert aliases["champion"] == outcome.version
        version = requests.get(f"{mlflow_server}/api/2.0/mlflow/registered-models/alias",
                               params={"name": name, "alias": "champion"}, timeout=10)
        version.raise_for_status()
        tags = {t["key"]: t["value"] for t in version.json()["model_version"]["tags"]}
        assert tags[registry.TAG_RUN_ID] == "server-run"
        assert tags[registry.TAG_SAMPLES] == str(len(frame))

    # The champion loads back through the server's artifact proxy and predicts.
    model = registry.load(registry.PERFORMANCE)
    from ml import performance

    forecasts = performance.predict_latest(model, frame)
    assert forecasts["predicted_lead_time_hours"].notna().all()
