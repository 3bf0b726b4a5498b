"""Production configuration: the instance files, S3 (moto server on 127.0.0.1) and compose."""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import dagster as dg
import numpy as np
import pytest
import yaml
from conftest import env_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BUCKET = "ghmetrics-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3(monkeypatch):
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "GHMETRICS_S3_BUCKET": BUCKET,
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.stop()


def _instance_env(monkeypatch, database_url: str) -> None:
    parts = urlsplit(database_url)
    monkeypatch.setenv("DAGSTER_PG_HOST", parts.hostname or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(parts.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_USER", parts.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", parts.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", parts.path.lstrip("/"))


@dg.asset
def chatty_asset() -> int:
    print("hello from the compute log of chatty_asset")
    return 1


def test_production_instance_writes_compute_logs_to_s3(database_url, s3, monkeypatch, tmp_path):
    if not urlsplit(database_url).hostname:
        pytest.skip("the production instance file connects over TCP; set GHMETRICS_TEST_DATABASE_URL")
    _instance_env(monkeypatch, database_url)
    shutil.copyfile(DEPLOY / "dagster.production.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = dg.materialize([chatty_asset], instance=instance)
        assert result.success
        assert instance.get_run_by_id(result.run_id) is not None  # stored in Postgres
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix="dagster-compute-logs/").get("Contents", [])
    bodies = [s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read().decode() for o in objects]
    assert any("hello from the compute log of chatty_asset" in body for body in bodies), [o["Key"] for o in objects]


def test_ecs_instance_file_configures_the_ecs_launcher(database_url, s3, monkeypatch):
    config = yaml.safe_load((DEPLOY / "dagster.ecs.yaml").read_text())
    assert config["run_launcher"]["class"] == "EcsRunLauncher"
    production = yaml.safe_load((DEPLOY / "dagster.production.yaml").read_text())
    # Everything but the launcher is the production file's.
    assert {k: v for k, v in config.items() if k != "run_launcher"} == production


def test_mlflow_stores_a_model_artifact_in_s3_and_loads_it_back(s3, tmp_path):
    import mlflow
    from sklearn.ensemble import RandomForestRegressor

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = mlflow.create_experiment("s3-artifacts", artifact_location=f"s3://{BUCKET}/mlflow")
    features = np.arange(40, dtype=float).reshape(20, 2)
    target = features.sum(axis=1)
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(features, target)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        info = mlflow.sklearn.log_model(model, name="model", skops_trusted_types=["sklearn.tree._tree.Tree"])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="mlflow/").get("Contents", [])]
    assert any(key.endswith("MLmodel") for key in keys), keys
    loaded = mlflow.sklearn.load_model(info.model_uri)
    assert np.allclose(loaded.predict(features), model.predict(features))
    assert run.info.artifact_uri.startswith(f"s3://{BUCKET}/mlflow")


def _env_names_read_by(instance_file: Path) -> set[str]:
    return set(re.findall(r"env:\s*([A-Z0-9_]+)", instance_file.read_text()))


def test_compose_services_provide_what_the_instance_files_read():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    needed = _env_names_read_by(DEPLOY / "dagster.production.yaml")
    ecs = yaml.safe_load((DEPLOY / "dagster.ecs.yaml").read_text())
    needed |= set(ecs["run_launcher"]["config"]["env_vars"])
    assert {"DAGSTER_PG_HOST", "DAGSTER_PG_PASSWORD", "GHMETRICS_S3_BUCKET"} <= needed
    for name in ("code", "webserver", "daemon"):
        environment = services[name]["environment"]
        missing = needed - set(environment)
        assert not missing, f"service {name} lacks {missing}"
        assert environment["GHMETRICS_INSTANCE"] in ("production", "ecs")
        # The Dagster storage database is created by the Postgres init script.
        assert environment["DAGSTER_PG_DB"] in (DEPLOY / "postgres-init.sql").read_text()
    assert services["webserver"]["command"][0] == "dagster-webserver"
    web = services["web"]
    assert web["command"][:2] == ["ghmetrics", "web"] and "/healthz" in " ".join(web["healthcheck"]["test"])
    assert {"GHMETRICS_OAUTH_CLIENT_ID", "GHMETRICS_OAUTH_CLIENT_SECRET", "GHMETRICS_SECRET_KEY",
            "GHMETRICS_DATABASE_URL"} <= set(web["environment"])
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["host"] == "code"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER ghmetrics" in dockerfile and "HEALTHCHECK" in dockerfile
    for variant in ("dagster.production.yaml", "dagster.ecs.yaml"):
        assert variant in dockerfile


def test_reports_are_published_to_s3_when_configured(s3, monkeypatch, tmp_path):
    from ghmetrics_dagster.summaries import publish

    html = tmp_path / "alice.html"
    html.write_text("<html><body>report</body></html>")
    data = tmp_path / "alice.json"
    data.write_text('{"login": "alice"}')
    monkeypatch.delenv("GHMETRICS_REPORTS_URI", raising=False)
    assert publish.publish_reports([html, data], env_settings().reports_uri) == []  # local only unless configured
    monkeypatch.setenv("GHMETRICS_REPORTS_URI", f"s3://{BUCKET}/reports")
    uris = publish.publish_reports([html, data], env_settings().reports_uri)
    assert uris == [f"s3://{BUCKET}/reports/alice.html", f"s3://{BUCKET}/reports/alice.json"]
    stored = s3.get_object(Bucket=BUCKET, Key="reports/alice.html")
    assert stored["Body"].read() == html.read_bytes()
    assert stored["ContentType"] == "text/html"
    monkeypatch.setenv("GHMETRICS_REPORTS_URI", "/var/reports")
    with pytest.raises(ValueError, match="not an s3:// URI"):
        publish.publish_reports([html], env_settings().reports_uri)
