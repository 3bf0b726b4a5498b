"""The benchmark segment the Quick Check scores are compared with: chosen through the CLI,
stored in app.settings, read by dbt's dora_benchmarks mart from the DORA 2025 seed."""

from __future__ import annotations

import psycopg2.extras
from click.testing import CliRunner
from test_dbt_models import run_dbt

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.cli.benchmarks import benchmark_group


def _benchmarks(url: str) -> dict[str, dict]:
    with warehouse.connect(url) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("select * from marts.dora_benchmarks")
        return {row["metric"]: dict(row) for row in cur.fetchall()}


def test_benchmark_segment_is_chosen_stored_and_read_by_dbt(database_url, tmp_path):
    runner = CliRunner()
    shown = runner.invoke(benchmark_group, ["show"])
    assert shown.exit_code == 0, shown.output
    assert "benchmark: all industries (DORA 2025 Quick Check)" in shown.output
    assert "technology" in shown.output and "100_to_499_employees" in shown.output

    run_dbt(database_url, "build", "--select", "dora_benchmarks_2025", "dora_benchmarks", target_path=tmp_path / "all")
    everyone = _benchmarks(database_url)
    assert set(everyone) == {"overall", "throughput", "stability", "lead_time", "deployment_frequency",
                             "recovery", "change_fail", "rework"}
    assert float(everyone["overall"]["mean_score"]) == 4.3
    # instability-scale figures are shown as 10 minus the mean, as the Quick Check shows them
    assert float(everyone["stability"]["mean_score"]) == 7.9
    assert float(everyone["change_fail"]["mean_score"]) == 8.1
    assert everyone["overall"]["segment_label"] == "All industries"

    chosen = runner.invoke(benchmark_group, ["set", "--industry", "technology"])
    assert chosen.exit_code == 0, chosen.output
    assert "benchmark: industry: Technology" in chosen.output
    run_dbt(database_url, "build", "--select", "dora_benchmarks", target_path=tmp_path / "technology")
    technology = _benchmarks(database_url)
    assert float(technology["overall"]["mean_score"]) == 4.4
    assert float(technology["rework"]["mean_score"]) == 7.7
    assert {row["segment"] for row in technology.values()} == {"technology"}

    # an industry wins over an organisation size; `default` clears it
    both = runner.invoke(benchmark_group, ["set", "--organization-size", "100_to_499_employees"])
    assert "benchmark: industry: Technology" in both.output
    cleared = runner.invoke(benchmark_group, ["set", "--industry", "default"])
    assert "benchmark: organisation size: 100 to 499 employees" in cleared.output

    bad = runner.invoke(benchmark_group, ["set", "--industry", "retail"])
    assert bad.exit_code != 0
    lines = [line for line in bad.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "unknown industry 'retail'; use one of:" in lines[0] and "technology" in lines[0]
    assert "organisation size: 100 to 499 employees" in runner.invoke(benchmark_group, ["show"]).output
