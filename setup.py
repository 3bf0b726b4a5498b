"""Puts the project files beside the package in a built wheel (`ghmetrics_dagster/project/`):
the dbt project, dagster.yaml and workspace.yaml live at the repository's top level (where dbt
and Dagster's own commands look for them), and an installed wheel needs them too. Everything
else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROJECT_FILES = ("dbt_project", "dagster.yaml", "workspace.yaml")
# Built or machine-specific: dbt's output, its logs, installed packages.
SKIP = shutil.ignore_patterns("target", "logs", "dbt_packages", "__pycache__", ".user.yml")


class BuildWithProjectFiles(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "ghmetrics_dagster" / "project"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in PROJECT_FILES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=SKIP)
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithProjectFiles})
