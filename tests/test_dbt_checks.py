"""The dbt tests as Dagster asset checks: each says what it asserts."""

from __future__ import annotations

from ghmetrics_dagster.defs.transform import dbt_models_assets, describe_dbt_test, prepare_dbt_project


def test_each_generic_test_is_described_in_words():
    assert describe_dbt_test({"test_metadata": {"name": "not_null", "kwargs": {"column_name": "scope"}}}) == \
        "Every row has a scope."
    assert describe_dbt_test({"test_metadata": {"name": "relationships", "kwargs": {
        "column_name": "deployment_id", "to": "ref('fct_deployments')", "field": "deployment_id"}}}) == \
        "Every deployment_id exists as deployment_id in fct_deployments."
    assert describe_dbt_test({"test_metadata": {"name": "accepted_values", "kwargs": {
        "column_name": "kind", "values": ["issue", "revert"]}}}) == "kind is one of: issue, revert."
    assert describe_dbt_test({"description": "Written by hand.", "test_metadata": {"name": "unique"}}) == "Written by hand."
    assert describe_dbt_test({"test_metadata": {"name": "unique_combination_of_columns", "kwargs": {
        "columns": ["scope_type", "scope", "week_start"]}}}) == "No two rows share the same scope_type, scope, week_start."
    assert describe_dbt_test({"test_metadata": {"name": "columns_between", "kwargs": {
        "bounds": {"prs_12w": [0, None], "coding_share_12w": [0, 1], "dominant_share_change": [-1, 1]}}}}) == (
        "Every present value lies in its range: prs_12w at least 0; coding_share_12w between 0 and 1; "
        "dominant_share_change between -1 and 1.")


def test_every_asset_check_of_the_dbt_models_has_a_description():
    prepare_dbt_project()
    checks = list(dbt_models_assets().check_specs)
    assert len(checks) > 50
    assert all(check.description for check in checks), [c.name for c in checks if not c.description][:5]
