"""COPY of rendered text lines into a table, streamed: how every table of this package is loaded (the record
writer's staging, child tables, type-drift refills, the metadata tables and the formula refresh).

Lines come from :func:`zoho_dagster.postgres.schema.render_value` and friends (COPY text format, escaped), so
what Postgres receives follows the same value rules as the record writer.

Why one streamed COPY rather than a COPY per buffered chunk: with a chunk per statement, Python rendered a
chunk and then waited while Postgres parsed it, so the two never worked at the same time (on a 100,000-Lead
backfill the wait was a third of the sync). In one statement fed by a reader, psycopg2 sends each chunk and
asks for the next while the server is still parsing the last one.
"""

from collections.abc import Iterable, Iterator

import sqlalchemy as sa

CHUNK_CHARS = 512 * 1024
"""Text handed to the server per read: big enough to amortise calls, small enough for the memory budget and
for the server to start parsing early."""


class _LineReader:
    """The file-like object ``copy_expert`` reads: about :data:`CHUNK_CHARS` of ``lines`` per ``read``.

    An exception from ``lines`` (a page that failed to load, a record with no id) is kept, not raised into
    psycopg2, which would replace it with a generic "COPY from stdin failed": the reader ends the data there,
    and :func:`copy_lines` raises the original once the statement returns, so the caller's transaction rolls
    back on the real cause.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines: Iterator[str] = iter(lines)
        self.count = 0
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> str:
        parts: list[str] = []
        total = 0
        try:
            for line in self._lines:
                parts.append(line)
                total += len(line)
                self.count += 1
                if total >= CHUNK_CHARS:
                    break
        except BaseException as error:  # re-raised by copy_lines after the statement
            self.error = error
            return ""
        return "".join(parts)


def copy_lines(conn: sa.Connection, table: sa.Table, lines: Iterable[str]) -> int:
    """COPY ``lines`` into every column of ``table``, in order; returns the line count.

    ``lines`` is pulled while the statement runs and may be a lazy generator of pages being fetched, as long
    as it does not itself use ``conn`` (the connection is busy with the COPY until the last line).
    """
    preparer = conn.dialect.identifier_preparer
    statement = "COPY {} ({}) FROM STDIN".format(
        preparer.format_table(table), ", ".join(preparer.quote(c.name) for c in table.columns)
    )
    reader = _LineReader(lines)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(statement, reader, size=CHUNK_CHARS)
    finally:
        cursor.close()
    if reader.error is not None:
        raise reader.error
    return reader.count
