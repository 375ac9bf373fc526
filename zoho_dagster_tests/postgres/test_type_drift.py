"""Type drift: a Zoho field whose data type changes is migrated in the run's transaction, never a raw
``DatatypeMismatch`` (docs/design.md §3, "Type drift").

Two levels. Every pair of column types, through the writer alone: after the migration the new column holds
exactly what a table created for the new type holds for the same Zoho value (the writer's parsers decide,
never a cast that would disagree), and the old column survives whenever the cast could lose anything. Then
end to end with the simulator's Leads: a table whose columns were stored under older types (written into
Postgres directly, as the sync of an older field definition would have left them) is synced again.
"""

import json
import math
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from zoho_dagster.assets import build_stream_asset
from zoho_dagster.checks import columns_result
from zoho_dagster.client import listable_fields
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.tables import TableName
from zoho_dagster.postgres.writer import write_stream
from zoho_dagster.record_stream import RecordStream
from zoho_dagster.replication import ReplicatedStream
from zoho_dagster.streams import stream
from zoho_dagster_tests.operations_support import earliest_modified, resources, zoho_resource

UTC = timezone.utc

# One Zoho field definition per Postgres type the writer uses, with Zoho values of that type
# (docs/zoho-crm-api.md §3.3, §5), some of which another type refuses.
SHAPES: dict[str, tuple[dict[str, str], list[Any]]] = {
    "text": ({"data_type": "text", "json_type": "string"}, ["42", "hello", "2024-02-29", "true"]),
    "bigint": ({"data_type": "integer", "json_type": "integer"}, [42, -7]),
    "numeric": ({"data_type": "currency", "json_type": "double"}, [1500.5, 3, 1000.0]),
    "boolean": ({"data_type": "boolean", "json_type": "boolean"}, [True, False]),
    "date": ({"data_type": "date", "json_type": "string"}, ["2024-02-29"]),
    "timestamp with time zone": (
        {"data_type": "datetime", "json_type": "string"},
        ["2024-02-29T10:15:00+05:30"],
    ),
    "text[]": ({"data_type": "multiselectpicklist", "json_type": "jsonarray"}, [["a", "b"], []]),
    "jsonb": ({"data_type": "layout", "json_type": "jsonobject"}, [{"name": "Standard", "id": "1"}]),
}
PAIRS = [(old, new) for old in SHAPES for new in SHAPES if old != new]


def _records(values: list[Any]) -> list[dict[str, Any]]:
    return [{"id": str(index), "F": value} for index, value in enumerate(values, start=1)]


def _write(url: str, table: TableName, type_name: str, records: list[dict[str, Any]]) -> None:
    field = {"api_name": "F", **SHAPES[type_name][0]}
    pages = [records] if records else []
    write_stream(
        make_engine(url),
        RecordStream("drift", "Drift", "incremental", [field], pages),
        table,
        cursor_field=None,
    )


def _columns(url: str, table: TableName) -> dict[str, str]:
    """Column → Postgres type, as the catalog says."""
    with make_engine(url).connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT column_name, CASE WHEN data_type = 'ARRAY' THEN 'text[]' "
                "WHEN data_type = 'USER-DEFINED' THEN udt_name ELSE data_type END "
                "FROM information_schema.columns WHERE table_schema = :s AND table_name = :t"
            ),
            {"s": table.schema, "t": table.name},
        )
        return {str(name): str(type_) for name, type_ in rows}


def _values(url: str, table: TableName, column: str) -> dict[str, Any]:
    with make_engine(url).connect() as conn:
        reflected = sa.Table(table.name, sa.MetaData(), schema=table.schema, autoload_with=conn)
        return dict(conn.execute(sa.select(reflected.c.id, reflected.c[column])).tuples().all())


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=[f"{o}->{n}" for o, n in PAIRS])
def test_every_type_change_ends_as_the_new_type_parses_the_zoho_value(
    database_url: str, old: str, new: str
) -> None:
    records = _records(SHAPES[old][1])
    drifted, fresh = TableName("zoho_crm", "drifted"), TableName("zoho_crm", "fresh")
    _write(database_url, drifted, old, records)
    before = _values(database_url, drifted, "f")
    _write(database_url, drifted, new, [])  # the field's type changed; no record changed
    _write(database_url, fresh, new, records)  # what the new type makes of the same Zoho values

    columns = _columns(database_url, drifted)
    assert columns["f"] == new
    got, want = _values(database_url, drifted, "f"), _values(database_url, fresh, "f")
    if old == "jsonb" and new == "text":  # refilled from _raw, a jsonb: same JSON, jsonb's key order
        got, want = ({k: json.loads(v) for k, v in values.items()} for values in (got, want))
    assert got == want
    kept = [name for name in columns if name.startswith("f__was_")]
    if kept:
        assert _values(database_url, drifted, kept[0]) == before
    lossless = {
        ("bigint", "numeric"),
        ("bigint", "text"),
        ("numeric", "text"),
        ("boolean", "text"),
        ("date", "text"),
        ("text", "text[]"),
        ("text", "jsonb"),
        ("bigint", "jsonb"),
        ("numeric", "jsonb"),
        ("boolean", "jsonb"),
        ("date", "jsonb"),
    }
    assert (not kept) == ((old, new) in lossless), columns

    _write(database_url, drifted, new, [])  # a second run changes nothing
    assert _columns(database_url, drifted) == columns


# ---------------------------------------------------------------------------------------------- end to end

TARGET = ReplicatedStream(stream("leads"), TableName("zoho_crm", "leads"))
LOSSLESS_FIELD = "Annual_Revenue"  # currency today (numeric); stored as an integer field's bigint
LOSSY_FIELD = "No_of_Employees"  # integer today (bigint); stored as a text field's text


@pytest.fixture(scope="module")
def _small_simulator() -> Iterator[object]:
    from zoho_dagster.simulator import run_simulator

    with run_simulator(records=300) as running:
        yield running


@pytest.fixture
def simulator(_small_simulator: object) -> object:
    _small_simulator.control.reset()  # type: ignore[attr-defined]
    return _small_simulator


def _sync_all(simulator: Any, database_url: str) -> dg.ExecuteInProcessResult:
    """Every Leads record through yearly windows (one run, few Dagster events)."""
    first = earliest_modified(simulator, "Leads")
    yearly = dg.TimeWindowPartitionsDefinition(
        start=datetime(first.year, 1, 1, tzinfo=UTC), cron_schedule="0 0 1 1 *", fmt="%Y", end_offset=1
    )
    asset = build_stream_asset(stream("leads"), "zoho_crm.leads", yearly)
    with dg.instance_for_test() as instance:
        return dg.materialize(
            [asset],
            instance=instance,
            resources=resources(simulator, database_url),
            tags={
                "dagster/asset_partition_range_start": str(first.year),
                "dagster/asset_partition_range_end": str(datetime.now(UTC).year),
            },
            raise_on_error=False,
        )


def _column_of(conn: sa.Connection, api_name: str) -> str:
    return str(
        conn.exec_driver_sql(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'zoho_crm.leads'::regclass "
            f"AND col_description(attrelid, attnum) = 'zoho:{api_name}#'"
        ).scalar_one()
    )


def test_a_changed_field_type_is_migrated_and_reported(simulator: Any, database_url: str) -> None:
    assert _sync_all(simulator, database_url).success
    truth = {record["id"]: record for record in simulator.control.truth("Leads")["data"]}
    engine = make_engine(database_url)
    with engine.begin() as conn:
        revenue, employees = _column_of(conn, LOSSLESS_FIELD), _column_of(conn, LOSSY_FIELD)
        # As an older definition of each field would have left the table: Annual_Revenue an integer field,
        # No_of_Employees a text field.
        conn.exec_driver_sql(
            f'ALTER TABLE zoho_crm.leads ALTER COLUMN "{revenue}" TYPE bigint USING floor("{revenue}") + 1'
        )
        conn.exec_driver_sql(
            f'ALTER TABLE zoho_crm.leads ALTER COLUMN "{employees}" TYPE text '
            f"USING \"{employees}\"::text || ' people'"
        )
    fields = zoho_resource(simulator, database_url).get_client().list_fields("Leads")
    with engine.connect() as conn:
        before = columns_result(conn, TARGET, fields)
    assert not before.passed
    assert len(before.metadata["changed_types"].value) == 2

    assert _sync_all(simulator, database_url).success  # no DatatypeMismatch

    with engine.connect() as conn:
        types = dict(
            conn.exec_driver_sql(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'zoho_crm' AND table_name = 'leads'"
            ).all()
        )
        rows = {row["id"]: row for row in conn.exec_driver_sql("SELECT * FROM zoho_crm.leads").mappings()}
        after = columns_result(conn, TARGET, fields)
    kept = f"{employees}__was_text"
    assert types[revenue] == "numeric" and types[employees] == "bigint" and types[kept] == "text"
    for record_id, record in truth.items():
        row = rows[record_id]
        amount, count = record.get(LOSSLESS_FIELD), record.get(LOSSY_FIELD)
        # The sync rewrote every live record; the migrated column held the older amounts until then.
        assert row[revenue] == (None if amount is None else Decimal(str(amount)))
        assert row[kept] == (None if count is None else f"{count} people")
        assert row[employees] == (None if count is None else int(count))
    assert after.passed, after.description
    migrations = {m["column"]: m for m in after.metadata["type_migrations"].value}
    assert migrations[revenue]["old_type"] == "bigint" and migrations[revenue]["new_type"] == "numeric"
    assert migrations[revenue]["migrated"] == "in place"
    assert migrations[employees]["old_type"] == "text" and migrations[employees]["new_type"] == "bigint"
    assert migrations[employees]["migrated"] == f"old column kept as {kept}"
    assert f"{revenue} ({LOSSLESS_FIELD}): bigint → numeric, migrated in place" in after.description
    assert f"old values kept in {kept}" in after.description

    assert _sync_all(simulator, database_url).success  # a second run is a no-op for the columns
    with engine.connect() as conn:
        again = columns_result(conn, TARGET, fields)
        assert len(_column_names(conn)) == len(types)
    assert again.metadata["type_migrations"].value == after.metadata["type_migrations"].value


def _column_names(conn: sa.Connection) -> list[str]:
    return list(
        conn.exec_driver_sql(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'zoho_crm' AND table_name = 'leads'"
        ).scalars()
    )


def test_values_are_kept_in_place_and_refilled_from_raw_outside_the_synced_window(
    simulator: Any, database_url: str
) -> None:
    """A run that rewrites no row: the in-place column keeps its (older) values, the rebuilt one reads
    ``_raw``, and a value the new type refuses is NULL and counted."""
    assert _sync_all(simulator, database_url).success
    truth = {record["id"]: record for record in simulator.control.truth("Leads")["data"]}
    engine = make_engine(database_url)
    with engine.begin() as conn:
        revenue, employees = _column_of(conn, LOSSLESS_FIELD), _column_of(conn, LOSSY_FIELD)
        conn.exec_driver_sql(
            f'ALTER TABLE zoho_crm.leads ALTER COLUMN "{revenue}" TYPE bigint USING floor("{revenue}") + 1'
        )
        conn.exec_driver_sql(
            f'ALTER TABLE zoho_crm.leads ALTER COLUMN "{employees}" TYPE text '
            f"USING \"{employees}\"::text || ' people'"
        )
        odd = sorted(record_id for record_id, r in truth.items() if r.get(LOSSY_FIELD) is not None)[0]
        conn.execute(
            sa.text(
                "UPDATE zoho_crm.leads SET _raw = jsonb_set(_raw, ARRAY[:f], '\"a few\"') WHERE id = :id"
            ),
            {"f": LOSSY_FIELD, "id": odd},
        )
    # The next sync of a window that holds no record: only the migration touches the table.
    fields = zoho_resource(simulator, database_url).get_client().list_fields("Leads")
    empty = RecordStream("leads", "Leads", "incremental", listable_fields(fields), [])
    write_stream(engine, empty, TableName("zoho_crm", "leads"))

    with engine.connect() as conn:
        rows = {row["id"]: row for row in conn.exec_driver_sql("SELECT * FROM zoho_crm.leads").mappings()}
        after = columns_result(conn, TARGET, fields)
    kept = f"{employees}__was_text"
    for record_id, record in truth.items():
        row = rows[record_id]
        amount, count = record.get(LOSSLESS_FIELD), record.get(LOSSY_FIELD)
        # Older amounts (floor + 1) differ from every value in _raw: kept means cast in place, not refilled.
        expected = None if amount is None else Decimal(math.floor(amount) + 1)
        assert row[revenue] == expected  # kept: the cast did not re-read _raw
        assert row[kept] == (None if count is None else f"{count} people")
        assert row[employees] == (None if count is None or record_id == odd else int(count))
    migrations = {m["column"]: m for m in after.metadata["type_migrations"].value}
    assert migrations[employees]["rejected_values"] == 1
    assert migrations[revenue]["rejected_values"] == 0
    assert "(1 values the new type refuses left NULL)" in after.description


def test_a_type_change_made_in_zoho_is_migrated_by_the_next_sync(simulator: Any, database_url: str) -> None:
    """The simulator changes the fields' types (metadata and values, docs/zoho-crm-api.md §3.3): an integer
    field becomes text (lossless: in place) and a currency field an integer (lossy: the old column kept)."""
    assert _sync_all(simulator, database_url).success
    before = {record["id"]: record for record in simulator.control.truth("Leads")["data"]}
    simulator.control.drift_field("Leads", LOSSY_FIELD, "text")  # integer → text
    simulator.control.drift_field("Leads", LOSSLESS_FIELD, "integer")  # currency → integer
    fields = zoho_resource(simulator, database_url).get_client().list_fields("Leads")
    types_now = {f["api_name"]: f["data_type"] for f in fields}
    assert types_now[LOSSY_FIELD] == "text" and types_now[LOSSLESS_FIELD] == "integer"

    assert _sync_all(simulator, database_url).success
    truth = {record["id"]: record for record in simulator.control.truth("Leads")["data"]}
    engine = make_engine(database_url)
    with engine.connect() as conn:
        employees, revenue = _column_of(conn, LOSSY_FIELD), _column_of(conn, LOSSLESS_FIELD)
        types = dict(
            conn.exec_driver_sql(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'zoho_crm' AND table_name = 'leads'"
            ).all()
        )
        rows = {row["id"]: row for row in conn.exec_driver_sql("SELECT * FROM zoho_crm.leads").mappings()}
        report = columns_result(conn, TARGET, fields)
    kept = f"{revenue}__was_numeric"
    assert types[employees] == "text" and types[revenue] == "bigint" and types[kept] == "numeric"
    assert f"{employees}__was_bigint" not in types
    for record_id, record in truth.items():
        row = rows[record_id]
        old_amount = before[record_id].get(LOSSLESS_FIELD)
        assert row[kept] == (None if old_amount is None else Decimal(str(old_amount)))
        assert row[revenue] == record.get(LOSSLESS_FIELD)
        count = record.get(LOSSY_FIELD)
        assert row[employees] == (None if count is None else str(count))
    assert report.passed, report.description
    migrations = {m["column"]: m for m in report.metadata["type_migrations"].value}
    assert migrations[employees]["migrated"] == "in place"
    assert (migrations[employees]["old_type"], migrations[employees]["new_type"]) == ("bigint", "text")
    assert migrations[revenue]["migrated"] == f"old column kept as {kept}"
    assert (migrations[revenue]["old_type"], migrations[revenue]["new_type"]) == ("numeric", "bigint")

    assert _sync_all(simulator, database_url).success
    with engine.connect() as conn:
        again = columns_result(conn, TARGET, fields)
    assert again.metadata["type_migrations"].value == report.metadata["type_migrations"].value
