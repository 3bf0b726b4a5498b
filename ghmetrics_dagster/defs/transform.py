"""dbt models as Dagster assets: staging -> intermediate -> marts in the warehouse.

Model asset keys are `[schema, model]` (e.g. `["marts", "fct_dora_weekly"]`); the sources are
linked to the ingestion assets in dbt_project/models/staging/_github__sources.yml. dbt tests
become asset checks. dagster-dbt needs a manifest: `prepare_dbt_project()` writes it (tests,
the CLI and the Docker build call it; `dagster dev` prepares by itself), and it is never
parsed at import time: `build_defs` reads it when the definitions are built.
"""


import contextlib
import datetime as dt
import functools
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.defs.resources import WarehouseResource
from ghmetrics_dagster.warehouse import app_data, connect
from ghmetrics_dagster.warehouse.dbt_env import DBT_PROJECT_DIR, DEFAULT_STATEMENT_TIMEOUT, dbt_env

DBT_THREADS = 4


@functools.cache
def dbt_project(project_dir: Path = DBT_PROJECT_DIR) -> DbtProject:
    return DbtProject(project_dir=project_dir, profiles_dir=project_dir)


@contextlib.contextmanager
def dbt_connection(url: str, statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT) -> Iterator[None]:
    """dbt_project/profiles.yml's connection variables for `url`, for the dbt processes started
    inside the block. dagster-dbt builds a dbt process's environment from os.environ (it takes
    no other), so they are set only while the command starts and removed after, never left in
    this process for others to inherit (they hold the database password)."""
    values = dbt_env(url, threads=DBT_THREADS, statement_timeout=statement_timeout)
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dbt_executable() -> str:
    """dbt from this interpreter's environment (its bin/ is not on PATH unless activated)."""
    beside = os.path.join(os.path.dirname(sys.executable), "dbt")
    return beside if os.path.exists(beside) else (shutil.which("dbt") or "dbt")


def prepare_dbt_project(database_url: str | None = None, project_dir: Path = DBT_PROJECT_DIR) -> str:
    """Parses the dbt project into target/manifest.json; returns the manifest path.

    What `DbtProject.preparer.prepare` does (the project has no packages), with the dbt
    executable found even when the virtualenv is not activated. Given the warehouse URL the
    runs will use, the parse is made with the same profile, so that each run's dbt reuses it
    (partial parsing) instead of parsing the whole project again (4 s).
    """
    project = dbt_project(project_dir)
    with dbt_connection(database_url) if database_url else contextlib.nullcontext():
        invocation = DbtCliResource(project_dir=project, dbt_executable=dbt_executable()).cli(
            ["parse", "--quiet"], target_path=project.target_path
        )
    invocation.wait()
    return str(project.manifest_path)


# The refresh promise: a user's marts are at most a day old (the nightly wave) plus an hour
# (a login refreshes data older than the TTL, 60 min by default).
MARTS_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=25))


class GhmetricsDbtTranslator(DagsterDbtTranslator):
    """Models keyed `[schema, model]`; sources keep the keys their YAML meta gives; the marts
    the waves build carry the refresh promise as a freshness policy."""

    def get_asset_spec(self, manifest, unique_id, project):
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id, {})
        built_by_waves = node.get("config", {}).get("materialized") in ("table", "incremental")
        if node.get("resource_type") == "model" and node.get("schema") == "marts" and built_by_waves:
            spec = spec.replace_attributes(freshness_policy=MARTS_FRESHNESS)
        return spec

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "snapshot", "seed"):
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "transform"

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project):
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        # Generic dbt tests carry no description: say what the check asserts.
        return spec._replace(description=describe_dbt_test(manifest["nodes"].get(unique_id, {})))


def describe_dbt_test(test: Mapping[str, Any]) -> str:
    """What a dbt test asserts, in words, from its node in the manifest."""
    if test.get("description"):
        return test["description"]
    meta = test.get("test_metadata") or {}
    kwargs = meta.get("kwargs") or {}
    column = kwargs.get("column_name") or test.get("column_name")
    name = meta.get("name")
    if name == "not_null":
        return f"Every row has a {column}."
    if name == "unique":
        return f"No two rows share a {column}."
    if name == "accepted_values":
        return f"{column} is one of: {', '.join(map(str, kwargs.get('values', [])))}."
    if name == "relationships":
        target = str(kwargs.get("to", "")).removeprefix("ref('").removesuffix("')")
        return f"Every {column} exists as {kwargs.get('field')} in {target}."
    if name == "unique_combination_of_columns":
        columns = kwargs.get("columns") or kwargs.get("combination_of_columns") or []
        return f"No two rows share the same {', '.join(columns)}."
    if name == "columns_between":
        ranges = []
        for name_, (low, high) in (kwargs.get("bounds") or {}).items():
            if low is not None and high is not None:
                ranges.append(f"{name_} between {low} and {high}")
            else:
                ranges.append(f"{name_} " + (f"at least {low}" if low is not None else f"at most {high}"))
        return "Every present value lies in its range: " + "; ".join(ranges) + "."
    return f"dbt test {test.get('name', '')}."


VIEWS_SELECTOR = "views"
WAVE_SELECTOR = "wave"
DBT_ASSETS_NAME = "ghmetrics_dbt_models"


class DbtBuildConfig(dg.Config):
    """Set by the nightly wave: rebuild the incremental marts from scratch."""

    full_refresh: bool = False


def _manifest_path(project_dir: Path = DBT_PROJECT_DIR):
    project = dbt_project(project_dir)
    if not project.manifest_path.exists():
        # A fresh checkout: parse once (about 4 s, no database needed), so that every entry
        # point (`dagster dev`, `dg check defs`, a test) loads with nothing prepared.
        prepare_dbt_project(project_dir=project_dir)
    return project.manifest_path


def _translator() -> GhmetricsDbtTranslator:
    # Source tests too: run by the wave (indirect selection), they would otherwise be logged as
    # observations with a warning each, 19 per wave.
    return GhmetricsDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True,
                                                                        enable_source_tests_as_checks=True))


def missing_views(url: str, project_dir: Path = DBT_PROJECT_DIR) -> list[str]:
    """View models (the `views` selector) that the warehouse lacks (a new database)."""
    import json

    manifest = json.loads(_manifest_path(project_dir).read_text())
    wanted = [
        (node["schema"], node["name"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"].get("materialized") == "view"
    ]
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select schemaname, viewname from pg_views where schemaname = any(%s)",
                    (sorted({schema for schema, _ in wanted}),))
        present = set(cur.fetchall())
    return [f"{schema}.{name}" for schema, name in wanted if (schema, name) not in present]


INCREMENTAL_FINGERPRINT = "dbt_incremental_code"


@functools.cache  # the manifest the assets were built from: read once per process, not per wave
def incremental_code_fingerprint(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """A hash of the incremental models' code and the project's macros, from the manifest."""
    import hashlib
    import json

    manifest = json.loads(_manifest_path(project_dir).read_text())
    parts = sorted(
        f"{node_id}:{node['checksum']['checksum']}"
        for node_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["config"].get("materialized") == "incremental"
    ) + sorted(
        f"{macro_id}:{hashlib.sha256(macro['macro_sql'].encode()).hexdigest()}"
        for macro_id, macro in manifest["macros"].items()
        if macro.get("package_name") == manifest["metadata"].get("project_name", "ghmetrics")
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def build_views(dbt: DbtCliResource, database_url: str, statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT) -> None:
    """`dbt build --selector views`: the views and their tests, as when the project is deployed
    (`ghmetrics init`, `ui`, `demo`, the image's entrypoint) or a wave finds a new database."""
    # Cautious: a test that also reads a wave model (a relationship) waits for the wave.
    with dbt_connection(database_url, statement_timeout):
        invocation = dbt.cli(["build", "--selector", VIEWS_SELECTOR, "--indirect-selection", "cautious"])
    invocation.wait()


def dbt_resource(project_dir: Path = DBT_PROJECT_DIR) -> "GhmetricsDbtCliResource":
    return GhmetricsDbtCliResource(project_dir=dbt_project(project_dir), dbt_executable=dbt_executable())


@functools.cache
def dbt_models_assets(project_dir: Path = DBT_PROJECT_DIR, statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT
                      ) -> dg.AssetsDefinition:
    """Every dbt model, views included, so that the step depends on the ingestion assets; a
    wave builds only the `wave` selector: the views stay as deployed and are not reported."""

    @dbt_assets(
        manifest=_manifest_path(project_dir),
        project=dbt_project(project_dir),
        name=DBT_ASSETS_NAME,
        # One dbt build at a time across all runs (pool limit 1 in dagster.yaml): two builds
        # creating the same relations fail with "relation already exists".
        pool="dbt",
        retry_policy=dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL),
        dagster_dbt_translator=_translator(),
    )
    def ghmetrics_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig,
                             warehouse: WarehouseResource):
        url = warehouse.url()
        missing = missing_views(url, project_dir)
        if missing:  # a new database: deploy the views first (outside this asset's events)
            context.log.info(f"building {len(missing)} missing views first")
            build_views(dbt, url, statement_timeout)
        code = incremental_code_fingerprint(project_dir)
        full_refresh = config.full_refresh
        with connect(url) as conn, conn.cursor() as cur:
            built_from = app_data.read_settings(cur, [INCREMENTAL_FINGERPRINT]).get(INCREMENTAL_FINGERPRINT)
        if not full_refresh and built_from != code:
            # New columns or rules in an incremental model: an incremental run would fail on
            # the stored table (on_schema_change='fail') or keep stale weeks.
            context.log.info("the incremental models' code changed since they were built: rebuilding them")
            full_refresh = True
        args = ["build", "--selector", WAVE_SELECTOR] + (["--full-refresh"] if full_refresh else [])
        with dbt_connection(url, statement_timeout):
            invocation = dbt.cli(args, context=context)
        for event in invocation.stream():
            yield with_table_metadata(context, url, event)
        with connect(url) as conn, conn.cursor() as cur:
            app_data.write_settings(cur, {INCREMENTAL_FINGERPRINT: code})

    return ghmetrics_dbt_models


def with_table_metadata(context: dg.AssetExecutionContext, url: str, event):
    """A marts table's materialization with its columns and their types (`dagster/column_schema`)
    and its row count (`dagster/row_count`), as the asset page shows them. dagster-dbt's
    fetch_column_metadata names the database the manifest was parsed against (the image parses
    at build time) and fails on any other; fetch_row_counts would count every view too."""
    if not isinstance(event, dg.Output):
        return event
    key = context.asset_key_for_output(event.output_name)
    if key.path[0] != "marts":
        return event
    table = key.path[-1]
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'marts' and table_name = %s order by ordinal_position",
            (table,),
        )
        columns = cur.fetchall()
        if not columns:
            return event
        cur.execute(f'select count(*) from marts."{table}"')
        rows = cur.fetchone()[0]
    schema = dg.TableSchema(columns=[dg.TableColumn(name, data_type) for name, data_type in columns])
    return event.with_metadata({**event.metadata, "dagster/column_schema": schema, "dagster/row_count": rows})


class GhmetricsDbtCliResource(DbtCliResource):
    """dagster-dbt's resource, told dbt's version instead of asking `dbt --version`.

    dagster-dbt runs `dbt --version` (2.4 s here) in every run to learn whether dbt is dbt-core;
    the project pins dbt-core, so the installed package says it. That is 2.4 s of every wave.
    """

    @functools.cached_property
    def _cli_version(self):
        from importlib.metadata import version as installed

        from packaging import version

        return version.parse(installed("dbt-core"))


def build_defs(project_dir: Path, statement_timeout: str) -> dg.Definitions:
    """The dbt assets and their resource; reads the manifest, so built when the definitions load."""
    return dg.Definitions(assets=[dbt_models_assets(project_dir, statement_timeout)],
                          resources={"dbt": dbt_resource(project_dir)})


if __name__ == "__main__":
    print(prepare_dbt_project())
