"""Child tables (subform rows, lookup links, stage history), written in the parent's transaction.

Why this shape (docs/zoho-crm-api.md §7.8): a parent's child rows are replaced as a set, so a row removed in
Zoho disappears, and they must change together with the parent or not at all. So, inside the writer's
transaction:

1. after the parents are COPY-ed into the staging table, :func:`stage_children` indexes it on ``id``, reads
   the staged parent ids in keyset batches of :data:`PARENT_BATCH`, asks the stream's
   :class:`~zoho_dagster.record_stream.ChildRows` for their child rows and COPYs them into one TEMP stage per
   child table: memory holds one batch of ids and about one page of rows, never a window;
2. under the table's advisory lock, :func:`apply_children` creates or widens each child table (columns planned
   from the subform module's field metadata by :func:`zoho_dagster.postgres.schema.plan_columns`, like the
   parent's), deletes the rows of every staged parent, inserts the staged rows, and copies each affected
   parent's ``_zoho_deleted_at`` onto its child rows (set when the run marks the parent deleted, cleared when
   a version of it comes back).

Child tables are ``<parent table>__<snake_case(field)>``. Subform and stage-history tables hold ``id``,
``_parent_id``, the typed columns, ``_raw``, ``_zoho_synced_at`` and ``_zoho_deleted_at``; link tables hold
``linked_id`` and ``linked_name`` as typed columns. A value its column refuses is NULL there and kept in
``_raw``, counted in the run's report under ``<field>.<column field>`` (the rule of
:mod:`zoho_dagster.postgres.schema`).
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from zoho_dagster.client.children import LINK, PARENT_KEY, RELATED, ChildField
from zoho_dagster.postgres import queries
from zoho_dagster.postgres import schema as sc
from zoho_dagster.postgres.queries import cursor_column, table_columns
from zoho_dagster.postgres.tables import TableName
from zoho_dagster.record_stream import ChildRows, RecordStream

PARENT_BATCH = 5000
"""Staged parent ids read (and handed to the child reader) at a time: bounded memory, few round trips."""
PARENT_COLUMN = "_parent_id"
STAGE_FIELD = "Stage"
"""The parent field whose change adds a stage-history row (docs/zoho-crm-api.md §3.9)."""

Copy = Callable[[sa.Connection, sa.Table, Iterable[str]], int]
Prepare = Callable[[sa.Connection, TableName, list[dict]], tuple[sa.Table, list[sc.Column]]]


class ChildInputError(ValueError):
    """A child row the writer refuses (no id); raised before anything is committed."""


@dataclass
class StagedChild:
    """One child table's rows of this run, staged: where they go and how the stage's columns map."""

    child: ChildField
    target: TableName
    stage: sa.Table
    columns: list[sc.Column]
    received: int = 0
    fetched: sa.Table | None = None
    """The parents whose rows were read when not all staged parents' were (stage history); ``None``: all."""


def child_table_name(target: TableName, suffix: str) -> TableName:
    """``<schema>.<parent table>__<suffix>``, shortened to 63 bytes with a hash when longer."""
    name = f"{target.name}__{suffix}"
    return TableName(target.schema, sc.fit_identifier(name, name))


def child_table(target: TableName, children: ChildRows, child: ChildField) -> TableName:
    """The table of ``child``: its suffix from ``children.suffixes``, else the snake_case of its field."""
    return child_table_name(target, children.suffixes.get(child.field) or sc.snake_case(child.field))


@dataclass(frozen=True)
class ChildRow:
    """What the demo compares of a stored child row: its parent, the linked record (links), deleted or not."""

    parent_id: str
    linked_id: str | None
    deleted: bool


def child_rows_state(engine: sa.Engine, target: TableName) -> dict[str, ChildRow]:
    """Every row of a child table by id (empty when the table does not exist)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(target.name, schema=target.schema):
            return {}
        names = {c["name"] for c in sa.inspect(conn).get_columns(target.name, target.schema)}
        table = sa.Table(
            target.name,
            sa.MetaData(),
            sa.Column("id", sa.Text()),
            sa.Column(PARENT_COLUMN, sa.Text()),
            sa.Column("_zoho_deleted_at", sa.DateTime(timezone=True)),
            *([sa.Column("linked_id", sa.Text())] if "linked_id" in names else []),
            schema=target.schema,
        )
        linked = table.c.linked_id if "linked_id" in names else sa.null()
        query = sa.select(table.c.id, table.c[PARENT_COLUMN], linked, table.c._zoho_deleted_at)
        return {str(row[0]): ChildRow(str(row[1]), row[2], row[3] is not None) for row in conn.execute(query)}


def _stage_table(index: int, columns: Sequence[sc.Column]) -> sa.Table:
    cols = [
        sa.Column("_seq", sa.BigInteger()),
        sa.Column(PARENT_COLUMN, sa.Text()),
        sa.Column("id", sa.Text()),
    ]
    cols += [sa.Column(f"c{i}", column.sa_type()) for i, column in enumerate(columns)]
    cols.append(sa.Column("_raw", pg.JSONB()))
    return sa.Table(
        f"_zd_child_{index}", sa.MetaData(), *cols, prefixes=["TEMPORARY"], postgresql_on_commit="DROP"
    )


def _staged_parent_ids(conn: sa.Connection, stage: sa.Table) -> Iterator[list[str]]:
    """The staging table's distinct ids in batches of :data:`PARENT_BATCH`, by keyset on the index."""
    after: str | None = None
    while True:
        query = sa.select(stage.c.id).distinct().order_by(stage.c.id).limit(PARENT_BATCH)
        if after is not None:
            query = query.where(stage.c.id > after)
        ids = [str(value) for value in conn.execute(query).scalars()]
        if not ids:
            return
        yield ids
        after = ids[-1]


def _hidden_parents(conn: sa.Connection, stage: sa.Table, ids: list[str]) -> set[str]:
    """The staged parents among ``ids`` that Zoho's list API shows only when asked (converted, or awaiting
    approval, by the ``$`` keys they came with; client/visibility.py): their child rows need another route."""
    raw = stage.c._raw
    hidden = sa.or_(*(raw[key].as_boolean().is_(value) for key, value in queries.HIDDEN_BY_DEFAULT))
    query = sa.select(stage.c.id).distinct().where(stage.c.id.in_(ids), hidden)
    return {str(value) for value in conn.execute(query).scalars()}


def _lines(
    staged: StagedChild, pages: Iterable[list[dict]], report: sc.ValueReport, seq: list[int]
) -> Iterator[str]:
    """COPY lines of one child table's rows: parent id, id, typed values, ``_raw`` (no ``_parent_id``)."""
    field = staged.child.field
    for page in pages:
        for row in page:
            seq[0] += 1
            if not isinstance(row, Mapping) or row.get("id") in (None, "") or not row.get(PARENT_KEY):
                raise ChildInputError(
                    f"A {field} row of stream {staged.target.name.split('__')[0]} has no id or no parent "
                    "id; nothing was written."
                )
            parent_id = str(row[PARENT_KEY])
            clean = sc.clean_record({k: v for k, v in row.items() if k != PARENT_KEY})
            row_id = str(clean.values["id"])
            for name, count in clean.replaced.items():
                report.replace(row_id, f"{field}.{name}", count, clean.values.get(name))
            values = []
            for column in staged.columns:
                value = clean.values.get(column.api_name)
                try:
                    values.append(sc.render_value(column, value))
                except sc.BadValueError as error:
                    report.reject(row_id, f"{field}.{column.api_name}", value, str(error))
                    values.append(sc.NULL)
            yield (
                "\t".join(
                    (
                        str(seq[0]),
                        sc.copy_escape(parent_id),
                        sc.copy_escape(row_id),
                        *values,
                        sc.copy_escape_json(clean.raw),
                    )
                )
                + "\n"
            )


def stage_children(
    conn: sa.Connection,
    stream: RecordStream,
    stage: sa.Table,
    target: TableName,
    report: sc.ValueReport,
    copy: Copy,
) -> list[StagedChild]:
    """Fetch the child rows of every staged parent into TEMP stages (step 1 of the module docstring)."""
    children = stream.children
    if children is None or not children.fields:
        return []
    index_name = sc.fit_identifier(f"{stage.name}_id_idx", f"{stage.name}_id_idx")
    sa.Index(index_name, stage.c.id).create(conn)
    conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.format_table(stage)}")
    staged = []
    due: dict[int, sa.Select[tuple[Any]] | None] = {}
    for index, child in enumerate(children.fields):
        columns = sc.plan_columns(child.fields, {})
        table = _stage_table(index, columns)
        table.create(conn)
        item = StagedChild(child, child_table(target, children, child), table, columns)
        if child.kind == RELATED:
            item.fetched = _fetched_table(index)
            item.fetched.create(conn)
            due[index] = _history_due(conn, stream, stage, target, item.target)
        staged.append(item)
    seq = [0]
    for ids in _staged_parent_ids(conn, stage):
        hidden = _hidden_parents(conn, stage, ids)
        for index, item in enumerate(staged):
            wanted = ids
            if item.fetched is not None:
                query = due[index]
                if query is not None:
                    wanted = [str(v) for v in conn.execute(query.where(stage.c.id.in_(ids))).scalars()]
                copy(conn, item.fetched, (f"{sc.copy_escape(parent)}\n" for parent in wanted))
            if wanted:
                pages = children.rows(item.child, wanted, [rid for rid in wanted if rid in hidden])
                item.received += copy(conn, item.stage, _lines(item, pages, report, seq))
    return staged


def _fetched_table(index: int) -> sa.Table:
    return sa.Table(
        f"_zd_child_{index}_parents",
        sa.MetaData(),
        sa.Column("id", sa.Text()),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def _history_due(
    conn: sa.Connection, stream: RecordStream, stage: sa.Table, target: TableName, history: TableName
) -> sa.Select[tuple[Any]] | None:
    """The staged deals whose stage history must be read (one call each), as a query to narrow to a batch of
    ids; ``None`` when every staged deal's must be (nothing stored to compare with). Built once per run.

    A deal's history gains a row when its ``Stage`` changes (docs/zoho-crm-api.md §3.9), so a deal the table
    already holds with the same ``Stage`` and with history rows keeps them; a new deal, a changed ``Stage``
    or a deal without stored history is read. A change away and back between two syncs is not seen until
    the stage changes again.
    """
    staged_columns = sc.plan_columns(stream.fields, {})
    position = next((i for i, column in enumerate(staged_columns) if column.key == (STAGE_FIELD, "")), None)
    stored_stage = cursor_column(table_columns(conn, target) or [], STAGE_FIELD)
    if (
        position is None
        or stored_stage is None
        or not sa.inspect(conn).has_table(history.name, history.schema)
    ):
        return None
    parent = sa.Table(
        target.name,
        sa.MetaData(),
        sa.Column("id", sa.Text()),
        sa.Column(stored_stage, sa.Text()),
        schema=target.schema,
    )
    rows = sa.Table(history.name, sa.MetaData(), sa.Column(PARENT_COLUMN, sa.Text()), schema=history.schema)
    unchanged = (
        sa.select(parent.c.id)
        .where(
            parent.c.id == stage.c.id,
            parent.c[stored_stage].is_not_distinct_from(stage.c[f"c{position}"]),
            sa.exists().where(rows.c[PARENT_COLUMN] == stage.c.id),
        )
        .exists()
    )
    return sa.select(stage.c.id).distinct().where(sa.not_(unchanged))


def _create(conn: sa.Connection, staged: StagedChild) -> None:
    """A new child table: ``id``, ``_parent_id`` (indexed), the planned columns (``linked_*`` for links)."""
    planned = sc.plan_columns(staged.child.fields, {})
    if staged.child.kind == LINK:
        planned = [sc.Column(f"linked_{c.part}", c.api_name, c.kind, c.part) for c in planned]
    columns = sc.table_columns(planned, None)
    columns.insert(1, sa.Column(PARENT_COLUMN, sa.Text(), comment="the id of the parent record"))
    target = staged.target
    table = sa.Table(target.name, sa.MetaData(), *columns, schema=target.schema)
    table.create(conn)
    index = sc.fit_identifier(f"{target.name}__parent_idx", f"{target.name}__parent_idx")
    sa.Index(index, table.c[PARENT_COLUMN]).create(conn)


def _target_table(
    conn: sa.Connection, staged: StagedChild, prepare: Prepare
) -> tuple[sa.Table, list[sc.Column]]:
    """The child table, created or widened; with the writer's own rules for existing tables (``prepare``)."""
    target = staged.target
    if not sa.inspect(conn).has_table(target.name, schema=target.schema):
        _create(conn, staged)
    _, columns = prepare(conn, target, [dict(meta) for meta in staged.child.fields])
    table = sa.Table(
        target.name,
        sa.MetaData(),
        *sc.table_columns(columns, None),
        sa.Column(PARENT_COLUMN, sa.Text()),
        schema=target.schema,
    )
    return table, columns


def _replace(
    conn: sa.Connection, table: sa.Table, columns: Sequence[sc.Column], staged: StagedChild, parents: sa.Table
) -> None:
    """Delete the rows of every parent whose rows were read, then insert the staged rows (newest staging per
    id)."""
    replaced = staged.fetched if staged.fetched is not None else parents
    conn.execute(sa.delete(table).where(table.c[PARENT_COLUMN].in_(sa.select(replaced.c.id))))
    by_key = {column.key: column.name for column in columns}
    names = [by_key[column.key] for column in staged.columns]
    stage = staged.stage
    source = (
        sa.select(
            stage.c.id,
            stage.c[PARENT_COLUMN],
            *[stage.c[f"c{i}"] for i in range(len(staged.columns))],
            stage.c._raw,
            sa.func.now(),
        )
        .distinct(stage.c.id)
        .order_by(stage.c.id, stage.c._seq.desc())
    )
    insert = pg.insert(table).from_select(["id", PARENT_COLUMN, *names, "_raw", "_zoho_synced_at"], source)
    excluded = insert.excluded
    updates: dict[str, Any] = {
        name: excluded[name] for name in (PARENT_COLUMN, *names, "_raw", "_zoho_synced_at")
    }
    updates["_zoho_deleted_at"] = sa.null()
    conn.execute(insert.on_conflict_do_update(index_elements=["id"], set_=updates))


def _follow_parents(
    conn: sa.Connection, table: sa.Table, parent: sa.Table, affected: Sequence[sa.Table]
) -> None:
    """Copy each affected parent's ``_zoho_deleted_at`` onto its child rows (set, or cleared)."""
    conn.execute(
        sa.update(table)
        .where(
            table.c[PARENT_COLUMN] == parent.c.id,
            sa.or_(*[parent.c.id.in_(sa.select(source.c.id)) for source in affected]),
            table.c._zoho_deleted_at.is_distinct_from(parent.c._zoho_deleted_at),
        )
        .values(_zoho_deleted_at=parent.c._zoho_deleted_at)
    )


def apply_children(
    conn: sa.Connection,
    staged: Sequence[StagedChild],
    parent: sa.Table,
    stage: sa.Table,
    deleted: sa.Table | None,
    prepare: Prepare,
) -> dict[str, int]:
    """Step 2 of the module docstring, under the parent table's lock; the live rows per child table."""
    counts: dict[str, int] = {}
    affected = [stage] + ([deleted] if deleted is not None else [])
    for item in staged:
        table, columns = _target_table(conn, item, prepare)
        _replace(conn, table, columns, item, stage)
        _follow_parents(conn, table, parent, affected)
        live = sa.select(sa.func.count()).select_from(table).where(table.c._zoho_deleted_at.is_(None))
        counts[str(item.target)] = int(conn.execute(live).scalar_one())
    return counts
