"""A bad value from Zoho never fails a run and is never lost.

The row lands, ``_raw`` keeps the value as Zoho sent it, the typed column is NULL, and the run counts what it
rejected (per field, with samples) and which characters it replaced (NUL and lone surrogates → U+FFFD). The
rules are in the docstring of ``zoho_dagster/postgres/schema.py``; the merge rule for an unreadable
``Modified_Time`` in that of ``zoho_dagster/postgres/writer.py``.
"""

import logging
import math
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.io_manager import PostgresIOManager
from zoho_dagster.postgres.tables import TableName
from zoho_dagster.postgres.writer import read_rows, write_stream
from zoho_dagster.record_stream import RecordStream
from zoho_dagster.replication import ReplicatedStream
from zoho_dagster.resource import ZohoCRMResource
from zoho_dagster.streams import stream as catalog_stream
from zoho_dagster_tests.postgres.sync_helpers import (
    FAST,
    anchor_days_ago,
    assets_by_name,
    columns_by_field,
    materialize,
    table,
    today,
    use_simulator,
)

LEADS = TableName("zoho_crm", "leads")
FIELDS = [
    {"api_name": "Last_Name", "data_type": "text", "json_type": "string"},
    {"api_name": "Modified_Time", "data_type": "datetime", "json_type": "string"},
    {"api_name": "Follow_Up", "data_type": "date", "json_type": "string"},
    {"api_name": "Seen_At", "data_type": "datetime", "json_type": "string"},
    {"api_name": "Seats", "data_type": "integer", "json_type": "integer"},
    {"api_name": "External_Ref", "data_type": "bigint", "json_type": "string"},
    {"api_name": "Annual_Revenue", "data_type": "currency", "json_type": "double"},
    {"api_name": "Opt_Out", "data_type": "boolean", "json_type": "boolean"},
    {"api_name": "Products", "data_type": "multiselectpicklist", "json_type": "jsonarray"},
    {"api_name": "Owner", "data_type": "ownerlookup", "json_type": "jsonobject"},
    {"api_name": "Tag", "data_type": "text", "json_type": "string"},
    {"api_name": "Description", "data_type": "textarea", "json_type": "string"},
]
COLUMN = {
    "Follow_Up": "follow_up",
    "Seen_At": "seen_at",
    "Seats": "seats",
    "External_Ref": "external_ref",
    "Annual_Revenue": "annual_revenue",
    "Opt_Out": "opt_out",
    "Products": "products",
}

BAD_VALUES: list[tuple[str, Any]] = [
    ("Follow_Up", "2024-13-45"),  # today: DatetimeFieldOverflow fails the run
    ("Follow_Up", "not a date"),  # today: InvalidDatetimeFormat fails the run
    ("Follow_Up", "2023-02-29"),
    ("Follow_Up", "today"),  # today: stored as the sync's own date
    ("Follow_Up", "infinity"),  # today: stored as infinity
    ("Follow_Up", "2024-01-05T00:00:00Z"),  # a date-time where a date belongs
    ("Seen_At", "now"),  # today: stored as the sync's own time
    ("Seen_At", "-infinity"),
    ("Seen_At", "2024-01-05T10:00:00"),  # no offset: today read in the session's time zone
    ("Seen_At", "2024-01-05 10:00:00+00:00"),
    ("Seen_At", "2024-01-05T24:00:00Z"),
    ("Seen_At", "2024-01-05T10:00:00+16:00"),  # an offset Postgres refuses
    ("Annual_Revenue", "NaN"),  # today: stored as NaN
    ("Annual_Revenue", "Infinity"),
    ("Annual_Revenue", "1,5"),
    ("Annual_Revenue", "1e999999"),  # more digits than numeric holds
    ("Seats", "many"),
    ("Seats", 1.5),
    ("Seats", "1_000"),
    ("External_Ref", "9223372036854775808"),  # past bigint
    ("Opt_Out", "yes"),
    ("Opt_Out", 1),
    ("Products", 42),
]


def lead(record_id: str, modified: str, **values: object) -> dict:
    record = {"id": record_id, "Modified_Time": modified, "Last_Name": f"Name {record_id}"}
    record.update(values)
    return record


def stream(records: list[dict], deletions: list[dict] | None = None) -> RecordStream:
    deleted = (lambda: iter([deletions])) if deletions is not None else None
    return RecordStream("leads", "Leads", "incremental", FIELDS, [records], deletions=deleted)


def rows(url: str) -> dict[str, dict]:
    return {row["id"]: row for row in read_rows(make_engine(url), LEADS)}


@pytest.mark.parametrize(("field", "value"), BAD_VALUES, ids=[f"{f}={v!r}" for f, v in BAD_VALUES])
def test_a_bad_value_lands_as_null_with_raw_kept_and_is_counted(
    database_url: str, field: str, value: Any
) -> None:
    record = lead("1", "2026-03-01T00:00:00Z", Seats=7)
    record[field] = value
    result = write_stream(make_engine(database_url), stream([record]), LEADS)
    row = rows(database_url)["1"]
    assert row["_raw"][field] == value
    assert row[COLUMN[field]] is None
    assert row["last_name"] == "Name 1"
    assert result.values.rejected == {field: 1}
    assert result.values.rejected_total == 1
    [sample] = result.values.samples
    assert (sample["id"], sample["field"], sample["value"]) == ("1", field, str(value))
    assert sample["reason"]


def test_good_values_are_still_typed_and_not_counted(database_url: str) -> None:
    record = lead(
        "1",
        "2026-03-01T10:00:00.250-07:00",
        Follow_Up="2024-02-29",
        Seen_At="2026-03-01T10:00:00z",
        Seats="42",
        External_Ref="-9223372036854775808",
        Annual_Revenue="1.5e3",
        Opt_Out="TRUE",
        Products=[],
    )
    result = write_stream(make_engine(database_url), stream([record]), LEADS)
    row = rows(database_url)["1"]
    assert row["modified_time"] == datetime(2026, 3, 1, 17, 0, 0, 250000, tzinfo=timezone.utc)
    assert row["follow_up"] == date(2024, 2, 29)
    assert row["seen_at"] == datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
    assert (row["seats"], row["external_ref"]) == (42, -9223372036854775808)
    assert row["annual_revenue"] == Decimal("1500")
    assert (row["opt_out"], row["products"]) == (True, [])
    assert (result.values.rejected, result.values.replaced) == ({}, {})


def test_non_finite_floats_are_rejected_and_raw_stays_valid_json(database_url: str) -> None:
    """A JSON parser turns ``NaN`` and ``1e400`` into floats JSON itself cannot hold: _raw spells them."""
    record = lead("1", "2026-03-01T00:00:00Z", Annual_Revenue=math.nan, Seats=math.inf)
    result = write_stream(make_engine(database_url), stream([record]), LEADS)
    row = rows(database_url)["1"]
    assert (row["annual_revenue"], row["seats"]) == (None, None)
    assert (row["_raw"]["Annual_Revenue"], row["_raw"]["Seats"]) == ("NaN", "Infinity")
    assert result.values.rejected == {"Annual_Revenue": 1, "Seats": 1}


def test_nul_and_lone_surrogates_are_replaced_and_counted(database_url: str) -> None:
    bad = "\ud800"
    record = lead(
        "1",
        "2026-03-01T00:00:00Z",
        Last_Name="Null\x00Byte",
        Description=f"half{bad}pair and \udfff",
        Owner={"id": "9", "name": f"Owner{bad}", "email": "o@example.com"},
        Products=["CRM", f"D{bad}sk"],
        Tag=[{"name": "T\x00ag", "id": "1"}],
        Unlisted={f"key{bad}": "x\x00"},
    )
    result = write_stream(make_engine(database_url), stream([record]), LEADS)
    row = rows(database_url)["1"]
    assert row["last_name"] == "Null\ufffdByte"
    assert row["description"] == "half\ufffdpair and \ufffd"
    assert row["owner_name"] == "Owner\ufffd"
    assert row["products"] == ["CRM", "D\ufffdsk"]
    assert row["tag"] == [{"name": "T\ufffdag", "id": "1"}]
    raw = row["_raw"]
    assert raw["Last_Name"] == "Null\ufffdByte" and raw["Description"] == "half\ufffdpair and \ufffd"
    assert raw["Unlisted"] == {"key\ufffd": "x\ufffd"}
    assert result.values.replaced == {
        "Last_Name": 1,
        "Description": 2,
        "Owner": 1,
        "Products": 1,
        "Tag": 1,
        "Unlisted": 2,
    }
    assert result.values.replaced_total == 8
    assert result.values.rejected == {}


def test_an_unreadable_modified_time_keeps_the_row_and_never_wins(database_url: str) -> None:
    engine = make_engine(database_url)
    deletions = [{"id": "3", "deleted_time": "2026-03-02T00:00:00Z", "type": "recycle"}]
    write_stream(engine, stream([lead("1", "2026-03-05T00:00:00Z", Seats=5)], deletions=deletions), LEADS)
    result = write_stream(
        engine,
        stream(
            [lead("1", "garbage", Seats=1), lead("2", "garbage", Seats=2), lead("3", "2026-13-01T00:00Z")]
        ),
        LEADS,
    )
    stored = rows(database_url)
    # A version whose Modified_Time cannot be read never replaces one that can be.
    assert stored["1"]["seats"] == 5 and stored["1"]["_raw"]["Modified_Time"] == "2026-03-05T00:00:00Z"
    # A new record lands with a NULL cursor column and the value in _raw.
    assert stored["2"]["modified_time"] is None and stored["2"]["seats"] == 2
    assert stored["2"]["_raw"]["Modified_Time"] == "garbage"
    # It may fill a tombstone, whose deletion mark it cannot be compared with and so keeps.
    assert stored["3"]["_raw"]["Modified_Time"] == "2026-13-01T00:00Z"
    assert stored["3"]["_zoho_deleted_at"] == datetime(2026, 3, 2, tzinfo=timezone.utc)
    assert result.values.rejected == {"Modified_Time": 3}
    assert result.notes == [
        "Record 1 of stream leads (Zoho module Leads) has a Modified_Time that is not an ISO-8601 date-time "
        "with an offset ('garbage'); this version was not stored, because the table holds a version with a "
        "readable Modified_Time and an unreadable one never replaces it.",
        "Record 2 of stream leads (Zoho module Leads) has a Modified_Time that is not an ISO-8601 date-time "
        "with an offset ('garbage'); it was kept as a row with modified_time NULL and the value in _raw, and "
        "any version with a readable Modified_Time will replace it.",
        "Record 3 of stream leads (Zoho module Leads) has a Modified_Time that is not an ISO-8601 date-time "
        "with an offset ('2026-13-01T00:00Z'); it was kept as a row with modified_time NULL and the value in "
        "_raw, and any version with a readable Modified_Time will replace it.",
    ]
    # Any readable version replaces it, however old; an unreadable one does not replace that again.
    write_stream(engine, stream([lead("2", "2020-01-01T00:00:00Z", Seats=3)]), LEADS)
    write_stream(engine, stream([lead("2", "garbage again", Seats=4)]), LEADS)
    assert rows(database_url)["2"]["seats"] == 3


def test_an_unreadable_deleted_time_is_counted_not_fatal(database_url: str) -> None:
    engine = make_engine(database_url)
    write_stream(
        engine, stream([lead("1", "2026-03-01T00:00:00Z"), lead("2", "2026-03-01T00:00:00Z")]), LEADS
    )
    deletions = [
        {"id": "1", "deleted_time": "yesterday", "type": "recycle"},
        {"id": "2", "deleted_time": "2026-03-02T00:00:00Z", "type": "recycle"},
    ]
    result = write_stream(engine, stream([], deletions=deletions), LEADS)
    stored = rows(database_url)
    assert stored["1"]["_zoho_deleted_at"] is None
    assert stored["2"]["_zoho_deleted_at"] == datetime(2026, 3, 2, tzinfo=timezone.utc)
    assert result.values.rejected == {"deleted_time": 1}


# --- End to end: a bad value injected into the simulator, the leads asset materialized with its checks.


@pytest.fixture
def zoho(monkeypatch: pytest.MonkeyPatch, simulator: Any, database_url: str) -> Any:
    use_simulator(monkeypatch, simulator, database_url)
    return simulator


def run(
    instance: dg.DagsterInstance,
    targets: list[Any],
    partition: str | None = None,
    selection: dg.AssetSelection | None = None,
) -> dg.ExecuteInProcessResult:
    tags = {"dagster/asset_partition_range_start": partition, "dagster/asset_partition_range_end": partition}
    return dg.materialize(
        targets,
        instance=instance,
        resources={
            "zoho_crm": ZohoCRMResource.from_env(requests_per_second=FAST),
            "zoho_crm_io_manager": PostgresIOManager(),
        },
        tags=tags if partition else {},
        selection=selection,
        raise_on_error=False,
    )


def test_a_bad_value_from_zoho_lands_and_is_reported(zoho: Any, database_url: str) -> None:
    leads = assets_by_name(anchor_days_ago(3))["leads"]
    some_id = zoho.control.truth("Leads")["data"][0]["id"]
    zoho.control.update(
        "Leads",
        some_id,
        {"Follow_Up_Date__c": "2024-13-45", "Budget__c": "NaN", "Description": "before\x00after"},
    )
    with dg.instance_for_test() as instance:
        synced = run(instance, [leads], today().isoformat())
        assert synced.success  # today: DatetimeFieldOverflow, naming neither record nor field
        row = table(database_url, "leads")[some_id]
        columns = columns_by_field(database_url, "leads")
        assert row["_raw"]["Follow_Up_Date__c"] == "2024-13-45" and row["_raw"]["Budget__c"] == "NaN"
        assert row[columns[("Follow_Up_Date__c", "")]] is None and row[columns[("Budget__c", "")]] is None
        assert row[columns[("Description", "")]] == "before\ufffdafter"
        materialization = synced.asset_materializations_for_node("leads")[-1]
        metadata = {k: v.value for k, v in materialization.metadata.items()}
        assert metadata["rejected_values"] == {"Budget__c": 1, "Follow_Up_Date__c": 1}
        assert metadata["rejected_values_total"] == 2
        assert {(s["id"], s["field"], s["value"]) for s in metadata["rejected_values_sample"]} == {
            (some_id, "Budget__c", "NaN"),
            (some_id, "Follow_Up_Date__c", "2024-13-45"),
        }
        assert metadata["replaced_characters"] == {"Description": 1}
        assert metadata["replaced_characters_total"] == 1

        from zoho_dagster.checks import VALUES, build_values_checks

        checks = build_values_checks([ReplicatedStream(catalog_stream("leads"), LEADS)])
        # The check alone, as a checks-only run would: it reads the latest materialization's metadata.
        checked = run(instance, [leads, *checks], selection=dg.AssetSelection.checks(*checks))
    [evaluation] = [e for e in checked.get_asset_check_evaluations() if e.check_name == VALUES]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["rejected_values_total"].value == 2
    assert evaluation.metadata["replaced_characters_total"].value == 1
    assert "Follow_Up_Date__c: 1" in (evaluation.description or "")


def test_the_values_check_passes_when_nothing_was_rejected(zoho: Any, database_url: str) -> None:
    """Run with the materialization, the check reads the figures of the same run."""
    from zoho_dagster.checks import VALUES, build_values_checks

    users = assets_by_name(anchor_days_ago(3))["users"]
    checks = build_values_checks([ReplicatedStream(catalog_stream("users"), TableName("zoho_crm", "users"))])
    result = materialize([users, *checks])
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == VALUES]
    assert evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert sa.inspect(make_engine(database_url)).has_table("users", schema="zoho_crm")


@dg.asset(metadata={"dagster/table_name": "zoho_crm.leads"})
def hand_made_leads() -> RecordStream:
    return stream([lead("1", "2026-03-01T00:00:00Z"), lead("2", "garbage"), lead("3", "2026-03-01")])


def test_an_unreadable_modified_time_is_one_sentence_in_the_log_and_metadata(database_url: str) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [hand_made_leads],
            instance=instance,
            resources={"io_manager": PostgresIOManager(database_url=database_url)},
        )
        logged = [
            record.user_message
            for record in instance.all_logs(result.run_id)
            if record.level == logging.WARNING
        ]
    assert result.success
    sentence = (
        "Record 2 of stream leads (Zoho module Leads) has a Modified_Time that is not an ISO-8601 date-time "
        "with an offset ('garbage'); it was kept as a row with modified_time NULL and the value in _raw, and "
        "any version with a readable Modified_Time will replace it."
    )
    materialization = result.asset_materializations_for_node("hand_made_leads")[0]
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["unreadable_cursors"][0] == sentence and len(metadata["unreadable_cursors"]) == 2
    assert metadata["rejected_values"] == {"Modified_Time": 2}
    assert sentence in logged
    assert (
        "zoho_crm.leads: 2 values rejected (Modified_Time: 2), stored as NULL in their columns and as "
        in (" ".join(logged))
    )
    assert set(rows(database_url)) == {"1", "2", "3"}
