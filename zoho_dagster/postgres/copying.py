"""COPY of rendered text lines into a table, in chunks: how every table of this package is loaded (the
record writer's staging, child tables, type-drift refills, the metadata tables and the formula refresh).

Lines come from :func:`zoho_dagster.postgres.schema.render_value` and friends (COPY text format, escaped), so
what Postgres receives follows the same value rules as the record writer.
"""

import io
from collections.abc import Iterable

import sqlalchemy as sa

FLUSH_BYTES = 4 * 1024 * 1024
"""Chunk size: big enough to amortise round trips, small enough for the memory budget."""


def copy_lines(conn: sa.Connection, table: sa.Table, lines: Iterable[str]) -> int:
    """COPY ``lines`` into every column of ``table``, in order; returns the line count.

    ``lines`` is pulled one chunk at a time and may be a lazy generator of pages being fetched, as long as it
    does not itself use ``conn`` while a chunk is sent (it never does between chunks).
    """
    preparer = conn.dialect.identifier_preparer
    statement = "COPY {} ({}) FROM STDIN".format(
        preparer.format_table(table), ", ".join(preparer.quote(c.name) for c in table.columns)
    )
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    buffer = io.StringIO()
    count = 0
    try:
        for line in lines:
            buffer.write(line)
            count += 1
            if buffer.tell() >= FLUSH_BYTES:
                buffer.seek(0)
                cursor.copy_expert(statement, buffer)
                buffer = io.StringIO()
        if buffer.tell():
            buffer.seek(0)
            cursor.copy_expert(statement, buffer)
    finally:
        cursor.close()
    return count
