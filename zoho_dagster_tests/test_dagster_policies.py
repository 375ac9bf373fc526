"""Dagster's own freshness policy and automation condition on every stream, the checks' pool and blocking
check, the code references to the replication file and Dagster's table metadata keys.

The specs are read from the definitions Dagster resolves (``resolve_asset_graph``), as the UI sees them; the
blocking check runs for real against Postgres.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from zoho_dagster.builder import build_definitions
from zoho_dagster.checks import COLUMNS, FRESHNESS, ROW_COUNT, UNIQUE_IDS, build_checks
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.io_manager import PostgresIOManager
from zoho_dagster.replication import load_replication, replicated
from zoho_dagster.streams import CATALOG, stream
from zoho_dagster.translator import DagsterZohoTranslator

REPLICATION = """\
source: ZOHO_CRM
target: POSTGRES

streams:
  leads:
    object: crm.leads
  '*':
  users:
"""


def _graph(defs: dg.Definitions) -> Any:
    return defs.resolve_asset_graph()


def test_every_stream_has_a_freshness_policy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOHO_DAGSTER_FRESHNESS_MINUTES", "30")
    graph = _graph(build_definitions(streams=[replicated(spec) for spec in CATALOG]))
    policies = {key.to_user_string(): graph.get(key).freshness_policy for key in graph.get_all_asset_keys()}
    assert set(policies) == {spec.name for spec in CATALOG}
    for name, policy in policies.items():
        assert isinstance(policy, dg.FreshnessPolicy), name
        # Late (warn) one interval plus the 5 minutes a run may take; stale (fail) after a second interval.
        assert policy.warn_window.to_timedelta() == timedelta(minutes=35), name
        assert policy.fail_window.to_timedelta() == timedelta(minutes=65), name


def test_the_freshness_minutes_given_to_the_builder_win_and_drive_the_schedule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZOHO_DAGSTER_FRESHNESS_MINUTES", "30")
    defs = build_definitions(streams=[replicated(stream("leads"))], freshness_minutes=120)
    policy = _graph(defs).get(dg.AssetKey("leads")).freshness_policy
    assert policy.fail_window.to_timedelta() == timedelta(minutes=245)
    assert defs.resolve_schedule_def("zoho_crm_freshness_schedule").cron_schedule == "0 */2 * * *"


def test_no_automation_condition_by_default_and_one_through_the_translator() -> None:
    streams = [replicated(stream("leads")), replicated(stream("users"))]
    default = _graph(build_definitions(streams=streams))
    assert all(default.get(key).automation_condition is None for key in default.get_all_asset_keys())

    eager = dg.AutomationCondition.on_cron("*/30 * * * *")
    translator = DagsterZohoTranslator(automation_condition=eager)
    translated = build_definitions(streams=streams, translator=translator)
    graph = _graph(translated)
    for key in graph.get_all_asset_keys():
        assert graph.get(key).automation_condition == eager
    # The schedules and the change sensor stay beside it; Dagster adds the sensor that evaluates automation
    # conditions (stopped until started in the UI, like the package's own).
    sensors = {s.name: s for s in translated.get_repository_def().sensor_defs}
    assert "zoho_crm_change_sensor" in sensors
    assert sensors["default_automation_condition_sensor"].default_status == dg.DefaultSensorStatus.STOPPED
    assert "zoho_crm_freshness_schedule" in {s.name for s in translated.schedules or []}
    without = {s.name for s in build_definitions(streams=streams).get_repository_def().sensor_defs}
    assert "default_automation_condition_sensor" not in without


def test_checks_that_call_zoho_run_in_the_pool_and_unique_ids_blocks() -> None:
    checks = build_checks([replicated(stream("leads")), replicated(stream("users"))], interval_minutes=60)
    by_name = {check.node_def.name: check for check in checks}
    assert set(by_name) == {"leads_checks", "leads_zoho_checks", "users_checks"}
    assert by_name["leads_zoho_checks"].node_def.pool == "zoho_crm_api"
    assert by_name["leads_checks"].node_def.pool is None and by_name["users_checks"].node_def.pool is None
    specs = {
        (spec.asset_key.to_user_string(), spec.name): spec for check in checks for spec in check.check_specs
    }
    assert {name for _, name in specs} == {ROW_COUNT, COLUMNS, UNIQUE_IDS, FRESHNESS}
    blocking = {key for key, spec in specs.items() if spec.blocking}
    assert blocking == {("leads", UNIQUE_IDS), ("users", UNIQUE_IDS)}
    zoho_checks = {spec.name for spec in by_name["leads_zoho_checks"].check_specs}
    assert zoho_checks == {ROW_COUNT, COLUMNS}


@dg.asset(deps=[dg.AssetKey("users")])
def users_report() -> None:
    """Something a project builds on the users table."""


def _users_table(database_url: str, ids: list[str]) -> None:
    with make_engine(database_url).begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS zoho_crm")
        conn.exec_driver_sql("DROP TABLE IF EXISTS zoho_crm.users")
        conn.exec_driver_sql("CREATE TABLE zoho_crm.users (id text)")
        conn.execute(sa.text("INSERT INTO zoho_crm.users VALUES (:id)"), [{"id": i} for i in ids])


@pytest.mark.parametrize(("ids", "blocked"), [(["1", "1"], True), (["1", "2"], False)])
def test_a_duplicate_id_stops_the_assets_downstream_in_the_same_run(
    database_url: str, ids: list[str], blocked: bool
) -> None:
    _users_table(database_url, ids)
    checks = build_checks([replicated(stream("users"))], interval_minutes=60)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [users_report, *checks],
            instance=instance,
            resources={"zoho_crm_io_manager": PostgresIOManager(database_url=database_url)},
            selection=dg.AssetSelection.assets(users_report) | dg.AssetSelection.checks(*checks),
            raise_on_error=False,
        )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations[UNIQUE_IDS].passed is not blocked
    # Never synced: the freshness check fails too, but it is not blocking.
    assert not evaluations[FRESHNESS].passed
    if blocked:
        assert not result.success
        failures = [e for e in result.all_events if e.is_step_failure]
        assert [e.step_key for e in failures] == ["users_checks"]
        assert "blocking asset check" in failures[0].step_failure_data.error.message
        assert result.asset_materializations_for_node("users_report") == []
    else:
        assert result.success
        assert len(result.asset_materializations_for_node("users_report")) == 1


def test_code_references_point_at_the_replication_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replication = tmp_path / "replication.yaml"
    replication.write_text(REPLICATION)
    monkeypatch.setenv("ZOHO_DAGSTER_REPLICATION", str(replication))
    monkeypatch.setenv("ZOHO_DAGSTER_DISCOVERY", str(tmp_path / "no_discovery.yaml"))
    streams = load_replication()
    graph = _graph(build_definitions())
    # leads and users by their own keys (lines 5 and 8), every other stream by '*' (line 7).
    lines = {s.spec.name: {"leads": 5, "users": 8}.get(s.spec.name, 7) for s in streams}
    for key in graph.get_all_asset_keys():
        metadata = graph.get(key).metadata
        (reference,) = metadata["dagster/code_references"].code_references
        assert isinstance(reference, dg.LocalFileCodeReference)
        assert Path(reference.file_path) == replication.resolve()
        assert reference.line_number == lines[key.to_user_string()], key
    # Dagster's table keys, as TableMetadataSet writes them.
    assert graph.get(dg.AssetKey("leads")).metadata["dagster/table_name"] == "crm.leads"
