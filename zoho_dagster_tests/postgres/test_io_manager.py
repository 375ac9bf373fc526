"""The IO manager inside Dagster: target table from definition metadata, metadata, load_input by partition."""

from typing import Any

import dagster as dg

from zoho_dagster.postgres.io_manager import TARGET_TABLE_KEY, PostgresIOManager
from zoho_dagster.record_stream import CallStats, RecordStream

DAYS = dg.DailyPartitionsDefinition(start_date="2026-03-01", end_date="2026-03-04", timezone="UTC")
FIELDS = [
    {"api_name": "Last_Name", "data_type": "text"},
    {"api_name": "Modified_Time", "data_type": "datetime"},
]
RECORDS = [
    {"id": "1", "Last_Name": "First day", "Modified_Time": "2026-03-01T12:00:00+00:00"},
    {"id": "2", "Last_Name": "Second day", "Modified_Time": "2026-03-02T23:59:59+00:00"},
    # 01:00 on 3 March in UTC+05:30 is still 2 March in UTC: partitions are UTC days.
    {"id": "3", "Last_Name": "Second day too", "Modified_Time": "2026-03-03T01:00:00+05:30"},
    {"id": "4", "Last_Name": "Third day", "Modified_Time": "2026-03-03T00:00:00Z"},
]


@dg.asset(partitions_def=DAYS, metadata={TARGET_TABLE_KEY: "crm_copy.my_leads"})
def custom_leads(context: dg.AssetExecutionContext) -> RecordStream:
    start, end = context.partition_time_window
    stats = CallStats(calls=3, credits=4)
    return RecordStream("custom_leads", "Leads", "incremental", FIELDS, [RECORDS], (start, end), stats=stats)


@dg.asset(partitions_def=DAYS, io_manager_key="memory")
def lead_names(custom_leads: list[dict[str, Any]]) -> list[str]:
    return sorted(row["last_name"] for row in custom_leads)


@dg.asset
def not_a_stream() -> dict:
    return {"id": "1"}


def test_metadata_custom_target_and_partition_reads(database_url: str) -> None:
    io_manager = PostgresIOManager(database_url=database_url)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [custom_leads, lead_names],
            partition_key="2026-03-02",
            instance=instance,
            resources={"io_manager": io_manager, "memory": dg.InMemoryIOManager()},
        )
    metadata = {
        k: v.value for k, v in result.asset_materializations_for_node("custom_leads")[0].metadata.items()
    }
    assert metadata["dagster/table_name"] == "crm_copy.my_leads"
    assert metadata["dagster/row_count"] == 4
    assert metadata["dagster/partition_row_count"] == 2
    assert (metadata["rows_inserted"], metadata["rows_updated"]) == (4, 0)
    assert (metadata["api_calls"], metadata["api_credits"]) == (3, 4)
    schema = metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns] == [
        "id",
        "last_name",
        "modified_time",
        "_raw",
        "_zoho_synced_at",
        "_zoho_deleted_at",
    ]
    assert result.output_for_node("lead_names") == ["Second day", "Second day too"]


def test_an_asset_that_returns_no_record_stream_fails_in_one_sentence(database_url: str) -> None:
    io_manager = PostgresIOManager(database_url=database_url)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [not_a_stream], instance=instance, resources={"io_manager": io_manager}, raise_on_error=False
        )
    failure = next(e for e in result.all_events if e.is_step_failure)
    cause = failure.step_failure_data.error.cause
    assert cause.message.strip().endswith(
        "The asset for zoho_crm.not_a_stream returned dict, not a RecordStream; nothing was written."
    )
