"""Column and table names: a pure function of the module's field list, for any API name and any table name.

Standard fields win the plain snake_case name over custom look-alikes, non-ASCII letters are kept (within
Postgres' 63 bytes), existing tables keep the columns their comments name, and any character is safe in a
target table name (rules in the docstring of ``zoho_dagster/postgres/schema.py``).
"""

from typing import Any

import pytest
import sqlalchemy as sa

from zoho_dagster.assets import build_stream_assets
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.tables import TableName
from zoho_dagster.postgres.writer import read_rows, write_stream
from zoho_dagster.record_stream import RecordStream
from zoho_dagster.streams import stream as catalog_stream
from zoho_dagster_tests.postgres.sync_helpers import anchor_days_ago, materialize, today, use_simulator

LEADS = TableName("zoho_crm", "leads")
MODIFIED = {"api_name": "Modified_Time", "data_type": "datetime", "json_type": "string"}


def text_field(api_name: str, custom: bool | None = None) -> dict[str, Any]:
    field: dict[str, Any] = {"api_name": api_name, "data_type": "text", "json_type": "string"}
    if custom is not None:
        field["custom_field"] = custom
    return field


def write(url: str, fields: list[dict], records: list[dict], target: TableName = LEADS) -> None:
    write_stream(make_engine(url), RecordStream("leads", "Leads", "incremental", fields, [records]), target)


def column_of(url: str, table: TableName = LEADS) -> dict[str, str]:
    """API name (with ``#part``) → column, from the comments the writer leaves on each column."""
    columns = sa.inspect(make_engine(url)).get_columns(table.name, table.schema)
    return {
        c["comment"][len("zoho:") :].removesuffix("#"): c["name"]
        for c in columns
        if (c.get("comment") or "").startswith("zoho:")
    }


LOOK_ALIKES = [
    MODIFIED,
    text_field("FirstName", custom=True),  # a custom field whose API name has no __c
    text_field("First_Name", custom=False),
    text_field("AB__c"),  # custom by its suffix; sorts before the standard Ab_C
    text_field("Ab_C"),
]


@pytest.mark.parametrize("order", ["as listed", "reversed"])
def test_standard_fields_win_the_plain_name_over_custom_look_alikes(database_url: str, order: str) -> None:
    fields = LOOK_ALIKES if order == "as listed" else list(reversed(LOOK_ALIKES))
    record = {"id": "1", "Modified_Time": "2026-03-01T00:00:00Z"}
    record.update({f["api_name"]: f"value of {f['api_name']}" for f in LOOK_ALIKES[1:]})
    write(database_url, fields, [record])
    columns = column_of(database_url)
    assert columns["First_Name"] == "first_name" and columns["Ab_C"] == "ab_c"
    assert columns["FirstName"].startswith("first_name_") and columns["AB__c"].startswith("ab_c_")
    [row] = read_rows(make_engine(database_url), LEADS)
    assert all(
        row[columns[name]] == f"value of {name}" for name in ("FirstName", "First_Name", "AB__c", "Ab_C")
    )


def test_an_older_table_keeps_its_columns(database_url: str) -> None:
    """A table where the custom look-alike took the plain name earlier keeps it: names never move."""
    with make_engine(database_url).begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA zoho_crm"))
        conn.execute(
            sa.text(
                "CREATE TABLE zoho_crm.leads (id text PRIMARY KEY, modified_time timestamptz, "
                "first_name text, first_name_fce1e505 text, _raw jsonb, _zoho_synced_at timestamptz, "
                "_zoho_deleted_at timestamptz)"
            )
        )
        for column, comment in (
            ("id", "id#"),
            ("modified_time", "Modified_Time#"),
            ("first_name", "FirstName#"),
            ("first_name_fce1e505", "First_Name#"),
        ):
            conn.execute(sa.text(f"COMMENT ON COLUMN zoho_crm.leads.{column} IS 'zoho:{comment}'"))
    fields = [MODIFIED, text_field("FirstName", custom=True), text_field("First_Name", custom=False)]
    record = {"id": "1", "Modified_Time": "2026-03-01T00:00:00Z", "FirstName": "custom", "First_Name": "std"}
    write(database_url, fields, [record])
    [row] = read_rows(make_engine(database_url), LEADS)
    assert (row["first_name"], row["first_name_fce1e505"]) == ("custom", "std")
    assert column_of(database_url)["First_Name"] == "first_name_fce1e505"


JAPANESE = "日本語フィールド__c"
LONG_A = "長い項目名" * 10 + "甲"
LONG_B = "長い項目名" * 10 + "乙"


def test_non_ascii_api_names_keep_their_letters(database_url: str) -> None:
    fields = [
        MODIFIED,
        text_field(JAPANESE),
        text_field("Größe"),
        text_field("ÉtatCivil"),
        text_field("हिन्दी_नाम"),
        text_field(LONG_A),
        text_field(LONG_B),
        text_field("Rate_%__c"),
        {"api_name": "Käufer", "data_type": "lookup", "json_type": "jsonobject"},
    ]
    record = {
        "id": "1",
        "Modified_Time": "2026-03-01T00:00:00Z",
        JAPANESE: "ja",
        "Größe": "de",
        "ÉtatCivil": "fr",
        "हिन्दी_नाम": "hi",
        LONG_A: "a",
        LONG_B: "b",
        "Rate_%__c": "pct",
        "Käufer": {"id": "7", "name": "K"},
    }
    write(database_url, fields, [record])
    columns = column_of(database_url)
    assert columns[JAPANESE] == "日本語フィールド_c"
    assert columns["Größe"] == "größe" and columns["ÉtatCivil"] == "état_civil"
    assert columns["हिन्दी_नाम"] == "हिन्दी_नाम"
    assert columns["Rate_%__c"] == "rate_c"
    assert (columns["Käufer#id"], columns["Käufer#name"]) == ("käufer_id", "käufer_name")
    long_a, long_b = columns[LONG_A], columns[LONG_B]
    assert long_a != long_b and long_a.startswith("長い項目名") and long_b.startswith("長い項目名")
    assert all(len(name.encode()) <= 63 for name in columns.values())
    [row] = read_rows(make_engine(database_url), LEADS)
    assert [row[columns[k]] for k in (JAPANESE, "Größe", "ÉtatCivil", "हिन्दी_नाम", LONG_A, LONG_B)] == [
        "ja",
        "de",
        "fr",
        "hi",
        "a",
        "b",
    ]
    assert (row["käufer_id"], row["käufer_name"], row["rate_c"]) == ("7", "K", "pct")


ODD_TABLES = ["crm.le%ads", 'crm."odd name"', "crm.顧客一覧", "crm." + "t" * 60]


@pytest.mark.parametrize("name", ODD_TABLES)
def test_any_table_name_works_for_full_refresh_and_incremental(database_url: str, name: str) -> None:
    engine = make_engine(database_url)
    target = TableName.parse(name)
    users = [{"api_name": "full_name", "data_type": "text"}]
    for run in ("first", "second"):
        records = [{"id": "u1", "full_name": f"One {run}"}]
        write_stream(engine, RecordStream("users", None, "full-refresh", users, [records]), target)
    assert [(r["id"], r["full_name"]) for r in read_rows(engine, target)] == [("u1", "One second")]

    incremental = TableName(target.schema, "i" + target.name[:59])
    write(database_url, [MODIFIED], [{"id": "1", "Modified_Time": "2026-03-01T00:00:00Z"}], incremental)
    more = [MODIFIED, text_field("Added_Later")]
    write(
        database_url,
        more,
        [{"id": "2", "Modified_Time": "2026-03-02T00:00:00Z", "Added_Later": "x"}],
        incremental,
    )
    stored = {r["id"]: r for r in read_rows(engine, incremental)}
    assert set(stored) == {"1", "2"} and stored["2"]["added_later"] == "x"


def test_streams_sync_into_odd_table_names(
    monkeypatch: pytest.MonkeyPatch, simulator: Any, database_url: str
) -> None:
    use_simulator(monkeypatch, simulator, database_url)
    tables = {"users": "crm.us%ers", "leads": 'crm."odd name"'}
    assets = {
        a.key.to_user_string(): a
        for a in build_stream_assets(
            [catalog_stream("users"), catalog_stream("leads")], tables, anchor_days_ago(3)
        )
    }
    materialize([assets["users"]])
    materialize([assets["users"]])
    materialize([assets["leads"]], today())
    engine = make_engine(database_url)
    truth_users = simulator.control.truth("users")["data"]  # type: ignore[attr-defined]
    assert {r["id"] for r in read_rows(engine, TableName.parse(tables["users"]))} == {
        u["id"] for u in truth_users
    }
    assert sa.inspect(engine).has_table('"odd name"', schema="crm")
