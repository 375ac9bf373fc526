"""``_raw`` compression: lz4 for tables a run creates, where the server has it; old tables keep theirs."""

import sqlalchemy as sa

from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.tables import TableName
from zoho_dagster.postgres.writer import write_stream
from zoho_dagster_tests.postgres.test_writer import FIELDS, LEADS, lead, rows, stream

BIG = "x" * 300  # with 40 fields of noise, _raw is past the 2 KB at which Postgres compresses


def big_lead(record_id: str, modified: str) -> dict:
    noise = {f"Extra_{i}": f"{record_id}-{i}-{BIG[: 60 + i % 10]}" for i in range(40)}
    return lead(record_id, modified, Tag=BIG, **noise)


def server_has_lz4(conn: sa.Connection) -> bool:
    if (conn.dialect.server_version_info or (0,)) < (14,):
        return False
    found = conn.execute(
        sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar_one_or_none()
    return bool(found) and "lz4" in found


def stored_methods(conn: sa.Connection, table: TableName) -> set[str | None]:
    """The method each stored ``_raw`` value was actually compressed with (NULL: stored uncompressed)."""
    query = sa.text(f'SELECT DISTINCT pg_column_compression(_raw) FROM "{table.schema}"."{table.name}"')
    return set(conn.execute(query).scalars())


def test_a_new_table_compresses_raw_with_lz4_where_the_server_has_it(database_url: str) -> None:
    engine = make_engine(database_url)
    records = [big_lead(str(i), "2026-03-01T00:00:00Z") for i in range(1, 6)]
    write_stream(engine, stream(records), LEADS)
    with engine.connect() as conn:
        methods = stored_methods(conn, LEADS)
        lz4 = server_has_lz4(conn)
        default = conn.execute(sa.text("SHOW default_toast_compression")).scalar_one()
    assert methods == ({"lz4"} if lz4 else {default})
    assert rows(database_url)["3"]["_raw"]["Extra_3"].startswith("3-3-")  # the values read back whole


def test_an_existing_table_keeps_its_method_and_merges_into_it(database_url: str) -> None:
    engine = make_engine(database_url)
    write_stream(engine, stream([big_lead("1", "2026-03-01T00:00:00Z")]), LEADS)
    with engine.begin() as conn:  # as a table created before this project chose lz4
        conn.exec_driver_sql('ALTER TABLE "zoho_crm"."leads" ALTER COLUMN "_raw" SET COMPRESSION pglz')
    later = [big_lead(str(i), "2026-03-02T00:00:00Z") for i in range(1, 4)]
    result = write_stream(engine, stream(later, fields=FIELDS), LEADS)
    assert (result.inserted, result.updated) == (2, 1)
    with engine.connect() as conn:
        newest = conn.execute(
            sa.text("SELECT DISTINCT pg_column_compression(_raw) FROM zoho_crm.leads WHERE id IN ('2', '3')")
        ).scalars()
        assert set(newest) == {"pglz"}
    assert rows(database_url)["1"]["_raw"]["Modified_Time"] == "2026-03-02T00:00:00Z"
