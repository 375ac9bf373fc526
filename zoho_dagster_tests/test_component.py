"""``ZohoCRMComponent``: the ``dg`` sequence a user types, as subprocesses, and the YAML attributes.

The sequence runs in a fresh project made by ``create-dagster project --no-uv-sync`` (offline): the
project runs on this test's environment, which has zoho-dagster installed, and ``PYTHONPATH`` stands in for
installing the new project itself (what ``uv sync`` or ``pip install -e .`` would do). Zoho is the simulator
on a real port, Postgres the test database; the expected rows come from the simulator's truth.
"""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster.components.testing import DefsFolderSandbox, create_defs_folder_sandbox

from zoho_dagster.component import ZohoCRMComponent
from zoho_dagster.discovery import snake_case
from zoho_dagster.simulator.schema import MODULES
from zoho_dagster_tests.postgres.sync_helpers import midnight, simulator_variables, table, today, truth_in

BIN = Path(sys.executable).parent
PROJECT = "crm_project"

# The sandbox loads components as load_from_defs_folder does, but without its warning suppression: the
# component machinery's own beta and preview calls would print hundreds of lines (docs/dagster.md §7).
pytestmark = [
    pytest.mark.filterwarnings("ignore::dagster.BetaWarning"),
    pytest.mark.filterwarnings("ignore::dagster.PreviewWarning"),
]


def _environment(simulator: Any, database_url: str, home: Path, project: Path) -> dict[str, str]:
    """The caller's environment without Zoho or Dagster settings, plus the simulator's connection (the
    variables of sync_helpers.use_simulator), the test database and a Dagster home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOHO_", "DAGSTER_"))}
    org = simulator.primary
    env.update(
        {
            **simulator_variables(org),
            "ZOHO_DAGSTER_DATABASE_URL": database_url,
            "DAGSTER_HOME": str(home),
            "DAGSTER_DG_UPDATE_CHECK_ENABLED": "0",  # no PyPI look-up for a newer create-dagster
            "PYTHONPATH": str(project / "src"),
        }
    )
    return env


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"{' '.join(command)} exited {completed.returncode}:\n{output[-4000:]}"
    return completed


def test_the_dg_sequence_in_a_fresh_project(
    simulator: Any, database_url: str, project_root: Path, tmp_path: Path
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    project = tmp_path / PROJECT
    env = _environment(simulator, database_url, home, project)

    _run([str(BIN / "create-dagster"), "project", str(project), "--no-uv-sync"], tmp_path, env)
    _run([str(BIN / "dg"), "scaffold", "defs", "zoho_dagster.ZohoCRMComponent", "zoho_crm"], project, env)
    component = project / "src" / PROJECT / "defs" / "zoho_crm"
    defs_yaml = yaml.safe_load((component / "defs.yaml").read_text())
    assert defs_yaml["type"] == "zoho_dagster.ZohoCRMComponent"
    assert defs_yaml["attributes"]["replication"] == "replication.yaml"
    assert defs_yaml["attributes"]["zoho_crm"]["client_secret"] == "{{ env.ZOHO_CRM_CLIENT_SECRET }}"
    assert yaml.safe_load((component / "replication.yaml").read_text())["streams"] == {"*": None}

    checked = _run([str(BIN / "dg"), "check", "defs"], project, env)
    assert "All definitions loaded successfully." in checked.stdout

    # Discovery: the org's modules become the component's state; the next load reads them, calling nothing.
    simulator.control.reset_stats()
    _run([str(BIN / "dg"), "utils", "refresh-defs-state"], project, env)
    assert simulator.control.stats()["total_requests"] > 0
    simulator.control.reset_stats()
    listed = json.loads(_run([str(BIN / "dg"), "list", "defs", "--json"], project, env).stdout)
    assert simulator.control.stats()["total_requests"] == 0
    keys = {asset["asset_key"] for asset in listed["assets"]}
    custom = {snake_case(m.api_name) for m in MODULES if m.generated_type == "custom"}
    assert custom and custom <= keys, keys
    assert "leads" in keys

    day = today()
    _run([str(BIN / "dg"), "launch", "--assets", "leads", "--partition", day.isoformat()], project, env)
    live, _ = truth_in(simulator.control.truth("Leads"), midnight(day), midnight(day) + timedelta(days=1))
    assert live, f"the simulator has no Leads modified on {day}: the test would prove nothing"
    rows = table(database_url, "leads")
    assert {i for i, r in rows.items() if r["_zoho_deleted_at"] is None} == set(live)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[DefsFolderSandbox]:
    """A defs folder with nothing discovered yet (no state, no discovery file)."""
    monkeypatch.setenv("ZOHO_DAGSTER_DISCOVERY", str(tmp_path / "not_discovered.yaml"))
    for variable in ("ZOHO_DAGSTER_REPLICATION", "ZOHO_DAGSTER_FRESHNESS_MINUTES"):
        monkeypatch.delenv(variable, raising=False)
    with create_defs_folder_sandbox() as created:
        yield created


def _scaffold(sandbox: DefsFolderSandbox, attributes: dict[str, Any]) -> Path:
    """The component scaffolded by its own scaffolder (defs.yaml and replication.yaml), then given
    ``attributes``."""
    path = sandbox.scaffold_component(ZohoCRMComponent, defs_path="zoho_crm")
    assert (path / "replication.yaml").is_file()
    document = yaml.safe_load((path / "defs.yaml").read_text())
    document["attributes"] = attributes
    (path / "defs.yaml").write_text(yaml.safe_dump(document))
    return path


def test_yaml_attributes_become_the_specs_and_resources(
    sandbox: DefsFolderSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZD_TEST_CLIENT_ID", "1000.CLIENT")
    monkeypatch.setenv("ZD_TEST_SECRET", "s3cret-value")
    monkeypatch.setenv("ZD_TEST_CONCURRENCY", "4")
    monkeypatch.setenv("ZD_TEST_DATABASE", "postgresql://u:pw@db/crm")
    monkeypatch.delenv("ZD_TEST_UNSET", raising=False)
    path = _scaffold(
        sandbox,
        {
            "replication": "replication.yaml",
            "zoho_crm": {
                "client_id": "{{ env.ZD_TEST_CLIENT_ID }}",
                "client_secret": "{{ env('ZD_TEST_SECRET') }}",
                "refresh_token": "{{ env.ZD_TEST_UNSET }}",
                "region": "EU",
                "max_concurrency": "{{ env.ZD_TEST_CONCURRENCY }}",
            },
            "database_url": "{{ env.ZD_TEST_DATABASE }}",
            "translation": {
                "key_prefix": "zoho",
                "group_name": "crm",
                "owners": ["team:data"],
                "tags": {"source": "zoho"},
                "kinds": ["zoho_crm", "postgres", "crm"],
                "automation_condition": "{{ dg.AutomationCondition.on_cron('*/30 * * * *') }}",
                "freshness_minutes": 30,
            },
        },
    )
    with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
        assert isinstance(component, ZohoCRMComponent)
        graph = defs.resolve_asset_graph()
        leads = graph.get(dg.AssetKey(["zoho", "leads"]))
        resources = dict(defs.resources or {})
        sync_job = defs.resolve_job_def("zoho_crm_sync_job")
        schedule = defs.resolve_schedule_def("zoho_crm_freshness_schedule")

    assert {key.path[0] for key in graph.get_all_asset_keys()} == {"zoho"}
    assert leads.group_name == "crm" and leads.owners == ["team:data"] and leads.tags["source"] == "zoho"
    assert set(leads.kinds) == {"zoho_crm", "postgres", "crm"}
    assert leads.automation_condition == dg.AutomationCondition.on_cron("*/30 * * * *")
    assert leads.freshness_policy.fail_window.to_timedelta() == timedelta(minutes=65)
    assert schedule.cron_schedule == "*/30 * * * *"
    assert sync_job.executor_def is dg.in_process_executor
    (reference, *_) = [
        ref
        for ref in leads.metadata["dagster/code_references"].code_references
        if Path(ref.file_path).name == "replication.yaml"
    ]
    assert Path(reference.file_path) == (path / "replication.yaml").resolve()

    # Secrets stay references: the UI shows the variable's name, a run reads the value.
    zoho = resources["zoho_crm"]
    assert isinstance(zoho.client_secret, dg.EnvVar) and zoho.client_secret.env_var_name == "ZD_TEST_SECRET"
    assert isinstance(zoho.client_id, dg.EnvVar) and zoho.client_id.get_value() == "1000.CLIENT"
    assert zoho.refresh_token is None  # {{ env.X }} of an unset variable is left out
    assert zoho.region == "EU" and zoho.max_concurrency == 4
    assert "s3cret-value" not in repr(zoho)
    database_url = resources["zoho_crm_io_manager"].database_url
    assert isinstance(database_url, dg.EnvVar) and database_url.env_var_name == "ZD_TEST_DATABASE"
    assert zoho.database_url.env_var_name == "ZD_TEST_DATABASE"


def test_the_state_adds_the_orgs_modules_and_loading_calls_nothing(
    sandbox: DefsFolderSandbox, simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = simulator.primary
    for key, variable in (
        ("client_id", "ZOHO_CRM_CLIENT_ID"),
        ("client_secret", "ZOHO_CRM_CLIENT_SECRET"),
        ("soid", "ZOHO_CRM_SOID"),
        ("accounts_url", "ZOHO_CRM_ACCOUNTS_URL"),
        ("api_domain", "ZOHO_CRM_API_DOMAIN"),
    ):
        monkeypatch.setenv(variable, str(org[key]))
    monkeypatch.setenv("ZOHO_DAGSTER_DATABASE_URL", database_url)
    path = _scaffold(sandbox, {"replication": {"streams": {"*": None, "users": {"disabled": True}}}})
    custom = {snake_case(m.api_name) for m in MODULES if m.generated_type == "custom"}

    with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
        before = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
        simulator.control.reset_stats()
        asyncio.run(component.refresh_state(sandbox.project_root))
        assert simulator.control.stats()["by_endpoint"], "discovery should have asked Zoho"
    simulator.control.reset_stats()
    with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
        after = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert simulator.control.stats()["total_requests"] == 0

    assert "leads" in before and "users" not in before and not custom & before
    assert custom <= after and "users" not in after


def test_a_missing_replication_file_is_one_sentence(sandbox: DefsFolderSandbox) -> None:
    path = _scaffold(sandbox, {"replication": "elsewhere.yaml"})
    with pytest.raises(Exception) as raised, sandbox.load_component_and_build_defs(defs_path=path):
        pass
    chain = []
    error: BaseException | None = raised.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__
    assert any("elsewhere.yaml does not exist; fix `replication` in" in message for message in chain), chain


def test_the_scaffolded_replication_is_the_whole_catalog() -> None:
    """The replication.yaml the scaffolder writes is a valid replication (the whole catalog and '*')."""
    from zoho_dagster.component import SCAFFOLD_REPLICATION_YAML
    from zoho_dagster.replication import parse_replication
    from zoho_dagster.streams import CATALOG

    streams = parse_replication(SCAFFOLD_REPLICATION_YAML, custom_streams=[])
    assert [s.spec.name for s in streams] == [spec.name for spec in CATALOG]
    assert {str(s.target) for s in streams} == {f"zoho_crm.{spec.name}" for spec in CATALOG}
