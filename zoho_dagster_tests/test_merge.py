"""The package's definitions merged into a project that has its own ``io_manager`` and executor.

``dg.Definitions.merge`` refuses two resources under one key and two executors; the package's resources have
keys of their own (``zoho_crm``, ``zoho_crm_io_manager``), its assets name their IO manager, and its executor
sits on its own jobs. One asset of each side is materialized in one instance, through the merged project's
implicit asset job, and each must have been stored by its own IO manager.
"""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from zoho_dagster.builder import build_definitions
from zoho_dagster.postgres.io_manager import PostgresIOManager
from zoho_dagster.replication import replicated
from zoho_dagster.streams import stream
from zoho_dagster_tests.operations_support import zoho_resource
from zoho_dagster_tests.postgres.sync_helpers import midnight, table, today, truth_in


class JsonFiles(dg.ConfigurableIOManager):
    """The project's own IO manager: one JSON file per asset."""

    root: str

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        path = Path(self.root) / f"{context.asset_key.to_python_identifier()}.json"
        path.write_text(json.dumps(obj))

    def load_input(self, context: dg.InputContext) -> Any:
        path = Path(self.root) / f"{context.asset_key.to_python_identifier()}.json"
        return json.loads(path.read_text())


@dg.asset
def revenue_forecast() -> dict[str, int]:
    return {"eur": 42}


def _handled_by(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Step key → the IO manager key that stored its output, from the run's HANDLED_OUTPUT events."""
    return {
        str(event.step_key): event.event_specific_data.manager_key  # type: ignore[union-attr]
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.HANDLED_OUTPUT
    }


def test_the_package_merges_into_a_project_with_its_own_io_manager_and_executor(
    simulator: Any, database_url: str, tmp_path: Path
) -> None:
    project = dg.Definitions(
        assets=[revenue_forecast],
        resources={"io_manager": JsonFiles(root=str(tmp_path))},
        executor=dg.multiprocess_executor,
    )
    zoho = build_definitions(
        streams=[replicated(stream("leads"))],
        zoho_crm=zoho_resource(simulator, database_url),
        io_manager=PostgresIOManager(database_url=database_url),
    )
    merged = dg.Definitions.merge(project, zoho)

    # Each side keeps its executor: the project's for everything it runs, in-process for the package's jobs.
    assert merged.resolve_implicit_global_asset_job_def().executor_def is dg.multiprocess_executor
    assert merged.resolve_job_def("zoho_crm_sync_job").executor_def is dg.in_process_executor
    assert set(merged.resources or {}) == {"io_manager", "zoho_crm", "zoho_crm_io_manager"}

    day = today()
    job = merged.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        ours = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("revenue_forecast")])
        theirs = job.execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey("leads")], partition_key=day.isoformat()
        )
        assert ours.success and theirs.success
        stored = {record.asset_entry.asset_key for record in instance.get_asset_records()}
    assert stored >= {dg.AssetKey("revenue_forecast"), dg.AssetKey("leads")}

    assert _handled_by(ours) == {"revenue_forecast": "io_manager"}
    assert _handled_by(theirs) == {"leads": "zoho_crm_io_manager"}
    assert json.loads((tmp_path / "revenue_forecast.json").read_text()) == {"eur": 42}
    live, _ = truth_in(simulator.control.truth("Leads"), midnight(day), midnight(day) + timedelta(days=1))
    rows = table(database_url, "leads")
    assert live, f"the simulator has no Leads modified on {day}: the test would prove nothing"
    assert {i for i, r in rows.items() if r["_zoho_deleted_at"] is None} == set(live)
