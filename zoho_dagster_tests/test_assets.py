"""End to end: the stream assets against the simulator on a real port, into a real Postgres."""

import threading
from datetime import timedelta
from typing import Any

import dagster as dg
import pytest

from zoho_dagster.streams import CATALOG
from zoho_dagster_tests.postgres.sync_helpers import (
    anchor_days_ago,
    assert_rows_match_truth,
    assets_by_name,
    materialize,
    midnight,
    table,
    today,
    truth_in,
    use_simulator,
)


@pytest.fixture
def zoho(monkeypatch: pytest.MonkeyPatch, simulator: Any, database_url: str) -> Any:
    use_simulator(monkeypatch, simulator, database_url)
    return simulator


def test_a_year_backfill_of_leads_is_one_run_and_equals_the_truth(zoho: Any, database_url: str) -> None:
    anchor = anchor_days_ago(365)
    leads = assets_by_name(anchor)["leads"]
    result = materialize([leads], anchor, today())
    materializations = result.asset_materializations_for_node("leads")
    assert len(materializations) == 366  # one run, one materialization per day of the range
    metadata = {k: v.value for k, v in materializations[-1].metadata.items()}
    live, deleted = truth_in(
        zoho.control.truth("Leads"), midnight(anchor), midnight(today() + timedelta(days=1))
    )
    rows = table(database_url, "leads")
    assert {i for i, r in rows.items() if r["_zoho_deleted_at"] is None} == set(live)
    assert {i for i, r in rows.items() if r["_zoho_deleted_at"] is not None} == deleted
    assert_rows_match_truth(database_url, "leads", "Leads", live)
    assert metadata["rows_inserted"] == len(live) and metadata["rows_updated"] == 0
    assert metadata["dagster/row_count"] == len(rows)
    assert metadata["dagster/partition_row_count"] == len(live)
    assert metadata["dagster/table_name"] == "zoho_crm.leads"
    assert metadata["deletions_marked"] == len(deleted)
    assert metadata["api_calls"] > 2 and metadata["api_credits"] >= metadata["api_calls"]
    assert {c.name for c in metadata["dagster/column_schema"].columns} >= {"id", "owner_email", "_raw"}


def test_every_stream_equals_the_truth(zoho: Any, database_url: str) -> None:
    anchor = anchor_days_ago(20)
    assets = assets_by_name(anchor)
    partitioned = [assets[s.name] for s in CATALOG if s.incremental]
    materialize(partitioned, anchor, today())
    materialize([assets["users"], assets["modules"]])
    since, until = midnight(anchor), midnight(today() + timedelta(days=1))
    for spec in CATALOG:
        rows = table(database_url, spec.name)
        if spec.module is None:
            assert rows, spec.name
            continue
        live, deleted = truth_in(zoho.control.truth(spec.module), since, until)
        assert {i for i, r in rows.items() if r["_zoho_deleted_at"] is None} == set(live), spec.name
        assert {i for i, r in rows.items() if r["_zoho_deleted_at"] is not None} == deleted, spec.name
        assert_rows_match_truth(database_url, spec.name, spec.module, live)
    users = table(database_url, "users")
    assert all(row["email"] and row["_raw"]["id"] == user_id for user_id, row in users.items())
    assert "Leads" in {row["api_name"] for row in table(database_url, "modules").values()}


def test_rerun_out_of_order_and_concurrent_runs_change_nothing(zoho: Any, database_url: str) -> None:
    anchor = anchor_days_ago(12)
    leads = assets_by_name(anchor)["leads"]
    days = [anchor + timedelta(days=i) for i in range(13)]
    # Day by day, newest first; then overlapping ranges at the same time in threads.
    for day in reversed(days):
        materialize([leads], day)
    first = table(database_url, "leads")
    errors: list[BaseException] = []

    def run(start: int, end: int) -> None:
        try:
            materialize([leads], days[start], days[end])
        except BaseException as error:  # asserted below
            errors.append(error)

    threads = [threading.Thread(target=run, args=r) for r in ((0, 12), (3, 9), (6, 12), (0, 5))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert table(database_url, "leads") == first
    live, deleted = truth_in(
        zoho.control.truth("Leads"), midnight(anchor), midnight(today() + timedelta(days=1))
    )
    assert {i for i, r in first.items() if r["_zoho_deleted_at"] is None} == set(live)
    assert {i for i, r in first.items() if r["_zoho_deleted_at"] is not None} == deleted


def test_updates_and_deletions_appear_after_the_next_run_of_their_window(
    zoho: Any, database_url: str
) -> None:
    anchor = anchor_days_ago(30)
    leads = assets_by_name(anchor)["leads"]
    materialize([leads], anchor, today())
    truth = zoho.control.truth("Leads")
    live, _ = truth_in(truth, midnight(anchor), midnight(today()))
    changed_id, deleted_id = sorted(live)[:2]
    zoho.control.update("Leads", changed_id, {"Last_Name": 'Renamed; "quoted"', "Seats__c": 7})
    zoho.control.delete("Leads", deleted_id)
    created_id = zoho.control.create("Leads", {"Last_Name": "Brand New", "Company": "Newco"})
    materialize([leads], today())  # the open partition: where the update moved the record
    rows = table(database_url, "leads")
    assert rows[changed_id]["last_name"] == 'Renamed; "quoted"' and rows[changed_id]["seats_c"] == 7
    assert rows[deleted_id]["_zoho_deleted_at"] is not None
    assert rows[created_id]["last_name"] == "Brand New"
    # Re-running the record's old window afterwards does not bring the old version back.
    materialize([leads], anchor, today() - timedelta(days=1))
    assert table(database_url, "leads")[changed_id]["last_name"] == 'Renamed; "quoted"'


def test_a_run_failing_mid_write_leaves_the_table_as_it_was(zoho: Any, database_url: str) -> None:
    anchor = anchor_days_ago(60)
    leads = assets_by_name(anchor)["leads"]
    materialize([leads], anchor, today())
    before = table(database_url, "leads")
    some_id = min(i for i, row in before.items() if row["_zoho_deleted_at"] is None)
    zoho.control.update("Leads", some_id, {"Last_Name": "Should not land"})
    # Every request from the 4th on fails with a 500: a few pages arrive, then the client gives up.
    zoho.control.set_faults(schedule=[{"at_request": n, "kind": "500"} for n in range(4, 60)])
    result = materialize(
        [leads], anchor, today(), raise_on_error=False, max_retries=1, backoff_base_seconds=0.01
    )
    zoho.control.clear_faults()
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    assert "handling output" in error.message  # the pages were being written when the API gave up
    assert error.cause is not None and error.cause.cls_name == "ZohoTransientError"
    assert table(database_url, "leads") == before


def test_the_asset_definitions_follow_the_catalog() -> None:
    assets = assets_by_name(anchor_days_ago(10))
    assert set(assets) == {spec.name for spec in CATALOG}
    for spec in CATALOG:
        asset = assets[spec.name]
        assert asset.group_names_by_key[asset.key] == "zoho_crm"
        assert set(asset.specs_by_key[asset.key].kinds) == {"zoho_crm", "postgres"}
        assert asset.op.pool == "zoho_crm_api"
        if spec.incremental:
            partitions = asset.partitions_def
            assert isinstance(partitions, dg.DailyPartitionsDefinition)
            assert partitions.get_last_partition_key() == today().isoformat()
            assert asset.backfill_policy == dg.BackfillPolicy.single_run()
        else:
            assert asset.partitions_def is None
