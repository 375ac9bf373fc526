"""The Definitions object, the workspace and instance files, and the contract command line of docs/design.md
§1."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import tomllib
import yaml

from zoho_dagster.streams import CATALOG
from zoho_dagster_tests.postgres.sync_helpers import midnight, table, today, truth_in, use_simulator

DAGSTER = [sys.executable, "-m", "dagster"]


def clean_environment(**extra: str) -> dict[str, str]:
    """os.environ without any Zoho or Dagster-home setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOHO_", "DAGSTER_HOME"))}
    env.update(extra)
    return env


def test_definitions_validate_with_no_secret_set(project_root: Path, database_url: str) -> None:
    env = clean_environment(ZOHO_DAGSTER_DATABASE_URL=database_url)
    completed = subprocess.run(
        [*DAGSTER, "definitions", "validate", "-m", "zoho_dagster.definitions"],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "Validation successful" in completed.stderr + completed.stdout


def test_the_definitions_hold_every_stream_the_resource_and_the_io_manager() -> None:
    from zoho_dagster.definitions import defs

    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {s.name for s in CATALOG}
    assert set(defs.resources or {}) >= {"zoho_crm", "zoho_crm_io_manager"}


def test_workspace_pyproject_and_instance_files_agree(project_root: Path) -> None:
    workspace = yaml.safe_load((project_root / "workspace.yaml").read_text())
    pyproject = tomllib.loads((project_root / "pyproject.toml").read_text())
    module = workspace["load_from"][0]["python_module"]["module_name"]
    assert module == pyproject["tool"]["dagster"]["module_name"] == "zoho_dagster.definitions"
    instance = yaml.safe_load((project_root / "dagster.yaml").read_text())
    assert instance["concurrency"]["pools"]["default_limit"] == 3
    storage = instance["storage"]["custom"]
    from importlib import import_module

    storage_class = getattr(import_module(storage["module"]), storage["class"])
    assert issubclass(storage_class, dg._core.storage.base_storage.DagsterStorage)


def test_the_storage_url_names_the_psycopg2_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    from zoho_dagster.postgres.dagster_storage import dagster_storage_url

    monkeypatch.setenv("ZOHO_DAGSTER_DAGSTER_STORAGE_URL", "postgresql://postgres:@/postgres?host=/tmp/x")
    assert dagster_storage_url() == "postgresql+psycopg2://postgres:@/postgres?host=/tmp/x"


def test_dagster_asset_materialize_one_partition_as_a_subprocess(
    project_root: Path, simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_simulator(monkeypatch, simulator, database_url)
    env = clean_environment(**{k: v for k, v in os.environ.items() if k.startswith("ZOHO_")})
    day = today()
    created = simulator.control.create("Leads", {"Last_Name": "Made today", "Company": "Subprocess Ltd"})
    completed = subprocess.run(
        [
            *DAGSTER,
            "asset",
            "materialize",
            "--select",
            "leads",
            "--partition",
            day.isoformat(),
            "-m",
            "zoho_dagster.definitions",
        ],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    live, _ = truth_in(simulator.control.truth("Leads"), midnight(day), midnight(day) + timedelta(days=1))
    rows = table(database_url, "leads")
    assert {i for i, r in rows.items() if r["_zoho_deleted_at"] is None} == set(live)
    assert rows[created]["last_name"] == "Made today"
