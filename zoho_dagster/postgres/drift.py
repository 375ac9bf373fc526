"""Type drift: a column whose Zoho field now maps to another Postgres type is migrated before the merge.

Why: Zoho lets an admin change a custom field's type (a number becomes a currency, a text a picklist or a
number). The staging table is planned from today's field metadata, so merging it into a column of the old type
would fail the run with Postgres' ``DatatypeMismatch``. The writer calls :func:`migrate_types` inside the
run's transaction, after the table lock and before the merge, so a failed run leaves the table as it was and
two runs never migrate the same column at once.

**The rule** (docs/design.md §3, "Type drift"). A column's stored type is what Postgres' catalog says; the
wanted type is the one :func:`zoho_dagster.postgres.schema.plan_columns` gives the field today. When they
differ:

- *lossless cast*: ``ALTER COLUMN … TYPE … USING`` in place, values kept. Lossless means every stored value
  becomes exactly the value the new type's parser makes of the same Zoho value, whatever the session's
  settings: ``bigint`` → ``numeric``; ``bigint``, ``numeric``, ``boolean`` → ``text`` (``1500.5``,
  ``true``); ``date`` → ``text`` (``YYYY-MM-DD``); ``text`` → ``text[]`` (a one-item list, as the writer
  reads a single string for a multi-select); ``text``, ``bigint``, ``numeric``, ``boolean``, ``date`` →
  ``jsonb``. Nothing else: ``timestamptz`` → ``text`` would render the instant in the session's time zone
  instead of the offset Zoho sent, and a narrowing cast (``numeric`` → ``bigint``, ``text`` → a number)
  can lose or refuse values.
- *otherwise*: the old column is renamed ``<column>__was_<old type>`` (``timestamptz`` for a timestamp,
  ``text_array`` for ``text[]``; made unique with ``_2``, ``_3``…, and shortened to 63 bytes with
  :func:`~zoho_dagster.postgres.schema.fit_identifier`), keeping its data and a comment that says what it
  was; a new column of the new type takes the old name and comment and is filled from ``_raw`` with the
  writer's own strict value rules (:func:`~zoho_dagster.postgres.schema.render_value`): a value the new
  type refuses is NULL there (still in ``_raw``) and counted. (An object refilled into a text column has
  the key order of ``_raw``, a jsonb: the same JSON, perhaps spelled in another order.)

Each migration is one row of ``zoho_dagster.type_migrations``, written in the same transaction, which the
``columns_match_zoho`` check reports (:func:`recent_migrations`). A second run finds the types equal and does
nothing.
"""

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from zoho_dagster.postgres import schema as sc
from zoho_dagster.postgres.copying import copy_lines
from zoho_dagster.postgres.tables import TableName

log = logging.getLogger(__name__)

SCHEMA = "zoho_dagster"
TABLE = "type_migrations"
KEPT_COMMENT_PREFIX = "zoho-kept:"
"""Comment of a renamed old column: not ``zoho:``, so no field maps to it again (schema.parse_comment)."""
_DDL_LOCK_KEY = 0x7A645F6472696674  # an arbitrary constant: serialises the CREATE ... IF NOT EXISTS below

_SUFFIXES = {"text[]": "text_array"}

LOSSLESS: dict[tuple[str, str], str] = {
    ("bigint", "numeric"): "{c}::numeric",
    ("bigint", "text"): "{c}::text",
    ("numeric", "text"): "{c}::text",
    ("boolean", "text"): "{c}::text",
    ("date", "text"): "to_char({c}, 'YYYY-MM-DD')",
    ("text", "text[]"): "CASE WHEN {c} IS NULL THEN NULL ELSE ARRAY[{c}] END",
    ("text", "jsonb"): "to_jsonb({c})",
    ("bigint", "jsonb"): "to_jsonb({c})",
    ("numeric", "jsonb"): "to_jsonb({c})",
    ("boolean", "jsonb"): "to_jsonb({c})",
    ("date", "jsonb"): "to_jsonb(to_char({c}, 'YYYY-MM-DD'))",
}
"""(old kind, new kind) → the ``USING`` expression of an in-place, lossless migration (module docstring)."""

_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.{TABLE} (
        migrated_at timestamptz NOT NULL DEFAULT now(),
        table_schema text NOT NULL,
        table_name text NOT NULL,
        column_name text NOT NULL,
        api_name text NOT NULL,
        part text NOT NULL,
        old_type text NOT NULL,
        new_type text NOT NULL,
        kept_as text,
        rejected_values integer NOT NULL DEFAULT 0
    )""",
)


@dataclass(frozen=True)
class Migration:
    """One column whose type changed: migrated in place (``kept_as`` None) or rebuilt beside its old copy."""

    table: TableName
    column: str
    api_name: str
    part: str
    old_type: str
    new_type: str
    kept_as: str | None
    rejected_values: int
    migrated_at: datetime | None = None

    def describe(self) -> str:
        """``amount (Amount): bigint → numeric, migrated in place`` or ``…, old values kept in <name>``."""
        field = self.api_name + (f".{self.part}" if self.part else "")
        what = f"{self.column} ({field}): {self.old_type} → {self.new_type}, "
        if self.kept_as is None:
            return what + "migrated in place"
        what += f"old values kept in {self.kept_as}, new column filled from _raw"
        if self.rejected_values:
            what += f" ({self.rejected_values} values the new type refuses left NULL)"
        return what


def _stored_types(conn: sa.Connection, target: TableName) -> dict[str, str]:
    """Column name → Postgres type (``format_type``), read from the catalog."""
    rows = conn.execute(
        sa.text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relname = :name AND a.attnum > 0 AND NOT a.attisdropped"
        ),
        {"schema": target.schema, "name": target.name},
    )
    return {str(name): str(type_) for name, type_ in rows}


def _wanted_type(column: sc.Column) -> str:
    return next(name for name, kind in sc.KIND_OF_SQL_TYPE.items() if kind == column.kind)


def migrate_types(conn: sa.Connection, table: sa.Table, planned: Sequence[sc.Column]) -> list[Migration]:
    """Bring every existing column of ``planned`` to its planned type (module docstring); the migrations.

    ``table`` is the target as the writer plans it (its columns carry the planned types and comments); the
    caller holds the table's advisory lock, inside the run's transaction.
    """
    target = TableName(str(table.schema), table.name)
    stored = _stored_types(conn, target)
    migrations = []
    for column in planned:
        old = stored.get(column.name)
        new = _wanted_type(column)
        if old is None or old == new:
            continue
        old_kind = sc.KIND_OF_SQL_TYPE.get(old, old)
        using = LOSSLESS.get((old_kind, column.kind))
        if using is not None:
            _alter_in_place(conn, table, column, using)
            migration = Migration(target, column.name, column.api_name, column.part, old, new, None, 0)
        else:
            kept = _kept_name(column.name, old_kind, set(stored))
            stored[kept] = old
            rejected = _rebuild(conn, table, column, kept, old)
            migration = Migration(target, column.name, column.api_name, column.part, old, new, kept, rejected)
        _record(conn, migration)
        log.info("%s: %s", target, migration.describe())
        migrations.append(migration)
    return migrations


def _quote(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _table_sql(conn: sa.Connection, table: sa.Table) -> str:
    return conn.dialect.identifier_preparer.format_table(table)


def _alter_in_place(conn: sa.Connection, table: sa.Table, column: sc.Column, using: str) -> None:
    quoted = _quote(conn, column.name)
    new = _wanted_type(column)
    # Identifiers quoted by the preparer go through exec_driver_sql, as in writer._execute_ddl.
    conn.exec_driver_sql(
        f"ALTER TABLE {_table_sql(conn, table)} ALTER COLUMN {quoted} TYPE {new} "
        f"USING {using.format(c=quoted)}"
    )


def _kept_name(name: str, old_kind: str, taken: set[str]) -> str:
    """``<name>__was_<old type>``, unique among ``taken`` and at most 63 bytes."""
    suffix = _SUFFIXES.get(old_kind) or sc.snake_case(old_kind)
    base = f"{name}__was_{suffix}"
    candidate = sc.fit_identifier(base, base)
    attempt = 1
    while candidate in taken:
        attempt += 1
        numbered = f"{base}_{attempt}"
        candidate = sc.fit_identifier(numbered, numbered)
    return candidate


def _rebuild(conn: sa.Connection, table: sa.Table, column: sc.Column, kept: str, old: str) -> int:
    """Rename the old column to ``kept``, add the new one, fill it from ``_raw``; returns values refused."""
    table_sql = _table_sql(conn, table)
    quoted = _quote(conn, column.name)
    conn.exec_driver_sql(f"ALTER TABLE {table_sql} RENAME COLUMN {quoted} TO {_quote(conn, kept)}")
    comment = (
        f"{KEPT_COMMENT_PREFIX}{column.api_name}#{column.part} as {old}, kept when the field became "
        f"{_wanted_type(column)} in column {column.name}"
    )
    renamed = sa.Table(
        table.name, sa.MetaData(), sa.Column(kept, sa.Text(), comment=comment), schema=table.schema
    )
    conn.execute(sa.schema.SetColumnComment(renamed.c[kept]))
    spec = sa.schema.CreateColumn(table.c[column.name]).compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {table_sql} ADD COLUMN {spec}")
    conn.execute(sa.schema.SetColumnComment(table.c[column.name]))
    return _fill_from_raw(conn, table, column)


def _fill_from_raw(conn: sa.Connection, table: sa.Table, column: sc.Column) -> int:
    """Set the new column from each row's ``_raw`` value with the writer's strict rules; values refused."""
    fill = sa.Table(
        "_zd_drift_fill",
        sa.MetaData(),
        sa.Column("id", sa.Text()),
        sa.Column("v", column.sa_type()),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    fill.drop(conn, checkfirst=True)
    fill.create(conn)
    raw = table.c._raw
    query = sa.select(table.c.id, raw[column.api_name]).where(raw.has_key(column.api_name))
    rows = conn.execute(query.execution_options(yield_per=10_000))  # one batch in memory at a time
    refused = [0]
    # A COPY per batch: the server-side cursor and a COPY cannot share the connection at the same moment.
    for batch in rows.partitions():
        copy_lines(conn, fill, _fill_lines(batch, column, refused))
    conn.execute(sa.update(table).where(table.c.id == fill.c.id).values({column.name: fill.c.v}))
    fill.drop(conn)
    return refused[0]


def _fill_lines(rows: Iterable[sa.Row], column: sc.Column, refused: list[int]) -> Iterator[str]:
    for record_id, value in rows:
        try:
            text = sc.render_value(column, value)
        except sc.BadValueError:
            refused[0] += 1
            continue
        if text != sc.NULL:
            yield f"{sc.copy_escape(str(record_id))}\t{text}\n"


def _migrations_table() -> sa.Table:
    return sa.Table(
        TABLE,
        sa.MetaData(),
        sa.Column("migrated_at", sa.DateTime(timezone=True)),
        sa.Column("table_schema", sa.Text()),
        sa.Column("table_name", sa.Text()),
        sa.Column("column_name", sa.Text()),
        sa.Column("api_name", sa.Text()),
        sa.Column("part", sa.Text()),
        sa.Column("old_type", sa.Text()),
        sa.Column("new_type", sa.Text()),
        sa.Column("kept_as", sa.Text()),
        sa.Column("rejected_values", sa.Integer()),
        schema=SCHEMA,
    )


def _record(conn: sa.Connection, migration: Migration) -> None:
    if not sa.inspect(conn).has_table(TABLE, schema=SCHEMA):
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_DDL_LOCK_KEY)))
        for statement in _DDL:
            conn.exec_driver_sql(statement)
    conn.execute(
        sa.insert(_migrations_table()).values(
            table_schema=migration.table.schema,
            table_name=migration.table.name,
            column_name=migration.column,
            api_name=migration.api_name,
            part=migration.part,
            old_type=migration.old_type,
            new_type=migration.new_type,
            kept_as=migration.kept_as,
            rejected_values=migration.rejected_values,
        )
    )


def recent_migrations(conn: sa.Connection, target: TableName, limit: int = 20) -> list[Migration]:
    """The latest type migrations of ``target``, newest first (none when nothing ever drifted)."""
    if not sa.inspect(conn).has_table(TABLE, schema=SCHEMA):
        return []
    table = _migrations_table()
    rows = conn.execute(
        sa.select(table)
        .where(table.c.table_schema == target.schema, table.c.table_name == target.name)
        .order_by(table.c.migrated_at.desc(), table.c.column_name)
        .limit(limit)
    ).mappings()
    return [
        Migration(
            target,
            row["column_name"],
            row["api_name"],
            row["part"],
            row["old_type"],
            row["new_type"],
            row["kept_as"],
            int(row["rejected_values"]),
            row["migrated_at"],
        )
        for row in rows
    ]
