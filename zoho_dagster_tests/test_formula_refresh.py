"""The formula refresh job against the simulator on a real port and a real Postgres.

The simulator computes formula values from its clock without bumping ``Modified_Time`` (Deals'
``Days_Open__c`` is whole days since ``Created_Time``), which is exactly what the incremental sync misses.
Expected values come from the simulator's truth and its stats, never from the code under test.
"""

import math
from datetime import timedelta
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from zoho_dagster.formula_refresh import JOB_NAME, SCHEDULE_NAME, build_formula_refresh
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.io_manager import PostgresIOManager
from zoho_dagster.resource import ZohoCRMResource
from zoho_dagster.streams import CATALOG, STREAMS_BY_NAME
from zoho_dagster_tests.postgres.sync_helpers import (
    FAST,
    anchor_days_ago,
    assets_by_name,
    columns_by_field,
    materialize,
    midnight,
    table,
    today,
    truth_in,
    use_simulator,
)

DAY_SECONDS = 86_400


@pytest.fixture
def zoho(monkeypatch: pytest.MonkeyPatch, simulator: Any, database_url: str) -> Any:
    use_simulator(monkeypatch, simulator, database_url)
    return simulator


def refresh(*streams: str) -> dict[str, dict[str, Any]]:
    """One run of the job over ``streams``; the metadata each stream's observation carries, by stream."""
    job, _ = build_formula_refresh(CATALOG)
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            run_config={"ops": {"refresh_formula_fields": {"config": {"streams": list(streams)}}}},
            resources={
                "zoho_crm": ZohoCRMResource.from_env(requests_per_second=FAST),
                "zoho_crm_io_manager": PostgresIOManager(),
            },
            instance=instance,
        )
        assert result.success
        observations = [
            event.event_specific_data.asset_observation  # type: ignore[union-attr]
            for event in result.all_events
            if event.event_type_value == "ASSET_OBSERVATION"
        ]
    return {o.asset_key.to_user_string(): {k: v.value for k, v in o.metadata.items()} for o in observations}


def _set_cursor(database_url: str, record_id: str, shift: timedelta) -> None:
    """Move one stored row's Modified_Time, as if the table held another version of the record."""
    with make_engine(database_url).begin() as conn:
        conn.execute(
            sa.text("UPDATE zoho_crm.deals SET modified_time = modified_time + :shift WHERE id = :id"),
            {"shift": shift, "id": record_id},
        )


def _delete_row(database_url: str, record_id: str) -> None:
    with make_engine(database_url).begin() as conn:
        conn.execute(sa.text("DELETE FROM zoho_crm.deals WHERE id = :id"), {"id": record_id})


def test_formula_columns_follow_the_clock_and_nothing_else_moves(zoho: Any, database_url: str) -> None:
    anchor = anchor_days_ago(30)
    materialize([assets_by_name(anchor)["deals"]], anchor, today())
    column = columns_by_field(database_url, "deals")[("Days_Open__c", "")]
    before = table(database_url, "deals")
    live = [i for i, row in sorted(before.items()) if row["_zoho_deleted_at"] is None]
    newer, gone = live[0], live[1]
    _set_cursor(database_url, newer, timedelta(days=1))  # the stored version is newer than Zoho's
    _delete_row(database_url, gone)
    before = table(database_url, "deals")

    zoho.control.advance_clock(3 * DAY_SECONDS)
    metadata = refresh("deals")["deals"]
    after = table(database_url, "deals")

    truth, _ = truth_in(zoho.control.truth("Deals"), midnight(anchor), midnight(today() + timedelta(days=5)))
    assert gone not in after  # never inserts
    assert set(after) == set(before)
    changed = 0
    for record_id, row in after.items():
        old = before[record_id]
        # Every other column, Modified_Time included, and every other key of _raw stay as they were.
        assert {k: v for k, v in row.items() if k not in (column, "_raw")} == {
            k: v for k, v in old.items() if k not in (column, "_raw")
        }, record_id
        if old["_raw"] is None:
            assert row["_raw"] is None
            continue
        assert {k: v for k, v in row["_raw"].items() if k != "Days_Open__c"} == {
            k: v for k, v in old["_raw"].items() if k != "Days_Open__c"
        }
        if record_id == newer or record_id not in truth:
            assert row[column] == old[column] and row["_raw"] == old["_raw"], record_id
            continue
        want = truth[record_id]["Days_Open__c"]
        assert float(row[column]) == float(want) == float(old[column]) + 3, record_id
        assert row["_raw"]["Days_Open__c"] == want
        changed += 1
    assert changed == len(truth) - 2  # the newer row and the deleted one excepted
    assert metadata["rows_updated"] == changed
    assert "Days_Open__c" in metadata["fields"]

    # Nothing changed since: a second run reads again but writes nothing.
    assert refresh("deals")["deals"]["rows_updated"] == 0


def test_credits_are_one_per_200_records_plus_the_fields_call(zoho: Any, database_url: str) -> None:
    anchor = anchor_days_ago(400)
    materialize([assets_by_name(anchor)["leads"]], anchor, today())
    stored = [row for row in table(database_url, "leads").values() if row["_zoho_deleted_at"] is None]
    zoho.control.reset_stats()
    metadata = refresh("leads")["leads"]
    served = zoho.control.stats()
    pages = math.ceil(len(stored) / 200)  # docs/zoho-crm-api.md §6.1: 1 credit a call, 200 records a page
    assert metadata["records_received"] >= len(stored)
    assert metadata["api_credits"] == served["total_credits"]
    # One fields call, then one page per 200 records; a split into time slices may cost one more page per
    # slice (client/slices.py), a few at most.
    assert pages + 1 <= metadata["api_credits"] <= pages + 1 + 3
    print(f"formula refresh: {len(stored)} leads, {metadata['api_credits']} credits")


def test_the_job_and_its_schedule_are_in_the_definitions_and_stopped() -> None:
    from zoho_dagster.builder import build_definitions
    from zoho_dagster.replication import replicated

    defs = build_definitions([replicated(STREAMS_BY_NAME["deals"]), replicated(STREAMS_BY_NAME["modules"])])
    assert defs.get_job_def(JOB_NAME).name == JOB_NAME
    schedule = next(s for s in defs.schedules if s.name == SCHEDULE_NAME)
    assert schedule.job_name == JOB_NAME
    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
