"""The repository-setting defaults live in repository_settings.DEFAULTS; dbt's models fill
missing settings from the `default_*` vars of dbt_project.yml, which must say the same."""

import yaml

from ghmetrics_dagster.metrics import repository_settings
from ghmetrics_dagster.warehouse.dbt_env import DBT_PROJECT_DIR


def test_dbt_vars_hold_the_same_defaults():
    dbt_vars = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    from_dbt = {name.removeprefix("default_"): value for name, value in dbt_vars.items() if name.startswith("default_")}
    assert from_dbt == repository_settings.DEFAULTS
