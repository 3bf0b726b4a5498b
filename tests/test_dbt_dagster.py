"""The dbt models as Dagster assets: keys, lineage to ingestion, tests as asset checks, and a
real run in the same run as a user's partition of an ingestion asset (as the login sensor's
job runs it)."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from conftest import env_resources
from test_dbt_models import load_rows, load_users, raw_rows

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.defs.partitions import users_partitions
from ghmetrics_dagster.sandbox import generator
from ghmetrics_dagster.warehouse.dbt_env import DBT_PROJECT_DIR

INGESTION_KEYS = {
    ("raw", name) for name in ("repositories", "pull_requests", "pull_request_reviews", "pull_request_commits",
                               "deployments", "releases", "workflow_runs", "issues")
}


@pytest.fixture(scope="module")
def dbt_assets_defs():
    """The dbt models as one asset definition."""
    from ghmetrics_dagster.defs import transform

    transform.prepare_dbt_project()
    return [transform.dbt_models_assets()]


def test_asset_keys_lineage_and_checks(dbt_assets_defs):
    (models,) = dbt_assets_defs
    keys = {tuple(k.path) for d in dbt_assets_defs for k in d.keys}
    assert {("marts", "fct_dora_weekly"), ("marts", "ml_weekly_features"), ("marts", "fct_pull_requests"),
            ("staging", "stg_github__pull_requests"), ("intermediate", "int_deployments")} <= keys
    upstream = {tuple(k.path) for d in dbt_assets_defs for k in d.dependency_keys} - keys
    assert INGESTION_KEYS <= upstream, INGESTION_KEYS - upstream
    # dbt tests are asset checks of the models they test
    checks = {(tuple(spec.asset_key.path), spec.name) for d in dbt_assets_defs for spec in d.check_specs}
    assert any(key == ("marts", "fct_pull_requests") and "unique" in name for key, name in checks)
    assert any(key == ("marts", "fct_dora_weekly") for key, _ in checks)
    # A run names each test's check result by the test's name: two tests of one model with one
    # name (dbt names a generic test by its arguments' values, not their keys) emit one check
    # twice and fail the run. Such tests need a `name:`.
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    names = [(node["attached_node"], node["name"]) for node in manifest["nodes"].values()
             if node["resource_type"] == "test" and node.get("attached_node")]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


def test_materialise_with_a_users_partition_of_ingestion(dbt_assets_defs, database_url, tmp_path):
    from ghmetrics_dagster.defs import transform

    org = generator.generate(5, repos=4, prs_per_repo=20, weeks=6, users=4)

    # Stands in for the ingestion asset of the user who logged in.
    @dg.asset(key=["raw", "pull_requests"], partitions_def=users_partitions)
    def raw_pull_requests_stand_in() -> None:
        load_rows(database_url, raw_rows(org))
        load_users(database_url, org)

    instance = dg.DagsterInstance.ephemeral()
    login = sorted(org.memberships)[0]
    instance.add_dynamic_partitions("users", [login])
    result = dg.materialize(
        [raw_pull_requests_stand_in, *dbt_assets_defs],
        resources={"dbt": transform.dbt_resource(), "warehouse": env_resources()["warehouse"]},
        instance=instance,
        partition_key=login,
    )
    assert result.success
    materialised = {tuple(e.asset_key.path) for e in result.get_asset_materialization_events()}
    assert ("marts", "fct_dora_weekly") in materialised and ("marts", "dim_users") in materialised
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations)
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from marts.fct_dora_weekly where scope_type = 'user' and scope = %s", (login,))
        assert cur.fetchone()[0] > 0
        cur.execute("select count(*) from marts.fct_dora_weekly")
        rows = cur.fetchone()[0]
    # The asset page shows the mart's columns with their types, its row count and its freshness policy.
    (weekly,) = [e.materialization for e in result.get_asset_materialization_events()
                 if e.asset_key.path == ["marts", "fct_dora_weekly"]]
    assert weekly.metadata["dagster/row_count"].value == rows
    columns = {c.name: c.type for c in weekly.metadata["dagster/column_schema"].value.columns}
    assert columns["week_start"] == "date" and columns["scope"] == "text"
    (models,) = [d for d in dbt_assets_defs if isinstance(d, dg.AssetsDefinition)]
    specs = {spec.key.path[-1]: spec for spec in models.specs}
    assert specs["fct_dora_weekly"].freshness_policy == transform.MARTS_FRESHNESS
    assert specs["stg_github__pull_requests"].freshness_policy is None  # views are as deployed
