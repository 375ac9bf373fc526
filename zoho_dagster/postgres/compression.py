"""How the ``_raw`` column is compressed: lz4 where the server has it, and the same in the staging table.

Why it matters: a Lead's ``_raw`` is about 2.6 KB of JSON, so Postgres compresses it (TOAST) on every write.
Measured on PostgreSQL 15 with 30,000 Leads (README, Benchmarks):

- COPY into a staging table whose ``_raw`` uses pglz (the server default) took 4.7 s, with lz4 3.2 to 3.8 s;
- the merge copies a compressed value as it is when the target column uses the same method (1.9 s), and
  decompresses and compresses it again when it does not (3.4 s into pglz, 2.0 s into lz4);
- both methods left tables of the same size.

So tables this project creates keep ``_raw`` with lz4, and the staging table's ``_raw`` takes whatever the
target's uses, so the merge never compresses twice. Tables that already exist keep their method. lz4 needs
PostgreSQL 14 or later built with it (``default_toast_compression`` lists it); where it is missing, the
tables keep the server's default.

Tried and left: keeping rows whole up to a page (``toast_tuple_target = 8160``). In the staging table the
COPY got 0.5 s faster per 30,000 Leads but the merge 0.35 s slower, since the merge then compresses every
value, at the end of the run where it is waited for. In a synced table, merges got 28% faster, but the
table got 20% bigger, and queries of the typed columns would read ``_raw`` with them.
"""

import sqlalchemy as sa

from zoho_dagster.postgres.tables import TableName

PREFERRED = "lz4"
_METHODS = {"p": "pglz", "l": "lz4"}
"""``pg_attribute.attcompression`` codes; an empty code means the server's ``default_toast_compression``."""


def _supports_methods(conn: sa.Connection) -> bool:
    version = conn.dialect.server_version_info or (0,)
    return version >= (14,)


def preferred_method(conn: sa.Connection) -> str | None:
    """``"lz4"`` when this server can compress with it, else ``None`` (keep the server's default)."""
    if not _supports_methods(conn):
        return None
    methods = conn.execute(
        sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar_one_or_none()
    return PREFERRED if methods and PREFERRED in methods else None


def column_method(conn: sa.Connection, table: TableName, column: str) -> str | None:
    """The method new values of ``table.column`` are compressed with; ``None`` if there is no such column."""
    if not _supports_methods(conn):
        return None
    code = conn.execute(
        sa.text(
            "SELECT a.attcompression FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relname = :table AND a.attname = :column AND NOT a.attisdropped"
        ),
        {"schema": table.schema, "table": table.name, "column": column},
    ).scalar_one_or_none()
    if code is None:
        return None
    if code in _METHODS:
        return _METHODS[code]
    return str(conn.execute(sa.text("SHOW default_toast_compression")).scalar_one())


def set_method(conn: sa.Connection, table: sa.Table, column: str, method: str | None) -> None:
    """Compress new values of ``table.column`` with ``method`` (nothing to do for ``None``)."""
    if method is None or method not in _METHODS.values():
        return
    preparer = conn.dialect.identifier_preparer
    conn.exec_driver_sql(
        f"ALTER TABLE {preparer.format_table(table)} ALTER COLUMN {preparer.quote(column)} "
        f"SET COMPRESSION {method}"
    )
