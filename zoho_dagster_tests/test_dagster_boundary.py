"""The Dagster boundary: a translator users can subclass, Zoho errors as ``dg.Failure`` with metadata, the
table name on the asset spec, and the public API of ``zoho_dagster``."""

from typing import Any

import dagster as dg

import zoho_dagster
from zoho_dagster.assets import build_stream_assets
from zoho_dagster.builder import build_definitions
from zoho_dagster.replication import ReplicatedStream, replicated
from zoho_dagster.streams import stream
from zoho_dagster_tests.operations_support import resources, today_key
from zoho_dagster_tests.postgres.sync_helpers import table


class PrefixedTranslator(zoho_dagster.DagsterZohoTranslator):
    """What a user writes: every Zoho asset under ``zoho/``, owned by the data team, tagged."""

    def get_asset_spec(self, stream: ReplicatedStream) -> dg.AssetSpec:
        spec = super().get_asset_spec(stream)
        return spec.replace_attributes(
            key=spec.key.with_prefix("zoho"),
            group_name="crm",
            owners=["team:data"],
            tags={"source": "zoho"},
        )


def test_the_default_spec_names_the_table_for_dagster() -> None:
    spec = zoho_dagster.DagsterZohoTranslator().get_asset_spec(replicated(stream("meetings"), "crm.events"))
    assert spec.key == dg.AssetKey("meetings")
    assert spec.metadata["dagster/table_name"] == "crm.events"
    assert spec.group_name == "zoho_crm" and set(spec.kinds) == {"zoho_crm", "postgres"}


def test_a_subclassed_translator_renames_assets_checks_and_automation_alike() -> None:
    defs = build_definitions(
        streams=[replicated(stream("leads")), replicated(stream("users"))], translator=PrefixedTranslator()
    )
    graph = defs.resolve_asset_graph()
    assert graph.get_all_asset_keys() == {dg.AssetKey(["zoho", "leads"]), dg.AssetKey(["zoho", "users"])}
    leads = graph.get(dg.AssetKey(["zoho", "leads"]))
    assert leads.group_name == "crm" and leads.owners == ["team:data"] and leads.tags["source"] == "zoho"
    assert leads.metadata["dagster/table_name"] == "zoho_crm.leads"
    checked = {key.asset_key for key in graph.asset_check_keys}
    assert checked == {dg.AssetKey(["zoho", "leads"]), dg.AssetKey(["zoho", "users"])}
    job = defs.resolve_job_def("zoho_crm_sync_job")
    assert set(job.asset_layer.executable_asset_keys) >= {dg.AssetKey(["zoho", "leads"])}


def test_a_renamed_asset_still_writes_its_table(simulator: Any, database_url: str) -> None:
    (leads,) = build_stream_assets([stream("leads")], translator=PrefixedTranslator())
    result = dg.materialize(
        [leads], partition_key=today_key(), resources=resources(simulator, database_url)
    )
    assert result.success
    assert leads.key == dg.AssetKey(["zoho", "leads"])
    materialization = result.asset_materializations_for_node("zoho__leads")[0]
    assert materialization.metadata["dagster/table_name"].value == "zoho_crm.leads"
    assert table(database_url, "leads") is not None


def _failure(result: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    return next(event for event in result.all_events if event.is_step_failure)


def test_exhausted_credits_fail_with_metadata_and_are_not_retried(simulator: Any, database_url: str) -> None:
    simulator.control.set_limits(credits_per_day=1)
    (leads,) = build_stream_assets(
        [stream("leads")], retry_policy=dg.RetryPolicy(max_retries=2, delay=0.1)
    )
    result = dg.materialize(
        [leads],
        partition_key=today_key(),
        resources=resources(simulator, database_url),
        raise_on_error=False,
    )
    assert not result.success
    failure = _failure(result)
    metadata = {k: v.value for k, v in failure.step_failure_data.user_failure_data.metadata.items()}
    assert metadata["error_type"] == "ZohoCreditsExhausted"
    assert "credit" in metadata["fix"]
    assert metadata["http_status"] == 429 or "zoho_code" in metadata
    assert "24-hour" in failure.step_failure_data.error.message
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries == []


def test_transient_failures_are_left_to_the_retry_policy(simulator: Any, database_url: str) -> None:
    # Every request from the 2nd to the 12th fails: the client gives up (max_retries 1), Dagster retries the
    # step once, and the second attempt, past the faults, succeeds.
    simulator.control.set_faults(schedule=[{"at_request": n, "kind": "503"} for n in range(2, 13)])
    (leads,) = build_stream_assets([stream("leads")], retry_policy=dg.RetryPolicy(max_retries=3, delay=0.1))
    zoho = resources(simulator, database_url)
    zoho["zoho_crm"] = zoho["zoho_crm"].model_copy(update={"max_retries": 1, "backoff_base_seconds": 0.01})
    result = dg.materialize([leads], partition_key=today_key(), resources=zoho, raise_on_error=False)
    simulator.control.clear_faults()
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries, "a transient failure should have been retried by the policy"
    assert result.success


def test_the_package_exports_its_public_api() -> None:
    assert set(zoho_dagster.__all__) >= {
        "ZohoCRMResource",
        "PostgresIOManager",
        "DagsterZohoTranslator",
        "build_stream_assets",
        "build_definitions",
    }
    for name in zoho_dagster.__all__:
        assert getattr(zoho_dagster, name) is not None


def test_loading_the_definitions_batches_dagster_events_unless_the_user_chose(tmp_path: Any) -> None:
    """A year's single-run backfill writes 366 materializations: batched, not one insert each."""
    import os
    import subprocess
    import sys

    probe = "import os, zoho_dagster.definitions; print(os.environ['DAGSTER_EVENT_BATCH_SIZE'])"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOHO_", "DAGSTER_"))}
    for chosen, expected in ((None, "1000"), ("25", "25")):
        if chosen is not None:
            env["DAGSTER_EVENT_BATCH_SIZE"] = chosen
        completed = subprocess.run(
            [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert completed.stdout.strip() == expected, completed.stderr[-2000:]
