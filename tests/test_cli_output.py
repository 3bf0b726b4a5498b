"""What the command line prints: columns aligned by terminal width, errors in one style."""

from __future__ import annotations

import os

from click.testing import CliRunner
from conftest import env_settings

from ghmetrics_dagster.cli.main import display_width, fit, main


def test_names_are_cut_and_padded_by_terminal_columns():
    assert display_width("陈伟") == 4 and display_width("Björn") == 5
    assert fit("陈伟", 6) == "陈伟  " and display_width(fit("陈伟陈伟陈伟", 5)) == 5
    assert fit("Alice Martin", 5) == "Alice"


def test_every_command_error_is_one_line_starting_with_error(database_url):
    runner = CliRunner()
    for args in (["users", "add", "bad login!"], ["run", "--user", "nobody"], ["repos", "set", "not-a-repo"]):
        result = runner.invoke(main, args)
        lines = result.output.strip().splitlines()
        assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("error: "), (args, result.output)


def test_users_list_keeps_its_columns_with_wide_names(database_url):
    runner = CliRunner()
    assert runner.invoke(main, ["users", "add", "chen", "--display-name", "陈伟"]).exit_code == 0
    assert runner.invoke(main, ["users", "add", "ada", "--display-name", "Ada Lovelace"]).exit_code == 0
    lines = runner.invoke(main, ["users", "list"]).output.splitlines()
    token_columns = {display_width(line[: line.index(" no ")]) for line in lines[1:]}
    assert len(token_columns) == 1, lines


def test_a_finished_step_leaves_one_line_above_the_progress_bar():
    from ghmetrics_dagster.cli.pipeline import step_line

    assert step_line("ghmetrics_dbt_models", 8.04, "succeeded") == "  ✓ ghmetrics_dbt_models succeeded in 8.0 s"
    assert step_line("ml__insights", None, "failed") == "  ✗ ml__insights failed"
    assert step_line("app__user_summaries", 0.3, "skipped") == "  - app__user_summaries skipped in 0.3 s"


def test_verbose_keeps_the_pipelines_own_output_on_the_terminal(database_url, monkeypatch, tmp_path, capfd):
    from ghmetrics_dagster.cli import pipeline

    monkeypatch.delenv("GHMETRICS_VERBOSE", raising=False)
    log = tmp_path / "runs.log"
    with pipeline._output_to(log, env_settings().verbose):
        os.write(1, b"to the log\n")
    assert log.read_text() == "to the log\n"

    state: dict = {}
    result = CliRunner().invoke(main, ["--verbose", "db", "url"], obj=state)
    assert result.exit_code == 0, result.output
    # The command's settings, and the processes it starts (they inherit them), are verbose.
    assert state["settings"].verbose and state["settings"].child_environ({})["GHMETRICS_VERBOSE"] == "1"
    capfd.readouterr()
    with pipeline._output_to(log, state["settings"].verbose):
        os.write(1, b"on the terminal\n")
    assert capfd.readouterr().out == "on the terminal\n"
    assert log.read_text() == "to the log\n"
