"""The org's metadata as tables: ``fields``, ``org``, ``roles``, ``profiles`` and ``currencies``.

Why here and like this: analysts need picklist values, labels, lookup targets and which column holds which
field, and until now these lived only in column comments. The tables are refreshed with the ``modules``
stream, **in its transaction** (:func:`write_modules_and_metadata`): a run either replaces the modules table
and all five metadata tables, or changes none of them.

Each table is a full refresh done as ``DELETE`` + ``COPY`` inside that transaction rather than the writer's
drop-and-rename swap: readers still see the old rows or the new ones, never half (MVCC), they are not
blocked while Zoho is read, and a user's views on these tables survive a refresh (``DROP TABLE`` would refuse
to drop a table a view depends on, failing every later run). The tables' columns are fixed here; a later
version's new column is added with ``ADD COLUMN IF NOT EXISTS``. One advisory lock serialises two refreshes
of the same schema, whose ``DELETE`` + ``COPY`` would otherwise collide on the primary keys.

The Zoho reads are lazy (:class:`OrgMetadataSource`) and happen inside the transaction, one table after the
other, before the modules table itself is swapped: the short exclusive lock of that swap is never held while
Zoho answers. Values follow the writer's rules (:mod:`zoho_dagster.postgres.schema`): a value its column's
type refuses is stored as NULL there and stays in ``_raw``.
"""

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from zoho_dagster.client import listable_fields
from zoho_dagster.postgres import schema as sc
from zoho_dagster.postgres.copying import copy_lines
from zoho_dagster.postgres.tables import TableName
from zoho_dagster.postgres.writer import WriteResult, write_stream
from zoho_dagster.record_stream import RecordStream

Row = Mapping[str, Any]
Getter = Callable[[Row], Any]


@dataclass(frozen=True)
class ModuleFields:
    """One module's field metadata with the tables our sync keeps for it.

    ``table`` is the table holding the module's records (``None`` when it has none: a linking module);
    ``child_tables`` maps a parent's subform and multi-select/multi-user lookup fields to their child tables.
    Both are decided by the Dagster layer, which knows the streams and their naming rule.
    """

    module: str
    fields: list[dict[str, Any]]
    table: TableName | None
    child_tables: Mapping[str, TableName] = field(default_factory=dict)


@dataclass
class OrgMetadataSource:
    """The Zoho reads behind the metadata tables, called lazily inside the modules stream's transaction."""

    module_fields: Callable[[], Iterable[ModuleFields]]
    org: Callable[[], dict[str, Any]]
    roles: Callable[[], list[dict[str, Any]]]
    profiles: Callable[[], list[dict[str, Any]]]
    currencies: Callable[[dict[str, Any]], list[dict[str, Any]]]


@dataclass
class ModulesStream(RecordStream):
    """The ``modules`` stream's output with the metadata tables' source; ``written`` is filled by the write
    (table → rows), for the materialization's metadata."""

    metadata: OrgMetadataSource | None = None
    written: dict[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------------------
# --- The tables' columns: (name, kind of postgres/schema.py, value from the cleaned Zoho row).


def _at(*path: str) -> Getter:
    def get(row: Row) -> Any:
        value: Any = row
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        return value

    return get


def _first(*getters: Getter) -> Getter:
    def get(row: Row) -> Any:
        for getter in getters:
            value = getter(row)
            if value not in (None, "", {}, []):
                return value
        return None

    return get


@dataclass(frozen=True)
class _Spec:
    name: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, str, Getter], ...]
    comment: str


_LOOKUP_TARGET = _first(
    _at("lookup", "module", "api_name"),
    _at("multiselectlookup", "connected_details", "module", "api_name"),
    _at("multiuserlookup", "connected_details", "module", "api_name"),
    _at("associated_module", "api_name"),
)
_RETURN_TYPE = _first(_at("formula", "return_type"), _at("rollup_summary", "return_type"))

FIELDS = _Spec(
    "fields",
    ("module", "api_name"),
    (
        ("module", "text", _at("_module")),
        ("api_name", "text", _at("api_name")),
        ("field_id", "text", _at("id")),
        ("table_name", "text", _at("_table")),
        ("column_name", "text", _at("_column")),
        ("column_names", "text[]", _at("_columns")),
        ("child_table", "text", _at("_child_table")),
        ("data_type", "text", _at("data_type")),
        ("json_type", "text", _at("json_type")),
        ("label", "text", _first(_at("field_label"), _at("display_label"))),
        ("lookup_module", "text", _LOOKUP_TARGET),
        ("picklist_values", "jsonb", _at("pick_list_values")),
        ("formula_return_type", "text", _RETURN_TYPE),
        ("is_custom", "boolean", _at("_custom")),
    ),
    "Zoho CRM field metadata, one row per module and field; column_name is the column of table_name "
    "holding the field (a lookup's id; column_names lists every part).",
)
ORG = _Spec(
    "org",
    ("id",),
    (
        ("id", "text", _at("id")),
        ("company_name", "text", _at("company_name")),
        ("time_zone", "text", _at("time_zone")),
        ("currency", "text", _at("currency")),
        ("iso_code", "text", _at("iso_code")),
        ("currency_symbol", "text", _at("currency_symbol")),
        (
            "edition",
            "text",
            _first(_at("license_details", "paid_type"), _at("license_details", "trial_type")),
        ),
        ("mc_status", "boolean", _at("mc_status")),
        ("country_code", "text", _at("country_code")),
    ),
    "The Zoho CRM organisation (GET /org); edition is license_details.paid_type (trial_type in a trial).",
)
ROLES = _Spec(
    "roles",
    ("id",),
    (
        ("id", "text", _at("id")),
        ("name", "text", _at("name")),
        ("display_label", "text", _at("display_label")),
        ("reporting_to_id", "text", _at("reporting_to", "id")),
        ("reporting_to_name", "text", _at("reporting_to", "name")),
        ("admin_user", "boolean", _at("admin_user")),
        ("description", "text", _at("description")),
    ),
    "Zoho CRM roles (GET /settings/roles).",
)
PROFILES = _Spec(
    "profiles",
    ("id",),
    (
        ("id", "text", _at("id")),
        ("name", "text", _at("name")),
        ("display_label", "text", _at("display_label")),
        ("is_default", "boolean", _at("default")),
        ("is_custom", "boolean", _at("custom")),
        ("description", "text", _at("description")),
        ("created_time", "timestamptz", _at("created_time")),
        ("modified_time", "timestamptz", _at("modified_time")),
    ),
    "Zoho CRM profiles (GET /settings/profiles).",
)
CURRENCIES = _Spec(
    "currencies",
    ("id",),
    (
        ("id", "text", _at("id")),
        ("name", "text", _at("name")),
        ("iso_code", "text", _at("iso_code")),
        ("symbol", "text", _at("symbol")),
        ("exchange_rate", "numeric", _at("exchange_rate")),
        ("is_base", "boolean", _at("is_base")),
        ("is_active", "boolean", _at("is_active")),
    ),
    "Zoho CRM currencies (GET /org/currencies); empty when the org has multi-currency off.",
)
TABLES = (FIELDS, ORG, ROLES, PROFILES, CURRENCIES)


def _sa_table(spec: _Spec, schema: str) -> sa.Table:
    columns = [
        sa.Column(name, sc.Column(name, name, kind).sa_type(), nullable=name not in spec.key)
        for name, kind, _ in spec.columns
    ]
    columns.append(sa.Column("_raw", pg.JSONB(), comment="the row as Zoho sent it"))
    columns.append(
        sa.Column("_zoho_synced_at", sa.DateTime(timezone=True), comment="when this row was last written")
    )
    return sa.Table(
        spec.name,
        sa.MetaData(),
        *columns,
        sa.PrimaryKeyConstraint(*spec.key),
        schema=schema,
        comment=spec.comment,
    )


# ------------------------------------------------------------------------------------------------------------
# --- Rows → COPY lines.


def _cell(kind: str, value: Any) -> str:
    """One COPY field; a value the kind refuses is NULL (it stays in ``_raw``), as in the writer."""
    try:
        return sc.render_value(sc.Column("v", "v", kind), value)
    except sc.BadValueError:
        return sc.NULL


def _line(spec: _Spec, row: Row, synced_at: str, extra: Row | None = None) -> str:
    clean = sc.clean_record(row)
    values = {**clean.values, **(extra or {})}
    cells = [_cell(kind, get(values)) for _, kind, get in spec.columns]
    return "\t".join((*cells, sc.copy_escape_json(clean.raw), synced_at)) + "\n"


def _refresh(conn: sa.Connection, spec: _Spec, schema: str, lines: Iterable[str]) -> int:
    """Make sure the table exists with every column, then replace its rows; returns the row count."""
    table = _sa_table(spec, schema)
    table.create(conn, checkfirst=True)
    preparer = conn.dialect.identifier_preparer
    for column in table.columns:
        spec_sql = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
        conn.exec_driver_sql(
            f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN IF NOT EXISTS {spec_sql}"
        )
    conn.execute(sa.delete(table))
    return copy_lines(conn, table, lines)


# ------------------------------------------------------------------------------------------------------------
# --- The fields table: which column of our table holds each field.


def _existing_comments(conn: sa.Connection, table: TableName) -> dict[str, tuple[str, str] | None]:
    inspector = sa.inspect(conn)
    if not inspector.has_table(table.name, schema=table.schema):
        return {}
    return {
        c["name"]: sc.parse_comment(c.get("comment")) for c in inspector.get_columns(table.name, table.schema)
    }


def field_columns(conn: sa.Connection, module: ModuleFields) -> dict[str, list[str]]:
    """Field API name → the columns of the module's table holding it (a lookup has several).

    The table's column comments decide first (they never move, :mod:`zoho_dagster.postgres.schema`); a field
    the table has no column for yet gets the name the planner would give it now. Fields the list API does not
    return (subforms, multi-select lookups) have no column: their rows live in child tables.
    """
    if module.table is None:
        return {}
    planned = sc.plan_columns(listable_fields(module.fields), _existing_comments(conn, module.table))
    columns: dict[str, list[str]] = {"id": ["id"]}
    for column in planned:
        columns.setdefault(column.api_name, []).append(column.name)
    return columns


def _field_lines(conn: sa.Connection, modules: Iterable[ModuleFields], synced_at: str) -> Iterator[str]:
    seen: set[tuple[str, str]] = set()
    for module in modules:
        columns = field_columns(conn, module)
        for meta in module.fields:
            api_name = str(meta.get("api_name") or "")
            if not api_name or (module.module, api_name) in seen:
                continue  # a field Zoho lists twice would break the primary key; the first one stands
            seen.add((module.module, api_name))
            names = columns.get(api_name)
            child = module.child_tables.get(api_name)
            extra = {
                "_module": module.module,
                "_table": str(module.table) if module.table else None,
                "_column": names[0] if names else None,
                "_columns": names,
                "_child_table": str(child) if child else None,
                "_custom": sc.is_custom(meta),
            }
            yield _line(FIELDS, meta, synced_at, extra)


def write_metadata_tables(conn: sa.Connection, source: OrgMetadataSource, schema: str) -> dict[str, int]:
    """Replace the five metadata tables of ``schema`` in ``conn``'s transaction; returns rows per table."""
    conn.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"zoho_dagster:meta:{schema}", 0)))
    )
    if not sa.inspect(conn).has_schema(schema):
        conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
    synced_at = sc.copy_escape(str(conn.execute(sa.select(sa.func.now())).scalar_one().isoformat()))
    written = {
        # A list, not a lazy generator: the lines look up stored columns on ``conn``, which the COPY holds.
        FIELDS.name: _refresh(
            conn, FIELDS, schema, list(_field_lines(conn, source.module_fields(), synced_at))
        )
    }
    org = source.org()
    written[ORG.name] = _refresh(conn, ORG, schema, [_line(ORG, org, synced_at)] if org.get("id") else [])
    for spec, rows in ((ROLES, source.roles), (PROFILES, source.profiles)):
        written[spec.name] = _refresh(conn, spec, schema, _unique_lines(spec, rows(), synced_at))
    written[CURRENCIES.name] = _refresh(
        conn, CURRENCIES, schema, _unique_lines(CURRENCIES, source.currencies(org), synced_at)
    )
    return written


def _unique_lines(spec: _Spec, rows: Sequence[Row], synced_at: str) -> Iterator[str]:
    """Lines of the rows with an id, each id once (the primary key)."""
    seen: set[str] = set()
    for row in rows:
        key = str(row.get("id") or "")
        if key and key not in seen:
            seen.add(key)
            yield _line(spec, row, synced_at)


# ------------------------------------------------------------------------------------------------------------
# --- The modules stream and its metadata in one transaction.


class _InTransaction:
    """An engine whose ``begin()`` is the caller's open transaction: :func:`write_stream` (which only calls
    ``engine.begin()``) then writes the modules table inside it, and commits nothing itself."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def begin(self) -> contextlib.nullcontext[sa.Connection]:
        return contextlib.nullcontext(self._conn)


def write_modules_and_metadata(
    engine: sa.Engine,
    stream: RecordStream,
    target: TableName,
    cursor_field: str | None = None,
    window: tuple[datetime, datetime] | None = None,
) -> WriteResult:
    """Write the modules stream into ``target`` and, when it carries a source, the metadata tables of
    ``target``'s schema: one transaction for all (module docstring)."""
    if not isinstance(stream, ModulesStream) or stream.metadata is None:
        return write_stream(engine, stream, target, cursor_field=cursor_field, window=window)
    with engine.begin() as conn:
        stream.written = write_metadata_tables(conn, stream.metadata, target.schema)
        joined = cast(sa.Engine, _InTransaction(conn))
        return write_stream(joined, stream, target, cursor_field=cursor_field, window=window)
