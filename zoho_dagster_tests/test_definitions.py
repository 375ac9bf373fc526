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


def test_dg_check_defs_passes_with_no_secret_set(project_root: Path, database_url: str) -> None:
    """`dg check defs` (which supersedes `dagster definitions validate`) from the repository root: the
    component YAML validates and the definitions load, with no Zoho secret set and no warning printed."""
    env = clean_environment(ZOHO_DAGSTER_DATABASE_URL=database_url, DAGSTER_DG_UPDATE_CHECK_ENABLED="0")
    env.pop("DAGSTER_MODULE_NAME", None)
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "dg"), "check", "defs"],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-2000:]
    assert "All component YAML validated successfully." in output
    assert "All definitions loaded successfully." in output
    assert "Warning" not in output, output[-2000:]


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
    # The repository is a dg project whose code location is that module, and the package registers its
    # component with dg.
    dg_project = pyproject["tool"]["dg"]["project"]
    assert dg_project["code_location_target_module"] == module
    assert dg_project["defs_module"] == "zoho_dagster.defs"
    assert pyproject["project"]["entry-points"]["dagster_dg_cli.registry_modules"] == {
        "zoho_dagster": "zoho_dagster"
    }
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


DG = str(Path(sys.executable).parent / "dg")
MATERIALIZE = {
    # The contract command (docs/design.md §1), with its module named.
    "dagster asset materialize": [
        *DAGSTER, "asset", "materialize", "--select", "leads", "--partition", "{day}", "-m",
        "zoho_dagster.definitions",
    ],
    # The same from the repository's dg project ([tool.dg] in pyproject.toml).
    "dg launch": [DG, "launch", "--assets", "leads", "--partition", "{day}"],
}


@pytest.mark.parametrize("command", list(MATERIALIZE))
def test_one_partition_materialized_as_a_subprocess(
    command: str, project_root: Path, simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_simulator(monkeypatch, simulator, database_url)
    env = clean_environment(
        DAGSTER_DG_UPDATE_CHECK_ENABLED="0", **{k: v for k, v in os.environ.items() if k.startswith("ZOHO_")}
    )
    env.pop("DAGSTER_MODULE_NAME", None)
    day = today()
    created = simulator.control.create("Leads", {"Last_Name": "Made today", "Company": "Subprocess Ltd"})
    completed = subprocess.run(
        [part.format(day=day.isoformat()) for part in MATERIALIZE[command]],
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
