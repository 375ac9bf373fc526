"""The Postgres side on its own: RecordStreams built from Zoho-shaped dicts, written into a real database."""

import threading
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.tables import TableName
from zoho_dagster.postgres.writer import SyncInputError, read_rows, write_stream
from zoho_dagster.record_stream import RecordStream

LEADS = TableName("zoho_crm", "leads")
AWKWARD = 'Odd "quoted"; DROP TABLE zoho_crm.leads; --' + "x" * 36
LONG = "A" * 80

FIELDS = [
    {"api_name": "Last_Name", "data_type": "text", "json_type": "string"},
    {"api_name": "Modified_Time", "data_type": "datetime", "json_type": "string"},
    {"api_name": "Follow_Up", "data_type": "date", "json_type": "string"},
    {"api_name": "Seats", "data_type": "integer", "json_type": "integer"},
    {"api_name": "External_Ref", "data_type": "bigint", "json_type": "string"},
    {"api_name": "Annual_Revenue", "data_type": "currency", "json_type": "double"},
    {"api_name": "Discount", "data_type": "percent", "json_type": "double"},
    {"api_name": "Opt_Out", "data_type": "boolean", "json_type": "boolean"},
    {"api_name": "Products", "data_type": "multiselectpicklist", "json_type": "jsonarray"},
    {"api_name": "Owner", "data_type": "ownerlookup", "json_type": "jsonobject"},
    {"api_name": "Account", "data_type": "lookup", "json_type": "jsonobject"},
    {"api_name": "Tag", "data_type": "text", "json_type": "string"},
    {"api_name": "Layout", "data_type": "layout", "json_type": "jsonobject"},
    {"api_name": AWKWARD, "data_type": "text", "json_type": "string"},
    {"api_name": LONG, "data_type": "text", "json_type": "string"},
    {"api_name": LONG[:79] + "B", "data_type": "text", "json_type": "string"},
    {"api_name": "FirstName", "data_type": "text", "json_type": "string"},
    {"api_name": "First_Name", "data_type": "text", "json_type": "string"},
]


def lead(record_id: str, modified: str, **values: object) -> dict:
    record = {"id": record_id, "Modified_Time": modified, "Last_Name": f"Name {record_id}"}
    record.update(values)
    return record


def stream(
    records: list[dict], fields: list[dict] | None = None, deletions: list[dict] | None = None, pages: int = 1
) -> RecordStream:
    size = max(1, -(-len(records) // pages))
    chunks = [records[i : i + size] for i in range(0, len(records), size)]
    deleted = (lambda: iter([deletions])) if deletions is not None else None
    return RecordStream("leads", "Leads", "incremental", fields or FIELDS, chunks, deletions=deleted)


def rows(url: str, table: TableName = LEADS) -> dict[str, dict]:
    return {row["id"]: row for row in read_rows(make_engine(url), table)}


def column_names(url: str, table: TableName = LEADS) -> list[str]:
    return [c["name"] for c in sa.inspect(make_engine(url)).get_columns(table.name, table.schema)]


def test_values_are_typed(database_url: str) -> None:
    record = lead(
        "100",
        "2026-03-01T10:00:00+05:30",
        Follow_Up="2026-03-04",
        Seats=42,
        External_Ref="1234567890123456789",
        Annual_Revenue=850000,
        Discount=12.5,
        Opt_Out=True,
        Products=["CRM", 'Desk "pro"', "a,b", "{x}", "back\\slash"],
        Owner={"id": "9", "name": "Patricia Boyle", "email": "p@example.com"},
        Account={"id": "7", "name": "Account\tOne\nLine"},
        Tag=[{"name": "Hot", "id": "1"}],
        Layout={"name": "Standard", "id": "5"},
        Last_Name="O'Brien; \\N \\ end",
    )
    result = write_stream(make_engine(database_url), stream([record]), LEADS)
    assert (result.inserted, result.updated) == (1, 0)
    row = rows(database_url)["100"]
    assert row["modified_time"] == datetime(2026, 3, 1, 4, 30, tzinfo=timezone.utc)
    assert row["follow_up"] == date(2026, 3, 4)
    assert row["seats"] == 42
    assert row["external_ref"] == 1234567890123456789
    assert row["annual_revenue"] == Decimal("850000")
    assert row["discount"] == Decimal("12.5")
    assert row["opt_out"] is True
    assert row["products"] == ["CRM", 'Desk "pro"', "a,b", "{x}", "back\\slash"]
    assert (row["owner_id"], row["owner_name"], row["owner_email"]) == (
        "9",
        "Patricia Boyle",
        "p@example.com",
    )
    assert (row["account_id"], row["account_name"]) == ("7", "Account\tOne\nLine")
    assert "account_email" not in row
    assert row["tag"] == [{"name": "Hot", "id": "1"}]
    assert row["layout"] == {"name": "Standard", "id": "5"}
    assert row["last_name"] == "O'Brien; \\N \\ end"
    assert row["_raw"] == record
    assert row["_zoho_synced_at"] is not None and row["_zoho_deleted_at"] is None


def test_awkward_api_names_are_stored_safely(database_url: str) -> None:
    values = {
        AWKWARD: "awkward",
        LONG: "long A",
        LONG[:79] + "B": "long B",
        "FirstName": "one",
        "First_Name": "two",
    }
    write_stream(make_engine(database_url), stream([lead("1", "2026-03-01T00:00:00Z", **values)]), LEADS)
    names = column_names(database_url)
    assert all(len(name.encode()) <= 63 for name in names)
    assert len(names) == len(set(names))
    row = rows(database_url)["1"]
    placed = {
        value: name for name, value in row.items() if isinstance(value, str) and value in values.values()
    }
    assert set(placed) == set(values.values())
    # The same field metadata in another order maps every field to the same column.
    again = lead("1", "2026-03-02T00:00:00Z", **{k: v + "!" for k, v in values.items()})
    write_stream(make_engine(database_url), stream([again], fields=list(reversed(FIELDS))), LEADS)
    assert column_names(database_url) == names
    row2 = rows(database_url)["1"]
    assert all(row2[name] == value + "!" for value, name in placed.items())
    # The injection attempt in the API name stayed a name: the table is still there, with its rows.
    assert sa.inspect(make_engine(database_url)).has_table("leads", schema="zoho_crm")


def test_newest_version_wins_whatever_the_order(database_url: str) -> None:
    engine = make_engine(database_url)
    write_stream(engine, stream([lead("1", "2026-03-05T00:00:00Z", Seats=5)]), LEADS)
    result = write_stream(
        engine, stream([lead("1", "2026-03-01T00:00:00Z", Seats=1), lead("2", "2026-03-01T00:00:00Z")]), LEADS
    )
    assert (result.inserted, result.updated) == (1, 0)
    assert rows(database_url)["1"]["seats"] == 5
    result = write_stream(engine, stream([lead("1", "2026-03-05T00:00:00Z", Seats=5)]), LEADS)
    assert (result.inserted, result.updated) == (0, 1)
    assert rows(database_url)["1"]["seats"] == 5
    # Two versions of one record in one run (the record moved while being paged): the newest is kept.
    write_stream(
        engine,
        stream(
            [lead("3", "2026-03-09T00:00:00Z", Seats=9), lead("3", "2026-03-02T00:00:00Z", Seats=2)], pages=2
        ),
        LEADS,
    )
    assert rows(database_url)["3"]["seats"] == 9


def test_concurrent_runs_end_at_the_newest_versions(database_url: str) -> None:
    engine = make_engine(database_url)
    batches = [
        [lead(str(i), f"2026-03-{day:02d}T00:00:00Z", Seats=day) for i in range(200)] for day in range(1, 9)
    ]
    errors: list[BaseException] = []

    def run(batch: list[dict]) -> None:
        try:
            write_stream(engine, stream(batch, pages=4), LEADS)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(batch,)) for batch in reversed(batches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = rows(database_url)
    assert len(stored) == 200
    assert {row["seats"] for row in stored.values()} == {8}


def test_a_failing_page_iterator_leaves_the_table_as_it_was(database_url: str) -> None:
    engine = make_engine(database_url)
    write_stream(engine, stream([lead("1", "2026-03-01T00:00:00Z", Seats=1)]), LEADS)
    before = rows(database_url)

    def pages():
        yield [lead("1", "2026-03-09T00:00:00Z", Seats=9), lead("2", "2026-03-09T00:00:00Z")]
        raise ConnectionError("Zoho went away on page 2")

    extra = [*FIELDS, {"api_name": "New_Field", "data_type": "text"}]
    broken = RecordStream("leads", "Leads", "incremental", extra, pages())
    with pytest.raises(ConnectionError):
        write_stream(engine, broken, LEADS)
    assert rows(database_url) == before
    assert "new_field" not in column_names(database_url)


def test_a_record_without_id_is_refused_in_one_sentence(database_url: str) -> None:
    engine = make_engine(database_url)
    write_stream(engine, stream([lead("1", "2026-03-01T00:00:00Z")]), LEADS)
    before = rows(database_url)
    bad = stream(
        [lead("2", "2026-03-02T00:00:00Z"), {"Last_Name": "nobody", "Modified_Time": "2026-03-02T00:00:00Z"}]
    )
    with pytest.raises(SyncInputError, match=r"^Record 2 of stream leads has no id; nothing was written\.$"):
        write_stream(engine, bad, LEADS)
    assert rows(database_url) == before
    # A bad value no longer fails the run (test_bad_values.py): the row lands, the typed column is NULL.
    result = write_stream(engine, stream([lead("3", "2026-03-02T00:00:00Z", Seats="many")]), LEADS)
    assert rows(database_url)["3"]["seats"] is None and result.values.rejected == {"Seats": 1}


def test_new_fields_add_columns_and_nothing_is_dropped(database_url: str) -> None:
    engine = make_engine(database_url)
    write_stream(engine, stream([lead("1", "2026-03-01T00:00:00Z", Seats=1)]), LEADS)
    fewer = [f for f in FIELDS if f["api_name"] != "Seats"] + [
        {"api_name": "Budget__c", "data_type": "currency"}
    ]
    write_stream(engine, stream([lead("2", "2026-03-02T00:00:00Z", Budget__c=10.25)], fields=fewer), LEADS)
    names = column_names(database_url)
    assert "seats" in names and "budget_c" in names
    stored = rows(database_url)
    assert stored["1"]["seats"] == 1 and stored["2"]["budget_c"] == Decimal("10.25")


def test_deletions_follow_the_same_clock(database_url: str) -> None:
    engine = make_engine(database_url)
    write_stream(
        engine, stream([lead("1", "2026-03-01T00:00:00Z"), lead("2", "2026-03-01T00:00:00Z")]), LEADS
    )
    deletions = [
        {"id": "1", "deleted_time": "2026-03-02T05:30:00+05:30", "type": "recycle"},
        {
            "id": "2",
            "deleted_time": "2026-02-01T00:00:00Z",
            "type": "recycle",
        },  # older than the stored version
        {"id": "9", "deleted_time": "2026-03-03T00:00:00Z", "type": "permanent", "display_name": None},
    ]
    result = write_stream(engine, stream([], deletions=deletions), LEADS)
    assert result.deletions_marked == 2
    stored = rows(database_url)
    assert stored["1"]["_zoho_deleted_at"] == datetime(2026, 3, 2, tzinfo=timezone.utc)
    assert stored["2"]["_zoho_deleted_at"] is None
    assert stored["9"]["_zoho_deleted_at"] == datetime(2026, 3, 3, tzinfo=timezone.utc)
    # Re-running an older window keeps the mark; a version modified after the deletion (restored) clears it.
    write_stream(engine, stream([lead("1", "2026-03-01T00:00:00Z")]), LEADS)
    assert rows(database_url)["1"]["_zoho_deleted_at"] is not None
    write_stream(engine, stream([lead("1", "2026-03-04T00:00:00Z")]), LEADS)
    assert rows(database_url)["1"]["_zoho_deleted_at"] is None
    result = write_stream(engine, stream([], deletions=deletions), LEADS)
    assert result.deletions_marked == 0
    assert rows(database_url)["1"]["_zoho_deleted_at"] is None


def test_full_refresh_swaps_the_whole_table(database_url: str) -> None:
    engine = make_engine(database_url)
    users = TableName("zoho_crm", "users")
    fields = [{"api_name": "full_name", "data_type": "text"}, {"api_name": "role", "data_type": "lookup"}]

    def refresh(records: list[dict]):
        return write_stream(engine, RecordStream("users", None, "full-refresh", fields, [records]), users)

    refresh(
        [
            {"id": "u1", "full_name": "One", "role": {"id": "r", "name": "CEO"}},
            {"id": "u2", "full_name": "Two"},
        ]
    )
    result = refresh([{"id": "u2", "full_name": "Two again"}, {"id": "u3", "full_name": "Three"}])
    assert (result.inserted, result.updated, result.row_count) == (1, 1, 2)
    stored = rows(database_url, users)
    assert set(stored) == {"u2", "u3"} and stored["u2"]["full_name"] == "Two again"
    assert column_names(database_url, users) == [
        "id",
        "full_name",
        "role_id",
        "role_name",
        "_raw",
        "_zoho_synced_at",
        "_zoho_deleted_at",
    ]
