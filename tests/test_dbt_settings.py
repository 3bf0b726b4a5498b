"""Per-repository rules: validation, app.repository_settings and `ghmetrics repos set`; the
dbt_env mapping. That the marts honour the rules is checked against the ground truth in
tests/test_dbt_truth.py (a pinned source, a case-sensitive and a (?i) regex)."""

from __future__ import annotations

import psycopg2.extras
import pytest
from click.testing import CliRunner

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.cli.repos import repos_set
from ghmetrics_dagster.metrics import repository_settings as rs
from ghmetrics_dagster.warehouse.dbt_env import PASSWORD_VAR, dbt_env


def test_dbt_env_maps_tcp_and_unix_socket_urls():
    env = dbt_env("postgresql+psycopg2://ann:s%40cret@db.example.com:6543/metrics?sslmode=require", threads=2)
    assert env["GHMETRICS_DBT_HOST"] == "db.example.com"
    assert env["GHMETRICS_DBT_PORT"] == "6543"
    assert env["GHMETRICS_DBT_USER"] == "ann"
    assert env[PASSWORD_VAR] == "s@cret"
    assert env["GHMETRICS_DBT_DBNAME"] == "metrics"
    assert env["GHMETRICS_DBT_SSLMODE"] == "require"
    assert env["GHMETRICS_DBT_THREADS"] == "2"
    # the embedded pgserver's form: the socket directory in ?host=
    env = dbt_env("postgresql://postgres:@/postgres?host=/tmp/pg socket")
    assert env["GHMETRICS_DBT_HOST"] == "/tmp/pg socket"
    assert env["GHMETRICS_DBT_USER"] == "postgres"
    assert env[PASSWORD_VAR] == ""
    assert env["GHMETRICS_DBT_DBNAME"] == "postgres"
    with pytest.raises(ValueError, match="postgresql://"):
        dbt_env("mysql://root@localhost/db")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"repo_full_name": "not-a-repo"}, "OWNER/NAME"),
        ({"repo_full_name": "acme/api", "deployment_source": "tags"}, "use one of auto, github_deployments"),
        ({"repo_full_name": "acme/api", "deploy_workflow_regex": "deploy("}, "not a valid regex"),
        ({"repo_full_name": "acme/api", "incident_label_regex": "^inc(?i)"}, "leading (?i)"),
        ({"repo_full_name": "acme/api", "production_environment_regex": ""}, "is empty"),
        ({"repo_full_name": "acme/api", "hotfix_label_regex": "hot(fix"}, "--hotfix-label-regex 'hot(fix' is not a valid regex"),
        ({"repo_full_name": "acme/api", "hotfix_branch_regex": r"^hotfix\b"}, "--hotfix-branch-regex"),
    ],
)
def test_invalid_settings_are_refused_with_one_clear_line(kwargs, message):
    with pytest.raises(rs.SettingsError) as info:
        rs.validate(**kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_settings_are_written_updated_and_reset(database_url):
    stored = rs.set_repository_settings(database_url, "acme/api", deployment_source="releases",
                                        incident_label_regex="(?i)^sev[12]$")
    assert stored.deployment_source == "releases"
    assert stored.effective()["incident_label_regex"] == "(?i)^sev[12]$"
    assert stored.effective()["deploy_workflow_regex"] == rs.DEFAULTS["deploy_workflow_regex"]
    # None leaves a value alone; `default` clears it back to null (= the default)
    stored = rs.set_repository_settings(database_url, "acme/api", deploy_workflow_regex="^ship$")
    assert (stored.deployment_source, stored.deploy_workflow_regex) == ("releases", "^ship$")
    stored = rs.set_repository_settings(database_url, "acme/api", deployment_source="default")
    assert stored.deployment_source is None
    assert stored.effective()["deployment_source"] == "auto"
    # a Python regex that Postgres cannot run is refused before it is stored
    with pytest.raises(rs.SettingsError, match="Postgres"):
        rs.set_repository_settings(database_url, "acme/api", deploy_workflow_regex="(?P<name>deploy)")
    assert rs.get_repository_settings(database_url, "acme/api").deploy_workflow_regex == "^ship$"


def test_hotfix_rules_default_are_set_and_reset(database_url):
    stored = rs.get_repository_settings(database_url, "acme/ops")
    assert stored.effective()["hotfix_label_regex"] == "(?i)^hot-?fix$"
    assert stored.effective()["hotfix_branch_regex"] == "(?i)^hot-?fix[/_-]"
    stored = rs.set_repository_settings(database_url, "acme/ops", hotfix_label_regex="(?i)^(hotfix|urgent)$",
                                        hotfix_branch_regex="^release/")
    assert (stored.hotfix_label_regex, stored.hotfix_branch_regex) == ("(?i)^(hotfix|urgent)$", "^release/")
    assert stored.incident_label_regex is None
    stored = rs.set_repository_settings(database_url, "acme/ops", hotfix_branch_regex="default")
    assert stored.hotfix_branch_regex is None and stored.hotfix_label_regex == "(?i)^(hotfix|urgent)$"
    with pytest.raises(rs.SettingsError, match="Postgres"):
        rs.set_repository_settings(database_url, "acme/ops", hotfix_label_regex="(?P<x>hotfix)")
    # the two columns the migration added, null meaning the default
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("select hotfix_label_regex, hotfix_branch_regex from app.repository_settings"
                    " where repo_full_name = 'acme/ops'")
        assert cur.fetchone() == ("(?i)^(hotfix|urgent)$", None)


def test_repos_set_command(database_url):
    runner = CliRunner()
    result = runner.invoke(repos_set, ["acme/web", "--deployment-source", "workflow_runs",
                                       "--deploy-workflow-regex", "(?i)^release$"])
    assert result.exit_code == 0, result.output
    assert "deployment-source: workflow_runs" in result.output
    assert "incident-label-regex: (?i)^(incident|outage|sev[0-9].*)$  (default)" in result.output
    with warehouse.connect(database_url) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("select * from app.repository_settings where repo_full_name = 'acme/web'")
        row = cur.fetchone()
    assert row["deployment_source"] == "workflow_runs" and row["deploy_workflow_regex"] == "(?i)^release$"
    assert row["incident_label_regex"] is None

    bad = runner.invoke(repos_set, ["acme/web", "--incident-label-regex", "[unclosed"])
    assert bad.exit_code != 0
    assert "--incident-label-regex '[unclosed' is not a valid regex" in bad.output
    bad = runner.invoke(repos_set, ["acme/web", "--deployment-source", "tags"])
    assert bad.exit_code != 0 and "tags" in bad.output

    result = runner.invoke(repos_set, ["acme/web", "--hotfix-label-regex", "(?i)^urgent$"])
    assert result.exit_code == 0, result.output
    assert "hotfix-label-regex: (?i)^urgent$\n" in result.output
    assert "hotfix-branch-regex: (?i)^hot-?fix[/_-]  (default)" in result.output
    assert "deployment-source: workflow_runs" in result.output  # the others stay as they were
    result = runner.invoke(repos_set, ["acme/web", "--hotfix-label-regex", "default", "--hotfix-branch-regex", "^hf/"])
    assert "hotfix-label-regex: (?i)^hot-?fix$  (default)" in result.output and "hotfix-branch-regex: ^hf/\n" in result.output
