"""`ghmetrics repos set`: per-repository metric rules (attached to the CLI group by main.py)."""

from __future__ import annotations

import click

from ghmetrics_dagster.metrics import repository_settings as rs


@click.command("set")
@click.argument("repo_full_name", metavar="OWNER/NAME")
@click.option("--deployment-source", type=click.Choice([*rs.DEPLOYMENT_SOURCES, "default"]),
              help="Which events count as production deployments (auto picks the first with data).")
@click.option("--production-environment-regex", metavar="R",
              help="GitHub Deployment environments that are production; `default` resets.")
@click.option("--deploy-workflow-regex", metavar="R",
              help="Workflow names whose runs on the default branch deploy; `default` resets.")
@click.option("--incident-label-regex", metavar="R",
              help="Issue labels that make an incident; `default` resets.")
@click.option("--hotfix-label-regex", metavar="R",
              help="Pull-request labels that make a merged pull request rework (a hotfix); `default` resets.")
@click.option("--hotfix-branch-regex", metavar="R",
              help="Head branches that make a merged pull request rework (a hotfix); `default` resets.")
def repos_set(repo_full_name, deployment_source, production_environment_regex, deploy_workflow_regex,
              incident_label_regex, hotfix_label_regex, hotfix_branch_regex):
    """Sets how OWNER/NAME's deployments, incidents and rework are measured.

    Regexes are Python style; a leading (?i) makes them case-insensitive. The marts follow on
    their next refresh.
    """
    from ghmetrics_dagster.cli.main import _migrated_url

    try:
        stored = rs.set_repository_settings(
            _migrated_url(), repo_full_name, deployment_source, production_environment_regex,
            deploy_workflow_regex, incident_label_regex, hotfix_label_regex, hotfix_branch_regex,
        )
    except rs.SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{stored.repo_full_name}:")
    raw = {field: getattr(stored, field) for field in rs.FIELDS}
    for field, value in stored.effective().items():
        note = "" if raw[field] is not None else "  (default)"
        click.echo(f"  {field.replace('_', '-')}: {value}{note}")
