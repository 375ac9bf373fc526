"""Write one run's RecordStream into its Postgres table: stage with COPY, then merge, all in one transaction.

Why this order: pages are fetched from Zoho while they are copied into a TEMP staging table, before any lock
on the target is taken, so two runs of the same stream fetch in parallel; only the short DDL + merge +
deletion part is serialised (``pg_advisory_xact_lock`` on the table name), which also keeps two runs'
``CREATE``/``ALTER TABLE`` from deadlocking. Everything happens in one transaction, so a run that fails
anywhere leaves the table as it was.

A big incremental window is merged in rounds of :data:`MERGE_EVERY` staged records while it is still being
read (:class:`_MergeRounds`; the lines are rendered in a thread meanwhile, :mod:`.line_feed`), so Postgres
writes the target's rows during the read instead of after it. Such a run takes the lock at its first round
and holds it to its commit; the rounds' result (rows and counts) is that of one merge at the end.

Merge rule (newest wins): a staged version replaces a stored row only when its cursor (``Modified_Time``) is
newer than or equal to the stored one, so windows may overlap, repeat, run out of order or at the same time.
Deletions follow the same clock: a ``/deleted`` entry marks ``_zoho_deleted_at`` unless the stored row was
modified after the deletion (a restored record), and a record version newer than the deletion clears the mark.
Deleted ids never seen before are kept as tombstone rows (``id`` + ``_zoho_deleted_at``) so the table knows
every deletion Zoho reported.

Bad values never fail a run (rules in :mod:`zoho_dagster.postgres.schema`): a value its column's type cannot
take is stored as NULL there and kept in ``_raw``, and :attr:`WriteResult.values` counts it. An unreadable
cursor (a ``Modified_Time`` that is not an ISO-8601 date-time with an offset) is no exception: the record
is kept as a row with the cursor column NULL. Such a version cannot be ordered against others, so it never
replaces a stored version with a readable cursor, and any version with a readable cursor, however old,
replaces it; it may fill a tombstone (keeping the deletion mark), and a deletion marks it. Each such record
gets one sentence in :attr:`WriteResult.notes` saying which of these happened. A ``deleted_time`` that cannot
be read marks nothing and is counted the same way.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from zoho_dagster.postgres import children as ch
from zoho_dagster.postgres import compression, drift
from zoho_dagster.postgres import schema as sc
from zoho_dagster.postgres.copying import copy_lines
from zoho_dagster.postgres.line_feed import LineFeed
from zoho_dagster.postgres.tables import TableName
from zoho_dagster.record_stream import RecordStream

NAMED_RECORDS = 20
"""Records with an unreadable cursor named one by one in :attr:`WriteResult.notes`; the rest are counted."""
MERGE_EVERY = 10_000
"""Staged records per merge round while an incremental window is still being read. Postgres writing the
target's rows (about 60 µs a row with their WAL) then overlaps the read instead of following it; the price is
that the table's lock is held from the first round on, so a run of the same stream that reaches its merge
meanwhile waits for this one to commit. Windows below this size take the lock only for their merge."""


class SyncInputError(ValueError):
    """Input the IO manager refuses (e.g. a record without an id); raised before anything is committed."""


@dataclass
class WriteResult:
    """What one run did to its table; becomes the materialization's metadata."""

    table: TableName
    received: int = 0
    inserted: int = 0
    updated: int = 0
    deletions_marked: int = 0
    row_count: int = 0
    partition_row_count: int | None = None
    columns: list[tuple[str, str, str]] = field(default_factory=list)
    values: sc.ValueReport = field(default_factory=sc.ValueReport)
    notes: list[str] = field(default_factory=list)
    """One sentence per record whose cursor could not be read (module docstring)."""
    child_received: dict[str, int] = field(default_factory=dict)
    """Child rows fetched per child table (:mod:`zoho_dagster.postgres.children`)."""
    child_rows: dict[str, int] = field(default_factory=dict)
    """Live rows per child table after the run."""


def _stage_table(columns: Sequence[sc.Column]) -> sa.Table:
    """TEMP table for this transaction's records; positional names keep it independent of the target."""
    cols = [sa.Column("_seq", sa.BigInteger()), sa.Column("id", sa.Text())]
    cols += [sa.Column(f"c{i}", column.sa_type()) for i, column in enumerate(columns)]
    cols.append(sa.Column("_raw", pg.JSONB()))
    return sa.Table("_zd_stage", sa.MetaData(), *cols, prefixes=["TEMPORARY"], postgresql_on_commit="DROP")


def _deleted_table() -> sa.Table:
    return sa.Table(
        "_zd_deleted",
        sa.MetaData(),
        sa.Column("id", sa.Text()),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


@dataclass
class _Renderer:
    """Renders records' typed values; a value its type refuses becomes NULL and is counted, never raised."""

    report: sc.ValueReport
    cursor_field: str | None
    columns: Sequence[sc.Column]
    unreadable: dict[str, Any] = field(default_factory=dict)
    """Up to :data:`NAMED_RECORDS` ids whose cursor value could not be read, with that value."""
    unreadable_total: int = 0

    def __post_init__(self) -> None:
        # Each column's renderer (schema.value_renderer), decided once for the run's every record.
        self._plan = [(column.api_name, column, sc.value_renderer(column)) for column in self.columns]

    def _refused(self, record_id: str, column: sc.Column, value: Any, error: sc.BadValueError) -> str:
        self.report.reject(record_id, column.api_name, value, str(error))
        if column.api_name == self.cursor_field and not column.part:
            self.unreadable_total += 1
            if len(self.unreadable) < NAMED_RECORDS:
                self.unreadable.setdefault(record_id, value)
        return sc.NULL

    def record_line(self, seq: int, record: Mapping[str, Any]) -> str:
        """One COPY line: the cleaned id, the typed values and ``_raw`` (replacement rule applied)."""
        clean = sc.clean_record(record)
        record_id = str(clean.values["id"])
        for name, count in clean.replaced.items():
            self.report.replace(record_id, name, count, clean.values.get(name))
        get = clean.values.get
        line = [str(seq), sc.copy_escape(record_id)]
        append = line.append
        for name, column, render in self._plan:
            value = get(name)
            try:
                append(render(value))
            except sc.BadValueError as error:
                append(self._refused(record_id, column, value, error))
        line.append(sc.copy_escape_json(clean.raw))
        return "\t".join(line) + "\n"


def _record_lines(stream: RecordStream, renderer: _Renderer) -> Iterator[str]:
    """One COPY line per record, pulled page by page so only about one page is in memory."""
    seq = 0
    for page in stream.pages:
        for record in page:
            seq += 1
            if type(record) is not dict and not isinstance(record, Mapping):  # exact type: cheaper
                raise SyncInputError(
                    f"Record {seq} of stream {stream.stream} is not a JSON object; nothing was written."
                )
            record_id = record.get("id")
            if record_id is None or record_id == "":
                raise SyncInputError(
                    f"Record {seq} of stream {stream.stream} has no id; nothing was written."
                )
            yield renderer.record_line(seq, record)


def _deletion_lines(pages: Iterable[list[dict]], stream: str, report: sc.ValueReport) -> Iterator[str]:
    for page in pages:
        for entry in page:
            entry_id = entry.get("id") if isinstance(entry, Mapping) else None
            if not entry_id:
                raise SyncInputError(
                    f"A deleted-record entry of stream {stream} has no id; nothing was written."
                )
            record_id, replaced = sc.clean_text(str(entry_id))
            if replaced:
                report.replace(record_id, "id", replaced, record_id)
            deleted_at = _deletion_time(record_id, entry.get("deleted_time"), report)
            yield f"{sc.copy_escape(record_id)}\t{deleted_at}\n"


def _deletion_time(record_id: str, value: Any, report: sc.ValueReport) -> str:
    """The deletion's time as COPY text; an unreadable one marks nothing (NULL) and is counted."""
    if value is None or value == "":
        return sc.NULL
    try:
        return sc.copy_escape(sc.convert_datetime(value))
    except sc.BadValueError as error:
        report.reject(record_id, "deleted_time", value, str(error))
        return sc.NULL


def _execute_ddl(conn: sa.Connection, statement: str) -> None:
    """Run DDL built from identifiers quoted by SQLAlchemy's preparer.

    The preparer doubles ``%`` for psycopg2's pyformat parameters and the driver halves it again, once: so the
    statement goes through ``exec_driver_sql``, not ``sa.text`` (which would double it a second time and make
    a table named ``le%ads`` unreachable).
    """
    conn.exec_driver_sql(statement)


def _lock(conn: sa.Connection, key: str) -> None:
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0))))


def _ensure_schema(conn: sa.Connection, schema: str) -> None:
    if not sa.inspect(conn).has_schema(schema):
        _lock(conn, f"zoho_dagster:schema:{schema}")
        conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))


def _existing_columns(conn: sa.Connection, table: TableName) -> dict[str, tuple[str, str] | None] | None:
    """``table``'s columns with the field each holds (from its comment), or ``None`` if it is absent."""
    inspector = sa.inspect(conn)
    if not inspector.has_table(table.name, schema=table.schema):
        return None
    return {
        c["name"]: sc.parse_comment(c.get("comment")) for c in inspector.get_columns(table.name, table.schema)
    }


def _cursor_column(columns: Sequence[sc.Column], cursor_field: str | None) -> sc.Column | None:
    for column in columns:
        if cursor_field and column.api_name == cursor_field and not column.part:
            return column
    return None


def _prepare_table(
    conn: sa.Connection, target: TableName, fields: list[dict], fresh_as: TableName | None = None
) -> tuple[sa.Table, list[sc.Column]]:
    """Create ``target`` or add the columns new fields need (never drop); returns the table and its data
    columns.

    With ``fresh_as`` (full refreshes) a new, empty table of that name is created instead, with the column
    names ``target`` already uses so that names stay stable from one refresh to the next.
    """
    _ensure_schema(conn, target.schema)
    existing = _existing_columns(conn, target)
    planned = sc.plan_columns(fields, existing or {})
    if fresh_as is not None:
        table = sa.Table(
            fresh_as.name, sa.MetaData(), *sc.table_columns(planned, None), schema=fresh_as.schema
        )
        table.drop(conn, checkfirst=True)
        table.create(conn)
        compression.set_method(conn, table, "_raw", compression.preferred_method(conn))
        return table, planned
    table = sa.Table(target.name, sa.MetaData(), *sc.table_columns(planned, None), schema=target.schema)
    if existing is None:
        table.create(conn)
        compression.set_method(conn, table, "_raw", compression.preferred_method(conn))
        return table, planned
    drift.migrate_types(conn, table, planned)  # a field whose type changed in Zoho (postgres/drift.py)
    for column in planned:
        if column.name not in existing:
            spec = sa.schema.CreateColumn(table.c[column.name]).compile(dialect=conn.dialect)
            preparer = conn.dialect.identifier_preparer
            _execute_ddl(conn, f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {spec}")
            conn.execute(sa.schema.SetColumnComment(table.c[column.name]))
    return table, planned


def _merge(
    conn: sa.Connection,
    table: sa.Table,
    stage: sa.Table,
    stage_columns: Sequence[sc.Column],
    target_columns: Sequence[sc.Column],
    cursor_field: str | None,
) -> tuple[int, int]:
    """Upsert the staged records (newest per id) into ``table``; returns (inserted, updated)."""
    merged = _upsert(table, stage, stage_columns, target_columns, cursor_field).cte("merged")
    row = conn.execute(
        sa.select(
            sa.func.count().filter(merged.c.inserted),
            sa.func.count().filter(sa.not_(merged.c.inserted)),
        )
    ).one()
    return int(row[0]), int(row[1])


def _upsert(
    table: sa.Table,
    stage: sa.Table,
    stage_columns: Sequence[sc.Column],
    target_columns: Sequence[sc.Column],
    cursor_field: str | None,
    after_seq: int = 0,
    upto_seq: int | None = None,
) -> Any:
    """The newest-wins upsert of the staged records with ``after_seq < _seq <= upto_seq`` into ``table``,
    returning each written row's ``id`` and whether it was ``inserted`` (else updated)."""
    by_key = {column.key: column.name for column in target_columns}
    names = [by_key[column.key] for column in stage_columns]
    stage_cursor = _cursor_column(stage_columns, cursor_field)
    order = [stage.c.id]
    if stage_cursor is not None:
        order.append(stage.c[f"c{stage_columns.index(stage_cursor)}"].desc().nulls_last())
    order.append(stage.c._seq.desc())
    # The newest version of each id is chosen by a sort of narrow rows (id, cursor, _seq) and the staged rows
    # are then taken by _seq. Sorting the whole staged rows instead (70 columns and _raw, a few KB each)
    # spilled hundreds of MB to disk on a 100,000-record backfill.
    newest = sa.select(stage.c._seq).distinct(stage.c.id).order_by(*order)
    if after_seq:
        newest = newest.where(stage.c._seq > after_seq)
    if upto_seq is not None:
        newest = newest.where(stage.c._seq <= upto_seq)
    source = sa.select(
        stage.c.id,
        *[stage.c[f"c{i}"] for i in range(len(stage_columns))],
        stage.c._raw,
        sa.func.now(),
    ).where(stage.c._seq.in_(newest))
    insert = pg.insert(table).from_select(["id", *names, "_raw", "_zoho_synced_at"], source)
    excluded = insert.excluded
    updates: dict[str, Any] = {name: excluded[name] for name in names}
    updates["_raw"] = excluded._raw
    updates["_zoho_synced_at"] = excluded._zoho_synced_at
    where = None
    if stage_cursor is not None:
        cursor = by_key[stage_cursor.key]
        deleted = table.c._zoho_deleted_at
        # A version with an unreadable (NULL) cursor cannot be shown newer than the deletion: the mark stays.
        keep_mark = sa.and_(
            deleted.is_not(None), sa.or_(excluded[cursor].is_(None), deleted >= excluded[cursor])
        )
        updates["_zoho_deleted_at"] = sa.case((keep_mark, deleted), else_=sa.null())
        where = sa.or_(table.c[cursor].is_(None), excluded[cursor] >= table.c[cursor])
    else:
        updates["_zoho_deleted_at"] = sa.null()
    return insert.on_conflict_do_update(index_elements=["id"], set_=updates, where=where).returning(
        table.c.id, (sa.literal_column("xmax") == 0).label("inserted")
    )


class _MergeRounds:
    """An incremental window's merge: in rounds while the window is still being read (see
    :data:`MERGE_EVERY`), and a last one when it is read; a window of up to ``MERGE_EVERY`` records has only
    that one. Creating it takes the table's lock and prepares the table.

    Counts stay those of one merge: a record written in several rounds (old and new version) counts once,
    as inserted if its first write inserted it, in a TEMP table of the ids written so far.
    """

    def __init__(
        self,
        conn: sa.Connection,
        target: TableName,
        stream: RecordStream,
        stage: sa.Table,
        stage_columns: Sequence[sc.Column],
        cursor_field: str | None,
    ) -> None:
        _lock(conn, f"zoho_dagster:table:{target}")
        self.table, self.columns = _prepare_table(conn, target, stream.fields)
        self.stage, self.stage_columns, self.cursor_field = stage, stage_columns, cursor_field
        self.written = sa.Table(
            "_zd_written",
            sa.MetaData(),
            sa.Column("id", sa.Text(), primary_key=True),
            sa.Column("inserted", sa.Boolean()),
            prefixes=["TEMPORARY"],
            postgresql_on_commit="DROP",
        )
        self.written.create(conn)
        self.merged_seq = 0

    def merge(self, conn: sa.Connection, upto_seq: int | None) -> None:
        """Merge the staged records after the last round up to ``upto_seq`` (all of them with ``None``)."""
        upsert = _upsert(
            self.table,
            self.stage,
            self.stage_columns,
            self.columns,
            self.cursor_field,
            self.merged_seq,
            upto_seq,
        )
        merged = upsert.cte("merged")
        first_writes = pg.insert(self.written).from_select(
            ["id", "inserted"], sa.select(merged.c.id, merged.c.inserted)
        )
        conn.execute(first_writes.on_conflict_do_nothing())
        if upto_seq is not None:
            self.merged_seq = upto_seq

    def counts(self, conn: sa.Connection) -> tuple[int, int]:
        """(inserted, updated) over every round."""
        inserted = self.written.c.inserted
        row = conn.execute(
            sa.select(sa.func.count().filter(inserted), sa.func.count().filter(sa.not_(inserted)))
        ).one()
        return int(row[0]), int(row[1])


def _mark_deletions(conn: sa.Connection, table: sa.Table, deleted: sa.Table, cursor: str | None) -> int:
    """Apply staged deletions (tombstones for unknown ids); returns how many rows changed."""
    source = (
        sa.select(deleted.c.id, deleted.c.deleted_at, sa.func.now())
        .where(deleted.c.deleted_at.is_not(None))
        .distinct(deleted.c.id)
        .order_by(deleted.c.id, deleted.c.deleted_at.desc())
    )
    insert = pg.insert(table).from_select(["id", "_zoho_deleted_at", "_zoho_synced_at"], source)
    excluded = insert.excluded
    conditions = [table.c._zoho_deleted_at.is_distinct_from(excluded._zoho_deleted_at)]
    if cursor is not None:
        conditions.append(sa.or_(table.c[cursor].is_(None), table.c[cursor] <= excluded._zoho_deleted_at))
    upsert = insert.on_conflict_do_update(
        index_elements=["id"],
        set_={"_zoho_deleted_at": excluded._zoho_deleted_at, "_zoho_synced_at": excluded._zoho_synced_at},
        where=sa.and_(*conditions),
    )
    return int(conn.execute(upsert).rowcount or 0)


def _swap(conn: sa.Connection, new: sa.Table, target: TableName) -> None:
    """Replace ``target`` by ``new`` in the current transaction: readers see the old table until commit.

    The new table's primary key keeps the name Postgres gave it (read back, since Postgres shortens long
    names its own way) until it is renamed after the target.
    """
    preparer = conn.dialect.identifier_preparer
    old = sa.Table(target.name, sa.MetaData(), schema=target.schema)
    conn.execute(sa.schema.DropTable(old, if_exists=True))
    old_pkey = sa.inspect(conn).get_pk_constraint(new.name, new.schema)["name"]
    _execute_ddl(conn, f"ALTER TABLE {preparer.format_table(new)} RENAME TO {preparer.quote(target.name)}")
    renamed = sa.Table(target.name, sa.MetaData(), schema=target.schema)
    pkey = sc.fit_identifier(f"{target.name}_pkey", f"{target.name}_pkey")
    _execute_ddl(
        conn,
        f"ALTER TABLE {preparer.format_table(renamed)} RENAME CONSTRAINT "
        f"{preparer.quote(old_pkey)} TO {preparer.quote(pkey)}",
    )


def _column_types(conn: sa.Connection, target: TableName) -> list[tuple[str, str, str]]:
    inspector = sa.inspect(conn)
    result = []
    for column in inspector.get_columns(target.name, target.schema):
        parsed = sc.parse_comment(column.get("comment"))
        description = parsed[0] + (f" ({parsed[1]})" if parsed and parsed[1] else "") if parsed else ""
        result.append(
            (column["name"], str(column["type"].compile(dialect=conn.dialect)).lower(), description)
        )
    return result


def write_stream(
    engine: sa.Engine,
    stream: RecordStream,
    target: TableName,
    cursor_field: str | None = "Modified_Time",
    window: tuple[datetime, datetime] | None = None,
    deletions: Callable[[], Iterator[list[dict]]] | None = None,
    before_commit: Callable[[sa.Connection], None] | None = None,
) -> WriteResult:
    """Stage, merge (or swap, for full refreshes) and mark deletions in one transaction (module docstring).

    ``before_commit`` runs last inside that transaction, so what it writes commits with the records or not at
    all (the notification sync marks the notifications it applied there, :mod:`zoho_dagster.notifications`).
    """
    if not isinstance(stream, RecordStream):
        raise SyncInputError(
            f"The asset for {target} returned {type(stream).__name__}, not a RecordStream; "
            "nothing was written."
        )
    full_refresh = stream.mode == "full-refresh"
    result = WriteResult(table=target)
    stage_columns = sc.plan_columns(stream.fields, {})
    renderer = _Renderer(result.values, None if full_refresh else cursor_field, stage_columns)
    with engine.begin() as conn:
        stage = _stage_table(stage_columns)
        stage.create(conn)
        # The merge then copies each compressed _raw as it is (postgres/compression.py).
        known = None if full_refresh else compression.column_method(conn, target, "_raw")
        compression.set_method(conn, stage, "_raw", known or compression.preferred_method(conn))
        rounds: _MergeRounds | None = None
        with LineFeed(_record_lines(stream, renderer)) as feed:
            per_round = None if full_refresh else MERGE_EVERY
            result.received = copy_lines(conn, stage, feed.take(per_round))
            while not feed.exhausted:
                if rounds is None:
                    rounds = _MergeRounds(conn, target, stream, stage, stage_columns, cursor_field)
                rounds.merge(conn, result.received)
                result.received += copy_lines(conn, stage, feed.take(per_round))
        deleted = None
        deletions = deletions or stream.deletions
        if deletions is not None and not full_refresh:
            deleted = _deleted_table()
            deleted.create(conn)
            copy_lines(conn, deleted, _deletion_lines(deletions(), stream.stream, result.values))
        staged_children = (
            [] if full_refresh else ch.stage_children(conn, stream, stage, target, result.values, copy_lines)
        )

        if full_refresh:
            _lock(conn, f"zoho_dagster:table:{target}")
            # Hashed by its own full name: a long target's pkey name and staging name must differ.
            new_name = f"{target.name}__zd_new"
            staging_name = TableName(target.schema, sc.fit_identifier(new_name, new_name))
            table, columns = _prepare_table(conn, target, stream.fields, fresh_as=staging_name)
            cursor = None
            written, _ = _merge(conn, table, stage, stage_columns, columns, cursor_field)  # all new here
            result.updated = _count_known(conn, table, target)
            result.inserted = written - result.updated
            _swap(conn, table, target)
            table = sa.Table(
                target.name, sa.MetaData(), *sc.table_columns(columns, None), schema=target.schema
            )
        else:  # the last round (the only one for a window of up to MERGE_EVERY records)
            if rounds is None:
                rounds = _MergeRounds(conn, target, stream, stage, stage_columns, cursor_field)
            rounds.merge(conn, None)
            result.inserted, result.updated = rounds.counts(conn)
            table, columns = rounds.table, rounds.columns
            cursor_column = _cursor_column(columns, cursor_field)
            cursor = cursor_column.name if cursor_column else None
        if deleted is not None:
            result.deletions_marked = _mark_deletions(conn, table, deleted, cursor)
        if staged_children:
            result.child_rows = ch.apply_children(
                conn, staged_children, table, stage, deleted, _prepare_table
            )
            result.child_received = {str(item.target): item.received for item in staged_children}
        if renderer.unreadable and cursor is not None and cursor_field is not None:
            result.notes = _unreadable_cursor_notes(conn, table, cursor, stream, cursor_field, renderer)
        result.row_count = int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
        if window is not None and cursor is not None:
            in_window = sa.and_(table.c[cursor] >= window[0], table.c[cursor] < window[1])
            result.partition_row_count = int(
                conn.execute(sa.select(sa.func.count()).select_from(table).where(in_window)).scalar_one()
            )
        result.columns = _column_types(conn, target)
        if before_commit is not None:
            before_commit(conn)
    return result


def _unreadable_cursor_notes(
    conn: sa.Connection,
    table: sa.Table,
    cursor: str,
    stream: RecordStream,
    cursor_field: str,
    renderer: _Renderer,
) -> list[str]:
    """One sentence per record whose cursor could not be read, saying whether its version was stored."""
    ids = list(renderer.unreadable)
    query = sa.select(table.c.id).where(table.c.id.in_(ids), table.c[cursor].is_(None))
    kept = set(conn.execute(query).scalars())
    module = f" (Zoho module {stream.module})" if stream.module else ""
    notes = []
    for record_id, value in renderer.unreadable.items():
        what = (
            f"Record {record_id} of stream {stream.stream}{module} has a {cursor_field} that is not an "
            f"ISO-8601 date-time with an offset ({sc.sample_text(value)!r}); "
        )
        if record_id in kept:
            what += (
                f"it was kept as a row with {cursor} NULL and the value in _raw, and any version with a "
                f"readable {cursor_field} will replace it."
            )
        else:
            what += (
                f"this version was not stored, because the table holds a version with a readable "
                f"{cursor_field} and an unreadable one never replaces it."
            )
        notes.append(what)
    more = renderer.unreadable_total - len(ids)
    if more > 0:
        notes.append(
            f"{more} more records of stream {stream.stream} have a {cursor_field} that is not an ISO-8601 "
            f"date-time with an offset; they follow the same rule (counted in rejected_values)."
        )
    return notes


def _count_known(conn: sa.Connection, new: sa.Table, target: TableName) -> int:
    """How many of the new table's ids the old table already had (the 'updated' figure of a full refresh)."""
    if not sa.inspect(conn).has_table(target.name, schema=target.schema):
        return 0
    old = sa.Table(target.name, sa.MetaData(), sa.Column("id", sa.Text()), schema=target.schema)
    query = sa.select(sa.func.count()).select_from(new).where(new.c.id.in_(sa.select(old.c.id)))
    return int(conn.execute(query).scalar_one())


def read_rows(
    engine: sa.Engine,
    target: TableName,
    cursor_field: str | None = "Modified_Time",
    windows: Sequence[tuple[datetime, datetime]] = (),
) -> list[dict[str, Any]]:
    """Rows of ``target`` (all, or those whose cursor lies in any of ``windows``), as plain dicts."""
    with engine.connect() as conn:
        existing = _existing_columns(conn, target)
        if existing is None:
            return []
        table = sa.Table(target.name, sa.MetaData(), schema=target.schema, autoload_with=conn)
        query = sa.select(table).order_by(table.c.id)
        cursor = next((name for name, key in existing.items() if key == (cursor_field, "")), None)
        if windows and cursor is not None:
            query = query.where(
                sa.or_(*[sa.and_(table.c[cursor] >= s, table.c[cursor] < e) for s, e in windows])
            )
        return [dict(row) for row in conn.execute(query).mappings()]
