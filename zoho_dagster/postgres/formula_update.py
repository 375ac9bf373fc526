"""Formula, rollup and auto-number values written into rows that exist, and nothing else.

Why: Zoho recomputes formula and rollup fields without bumping ``Modified_Time`` (docs/zoho-crm-api.md §7.5),
so the incremental sync never sees their changes. The formula refresh re-reads just those fields and this
module puts them into the stored rows:

- only the fields' own columns change, plus the same keys of ``_raw``; no row is inserted, no other column
  (not ``Modified_Time``, not ``_zoho_synced_at``) is touched;
- newest wins as in the writer: a row is updated only where its stored ``Modified_Time`` is at most the one
  read with the values (a row the sync has since replaced by a newer version keeps that version's values);
  a row whose cursor is NULL (unreadable) is never updated;
- only rows whose values differ are written (``rows_updated`` counts real changes, and no row is rewritten
  for nothing);
- a field with no column yet (added in Zoho since the last sync) is skipped: the next sync creates it;
- values follow the writer's rules (:mod:`zoho_dagster.postgres.schema`): rendered for the column's actual
  type (read from the catalog, so a migrated type is honoured) and NULL, kept in ``_raw``, when refused.

One transaction per table: the pages are copied into a TEMP staging table as they are fetched, then, under
the writer's advisory lock of the table (so a sync of the same table waits, and vice versa), one ``UPDATE``.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from zoho_dagster.postgres import schema as sc
from zoho_dagster.postgres.copying import copy_lines
from zoho_dagster.postgres.tables import TableName

REFRESHED_TYPES = frozenset({"formula", "rollup_summary", "autonumber"})
"""Data types whose values change without a new ``Modified_Time`` (auto-numbers: when renumbered)."""


Pages = Iterable[list[dict[str, Any]]]


def refreshed_fields(fields: Iterable[Mapping[str, Any]]) -> list[str]:
    """API names of the formula, rollup-summary and auto-number fields among ``fields`` (Zoho metadata)."""
    return [
        str(meta["api_name"])
        for meta in fields
        if meta.get("api_name") and str(meta.get("data_type") or "").lower() in REFRESHED_TYPES
    ]


@dataclass
class FormulaUpdate:
    """What one table's refresh did."""

    table: TableName
    fields: list[str] = field(default_factory=list)
    """The fields refreshed (those with a column)."""
    skipped: list[str] = field(default_factory=list)
    """Fields without a column in the table (yet)."""
    window: tuple[datetime, datetime] | None = None
    received: int = 0
    updated: int = 0
    values: sc.ValueReport = field(default_factory=sc.ValueReport)


@dataclass(frozen=True)
class _Target:
    cursor: str
    columns: dict[str, tuple[str, str]]
    """API name → (column, kind)."""


def _target(
    conn: sa.Connection, table: TableName, fields: Sequence[str], cursor_field: str
) -> _Target | None:
    """The table's cursor column and the refreshed fields' columns with their kinds; None if unusable."""
    inspector = sa.inspect(conn)
    if not inspector.has_table(table.name, schema=table.schema):
        return None
    cursor = None
    columns: dict[str, tuple[str, str]] = {}
    for column in inspector.get_columns(table.name, table.schema):
        key = sc.parse_comment(column.get("comment"))
        if key is None or key[1]:
            continue
        if key[0] == cursor_field:
            cursor = column["name"]
        elif key[0] in fields:
            kind = sc.KIND_OF_SQL_TYPE.get(str(column["type"].compile(dialect=conn.dialect)).lower())
            if kind is not None:
                columns[key[0]] = (column["name"], kind)
    return _Target(cursor, columns) if cursor else None


def stored_window(conn: sa.Connection, table: sa.Table, cursor: str) -> tuple[datetime, datetime] | None:
    """``[oldest, newest + 1 s)`` of the live rows' ``Modified_Time``: where the stored records lie.

    Reading only this window costs what the table holds, not the module's whole history (records before the
    anchor date are not in the table, and a record modified after the newest stored one is the next sync's).
    """
    live = table.c._zoho_deleted_at.is_(None)
    oldest, newest = conn.execute(
        sa.select(sa.func.min(table.c[cursor]), sa.func.max(table.c[cursor])).where(live)
    ).one()
    if oldest is None or newest is None:
        return None
    return oldest, newest + timedelta(seconds=1)


def _stage(kinds: Sequence[str]) -> sa.Table:
    columns = [sa.Column("id", sa.Text()), sa.Column("cursor", sa.DateTime(timezone=True))]
    columns += [sa.Column(f"c{i}", sc.Column("v", "v", kind).sa_type()) for i, kind in enumerate(kinds)]
    columns.append(sa.Column("_patch", pg.JSONB()))
    return sa.Table(
        "_zd_formula", sa.MetaData(), *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DROP"
    )


def _lines(
    pages: Pages, names: Sequence[str], kinds: Sequence[str], cursor_field: str, report: sc.ValueReport
) -> Iterator[str]:
    """One COPY line per record: id, cursor, the typed values and the ``_raw`` patch (those keys only)."""
    for page in pages:
        for record in page:
            clean = sc.clean_record(record)
            record_id = clean.values.get("id")
            if record_id in (None, ""):
                continue  # nothing to match a row with; a record without an id is the sync's to refuse
            rid = str(record_id)
            cells = [_cell(report, rid, cursor_field, "timestamptz", clean.values.get(cursor_field))]
            cells += [
                _cell(report, rid, n, k, clean.values.get(n)) for n, k in zip(names, kinds, strict=True)
            ]
            patch = sc.json_text({name: clean.values.get(name) for name in names if name in clean.values})
            yield "\t".join((sc.copy_escape(rid), *cells, sc.copy_escape(patch))) + "\n"


def _cell(report: sc.ValueReport, record_id: str, name: str, kind: str, value: Any) -> str:
    try:
        return sc.render_value(sc.Column("v", name, kind), value)
    except sc.BadValueError as error:
        report.reject(record_id, name, value, str(error))
        return sc.NULL


def _update(
    conn: sa.Connection,
    table: sa.Table,
    stage: sa.Table,
    cursor: str,
    columns: Sequence[str],
    names: Sequence[str],
) -> int:
    """The one UPDATE: newest staged version per id, newest-wins against the row, only real changes."""
    newest = (
        sa.select(stage)
        .distinct(stage.c.id)
        .order_by(stage.c.id, stage.c.cursor.desc().nulls_last())
        .subquery("s")
    )
    raw = sa.func.coalesce(table.c._raw, sa.cast(sa.literal("{}"), pg.JSONB()))
    changed = [table.c[column].is_distinct_from(newest.c[f"c{i}"]) for i, column in enumerate(columns)]
    changed += [raw[name].is_distinct_from(newest.c._patch[name]) for name in names]
    statement = (
        sa.update(table)
        .values(
            {
                **{column: newest.c[f"c{i}"] for i, column in enumerate(columns)},
                "_raw": raw.op("||")(newest.c._patch),
            }
        )
        .where(
            table.c.id == newest.c.id,
            table.c[cursor].is_not(None),
            newest.c.cursor.is_not(None),
            table.c[cursor] <= newest.c.cursor,
            sa.or_(*changed),
        )
    )
    return int(conn.execute(statement).rowcount or 0)


def update_formula_columns(
    engine: sa.Engine,
    table_name: TableName,
    fields: Sequence[str],
    read: Callable[[datetime, datetime, list[str]], Pages],
    cursor_field: str = "Modified_Time",
) -> FormulaUpdate:
    """Refresh ``fields``' columns of ``table_name`` from ``read(start, end, fields)`` (module docstring).

    ``read`` is asked once, for the stored window and only the fields that have a column; nothing is read
    when the table is absent, empty, or has none of the fields.
    """
    result = FormulaUpdate(table_name)
    with engine.begin() as conn:
        target = _target(conn, table_name, fields, cursor_field)
        if target is None:
            result.skipped = list(fields)
            return result
        result.fields = [name for name in fields if name in target.columns]
        result.skipped = [name for name in fields if name not in target.columns]
        if not result.fields:
            return result
        columns = [target.columns[name][0] for name in result.fields]
        kinds = [target.columns[name][1] for name in result.fields]
        table = sa.Table(
            table_name.name,
            sa.MetaData(),
            sa.Column("id", sa.Text()),
            sa.Column(target.cursor, sa.DateTime(timezone=True)),
            *[sa.Column(c, sc.Column("v", "v", k).sa_type()) for c, k in zip(columns, kinds, strict=True)],
            sa.Column("_raw", pg.JSONB()),
            sa.Column("_zoho_deleted_at", sa.DateTime(timezone=True)),
            schema=table_name.schema,
        )
        result.window = stored_window(conn, table, target.cursor)
        if result.window is None:
            return result
        stage = _stage(kinds)
        stage.create(conn)
        pages = read(result.window[0], result.window[1], list(result.fields))
        result.received = copy_lines(
            conn, stage, _lines(pages, result.fields, kinds, cursor_field, result.values)
        )
        conn.execute(
            sa.select(
                sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"zoho_dagster:table:{table_name}", 0))
            )
        )
        result.updated = _update(conn, table, stage, target.cursor, columns, result.fields)
    return result
