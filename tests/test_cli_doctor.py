"""`ghmetrics doctor` against a real warehouse and the sandbox; the nightly schedule."""

from __future__ import annotations

import dagster as dg
from click.testing import CliRunner

from ghmetrics_dagster.cli import main
from ghmetrics_dagster.defs.partitions import users_partitions
from ghmetrics_dagster.defs.users import nightly_refresh_schedule
from ghmetrics_dagster.sandbox.server import run_sandbox


def test_doctor_reports_each_service_with_secrets_masked(database_url, monkeypatch):
    with run_sandbox(repos=1, prs_per_repo=10) as sandbox:
        token = sandbox.tokens[0]
        monkeypatch.setenv("GHMETRICS_GITHUB_API_URL", sandbox.rest_url)
        monkeypatch.setenv("GITHUB_TOKEN", token)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-" + "k" * 40)
        result = CliRunner().invoke(main, ["doctor"])
        assert result.exit_code == 0, result.output
        assert "[ok  ] warehouse" in result.output
        assert "[ok  ] GitHub: token ghp_" in result.output and "REST calls left" in result.output
        assert "[ok  ] MLflow" in result.output and "[ok  ] LLM: OpenAI key sk-t" in result.output
        assert token not in result.output and "k" * 40 not in result.output

        sandbox.revoke(token)
        result = CliRunner().invoke(main, ["doctor"])
        assert result.exit_code == 1
        assert "is invalid or revoked" in result.output and token not in result.output


def test_doctor_fails_on_an_unreachable_warehouse(home, monkeypatch):
    monkeypatch.setenv("GHMETRICS_DATABASE_URL", "postgresql://postgres:hunter2@127.0.0.1:1/none")
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 1
    assert "[FAIL] cannot connect to the warehouse" in result.output
    assert "hunter2" not in result.output


def test_nightly_schedule_requests_one_wave_for_everyone(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        # Contexts are closed so the instance they open does not outlive the test.
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=None) as context:
            assert isinstance(nightly_refresh_schedule(context), dg.SkipReason)
        instance.add_dynamic_partitions(users_partitions.name, ["alice", "bob", "chen"])
        import datetime as dt

        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=dt.datetime(2026, 11, 23, 3, tzinfo=dt.UTC)
        ) as context:
            request = nightly_refresh_schedule(context)
    # One run over every user's partition, with the marts rebuilt from scratch.
    assert request.run_key == "nightly-2026-11-23"
    assert request.tags["dagster/asset_partition_range_start"] == "alice"
    assert request.tags["dagster/asset_partition_range_end"] == "chen"
    assert request.tags["ghmetrics/wave"] and request.tags["ghmetrics/trigger"] == "nightly"
    assert request.run_config == {"ops": {"ghmetrics_dbt_models": {"config": {"full_refresh": True}}}}
