"""Read-only questions about the synced tables: for the asset checks, the demo's closing table and tests.

Kept beside the writer so that "live", "deleted" and "the cursor column" mean the same thing everywhere: a
row is deleted when ``_zoho_deleted_at`` is set (tombstones included), live otherwise, and a column holds the
field its comment names (:func:`zoho_dagster.postgres.schema.parse_comment`). The checks in
:mod:`zoho_dagster.checks` turn these answers into Dagster results; no SQL lives there.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from zoho_dagster.postgres import schema as sc
from zoho_dagster.postgres.tables import TableName

BOOKKEEPING_COLUMNS = frozenset(sc.RESERVED_COLUMNS)


@dataclass(frozen=True)
class TableState:
    """The ids of a table, split into live and deleted rows."""

    live: frozenset[str]
    deleted: frozenset[str]

    @property
    def rows(self) -> int:
        return len(self.live) + len(self.deleted)


@dataclass(frozen=True)
class RowCounts:
    """Live rows (since the history start, if given) and those the last ``lag`` may hide from Zoho's count."""

    live: int
    recent_live: int
    recent_deleted: int


@dataclass(frozen=True)
class IdCounts:
    """Rows, distinct ids, null ids and a few duplicated ids of a table."""

    rows: int
    distinct: int
    nulls: int
    duplicates_sample: list[str]

    @property
    def duplicate_rows(self) -> int:
        return self.rows - self.nulls - self.distinct


def _table(target: TableName, *columns: sa.Column) -> sa.Table:
    return sa.Table(target.name, sa.MetaData(), *columns, schema=target.schema)


def table_columns(conn: sa.Connection, target: TableName) -> list[dict[str, Any]] | None:
    """``target``'s columns as SQLAlchemy's inspector describes them, or ``None`` if the table is absent."""
    inspector = sa.inspect(conn)
    if not inspector.has_table(target.name, schema=target.schema):
        return None
    return list(inspector.get_columns(target.name, target.schema))


def cursor_column(columns: Sequence[Mapping[str, Any]], cursor_field: str | None) -> str | None:
    """The name of the column that holds ``cursor_field`` (e.g. ``Modified_Time``), from the comments."""
    for column in columns:
        if cursor_field and sc.parse_comment(column.get("comment")) == (cursor_field, ""):
            return str(column["name"])
    return None


def field_column(columns: Sequence[Mapping[str, Any]], api_name: str) -> str | None:
    """The name of the column that holds the whole of field ``api_name``, from the comments."""
    for column in columns:
        if sc.parse_comment(column.get("comment")) == (api_name, ""):
            return str(column["name"])
    return None


HIDDEN_BY_DEFAULT = (("$converted", True), ("$approved", False))
"""The keys, and values, of records Zoho's list API leaves out unless asked (client/visibility.py)."""


def row_counts(
    conn: sa.Connection,
    target: TableName,
    cursor: str | None,
    since: datetime,
    history_start: datetime | None = None,
    hidden_by_default: Mapping[str, bool] | None = None,
) -> RowCounts:
    """Live rows (modified since ``history_start``), those modified since ``since``, rows deleted since it.

    ``hidden_by_default`` (column name → the value that hides a record, from :data:`HIDDEN_BY_DEFAULT`)
    leaves out the rows Zoho's list API shows only when asked: converted records and records awaiting
    approval, as a count that excludes them would.
    """
    hidden = dict(hidden_by_default or {})
    table = _table(
        target,
        sa.Column("_zoho_deleted_at", sa.DateTime(timezone=True)),
        *([sa.Column(cursor, sa.DateTime(timezone=True))] if cursor else []),
        *(sa.Column(name, sa.Boolean()) for name in hidden),
    )
    deleted_at = table.c._zoho_deleted_at
    live = deleted_at.is_(None)
    for name, value in hidden.items():
        live = sa.and_(live, table.c[name].is_distinct_from(value))
    # A row whose Modified_Time Zoho sent unreadable has a NULL cursor (postgres/writer.py): it is live and
    # part of the synced history, so it counts on the table's side as Zoho counts it on its own.
    in_history = (
        sa.or_(table.c[cursor] >= history_start, table.c[cursor].is_(None))
        if cursor and history_start
        else sa.true()
    )
    recent = table.c[cursor] >= since if cursor else sa.false()
    row = conn.execute(
        sa.select(
            sa.func.count().filter(sa.and_(live, in_history)),
            sa.func.count().filter(sa.and_(live, in_history, recent)),
            sa.func.count().filter(deleted_at >= since),
        ).select_from(table)
    ).one()
    return RowCounts(int(row[0]), int(row[1]), int(row[2]))


@dataclass(frozen=True)
class HiddenCounts:
    """Live rows Zoho's list API shows only when asked: converted, and awaiting approval."""

    converted: int
    awaiting_approval: int


def hidden_counts(conn: sa.Connection, target: TableName) -> HiddenCounts:
    """How many live rows of ``target`` are converted and how many await approval (0 for a table without the
    ``$converted`` or ``$approved`` column)."""
    columns = table_columns(conn, target) or []
    found = {name: field_column(columns, name) for name, _ in HIDDEN_BY_DEFAULT}
    table = _table(
        target,
        sa.Column("_zoho_deleted_at", sa.DateTime(timezone=True)),
        *(sa.Column(column, sa.Boolean()) for column in found.values() if column),
    )
    live = table.c._zoho_deleted_at.is_(None)
    counts = [
        sa.func.count().filter(sa.and_(live, table.c[column].is_(value))) if column else sa.literal(0)
        for (name, value), column in zip(HIDDEN_BY_DEFAULT, found.values(), strict=True)
    ]
    row = conn.execute(sa.select(*counts).select_from(table)).one()
    return HiddenCounts(int(row[0]), int(row[1]))


def id_counts(conn: sa.Connection, target: TableName, sample: int = 5) -> IdCounts:
    """How many rows, distinct ids and null ids ``target`` has, and up to ``sample`` duplicated ids."""
    table = _table(target, sa.Column("id", sa.Text()))
    total, distinct, nulls = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.count(sa.distinct(table.c.id)),
            sa.func.count().filter(table.c.id.is_(None)),
        )
    ).one()
    duplicates = conn.execute(
        sa.select(table.c.id)
        .where(table.c.id.is_not(None))
        .group_by(table.c.id)
        .having(sa.func.count() > 1)
        .limit(sample)
    ).scalars()
    return IdCounts(int(total), int(distinct), int(nulls), [str(value) for value in duplicates])


def column_differences(
    fields: Sequence[Mapping[str, Any]], columns: Sequence[Mapping[str, Any]], dialect: sa.Dialect
) -> dict[str, list[str]]:
    """Fields without a column, columns of another type than their field now needs, columns of gone fields.

    The wanted columns and types come from the writer's own rules (:func:`~zoho_dagster.postgres.schema.
    plan_columns`), so this reports exactly what the next sync would do differently.
    """
    existing = {str(c["name"]): sc.parse_comment(c.get("comment")) for c in columns}
    actual = {str(c["name"]): _type_name(c["type"], dialect) for c in columns}
    planned = sc.plan_columns(fields, existing)
    new = sorted({f"{c.api_name} → {c.name}" for c in planned if c.name not in existing})
    changed = sorted(
        f"{c.name} ({c.api_name}): {actual[c.name]} → {_type_name(c.sa_type(), dialect)}"
        for c in planned
        if c.name in existing and actual[c.name] != _type_name(c.sa_type(), dialect)
    )
    api_names = {str(f.get("api_name")) for f in fields}
    removed = sorted(
        f"{name} ({key[0]})"
        for name, key in existing.items()
        if name not in BOOKKEEPING_COLUMNS and key is not None and key[0] not in api_names
    )
    return {"new_fields": new, "changed_types": changed, "removed_fields": removed}


def _type_name(type_: sa.types.TypeEngine, dialect: sa.Dialect) -> str:
    return str(type_.compile(dialect=dialect)).lower()


def table_state(engine: sa.Engine, target: TableName) -> TableState:
    """Live and deleted ids of ``target`` (both empty when the table does not exist)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(target.name, schema=target.schema):
            return TableState(frozenset(), frozenset())
        table = _table(
            target, sa.Column("id", sa.Text()), sa.Column("_zoho_deleted_at", sa.DateTime(timezone=True))
        )
        live: set[str] = set()
        deleted: set[str] = set()
        for record_id, deleted_at in conn.execute(sa.select(table.c.id, table.c._zoho_deleted_at)):
            (live if deleted_at is None else deleted).add(record_id)
    return TableState(frozenset(live), frozenset(deleted))


def drop_tables(engine: sa.Engine, targets: Sequence[TableName]) -> None:
    """Drop ``targets`` if they exist (the demo starts from empty tables)."""
    with engine.begin() as conn:
        for target in targets:
            conn.execute(sa.schema.DropTable(_table(target), if_exists=True))
