"""Zoho field metadata → Postgres columns, and Zoho JSON values → COPY text.

Why a module of its own: the mapping is the table's public face (analysts query these columns), so it must be
deterministic across runs and machines, safe for any API name Zoho allows (quotes, semicolons, 80 characters)
and stable when fields are added later. Each column carries a comment ``zoho:<api_name>#<part>`` so a later
run maps a field to the column an earlier run chose, even if new fields would now collide with it.
"""

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

MAX_IDENTIFIER_BYTES = 63
"""Postgres silently truncates longer identifiers; we shorten them ourselves so two names cannot merge."""

RESERVED_COLUMNS = ("id", "_raw", "_zoho_synced_at", "_zoho_deleted_at")
COMMENT_PREFIX = "zoho:"

_JSON_API_NAMES = {"Tag", "Product_Details", "Pricing_Details", "Quoted_Items", "Invoiced_Items"}
"""Fields Zoho renders as arrays of objects although their metadata may claim text (docs/zoho-crm-api.md
§3.3, §7.11)."""

_TYPES: dict[str, sa.types.TypeEngine] = {
    "text": sa.Text(),
    "bigint": sa.BigInteger(),
    "numeric": sa.Numeric(),
    "boolean": sa.Boolean(),
    "date": sa.Date(),
    "timestamptz": sa.DateTime(timezone=True),
    "text[]": pg.ARRAY(sa.Text()),
    "jsonb": pg.JSONB(),
}


@dataclass(frozen=True)
class Column:
    """One target column: which Zoho field (and which part of a lookup object) fills it, and as what type."""

    name: str
    api_name: str
    kind: str
    part: str = ""

    @property
    def comment(self) -> str:
        return f"{COMMENT_PREFIX}{self.api_name}#{self.part}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.api_name, self.part)

    def sa_type(self) -> sa.types.TypeEngine:
        return _TYPES[self.kind]


def parse_comment(comment: str | None) -> tuple[str, str] | None:
    """The ``(api_name, part)`` a column comment written by :attr:`Column.comment` names, else ``None``."""
    if not comment or not comment.startswith(COMMENT_PREFIX):
        return None
    api_name, _, part = comment[len(COMMENT_PREFIX) :].rpartition("#")
    return (api_name, part)


def snake_case(api_name: str) -> str:
    """``First_Name`` → ``first_name``, ``LeadSource`` → ``lead_source``; other characters → ``_``."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", api_name)
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    if not text:
        text = "field"
    if text[0].isdigit():
        text = "f_" + text
    return text


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def fit_identifier(name: str, salt: str) -> str:
    """``name`` if it fits in 63 bytes, else a prefix plus a hash of ``salt`` (the full API name)."""
    if len(name.encode("utf-8")) <= MAX_IDENTIFIER_BYTES:
        return name
    return name[: MAX_IDENTIFIER_BYTES - 9] + "_" + _short_hash(salt)


def _field_kind(field: Mapping[str, Any]) -> str:
    data_type = str(field.get("data_type") or "").lower()
    json_type = str(field.get("json_type") or "").lower()
    if field.get("api_name") in _JSON_API_NAMES:
        return "jsonb"
    if data_type == "datetime":
        return "timestamptz"
    if data_type == "date":
        return "date"
    if data_type in ("integer", "bigint"):
        return "bigint"
    if data_type in ("double", "currency", "percent", "decimal"):
        return "numeric"
    if data_type == "boolean":
        return "boolean"
    if data_type == "multiselectpicklist":
        return "text[]"
    if data_type in ("lookup", "ownerlookup", "userlookup"):
        return "lookup"
    if json_type in ("jsonobject", "jsonarray"):
        return "jsonb"
    return "text"


def _wanted_columns(fields: Iterable[Mapping[str, Any]]) -> list[Column]:
    """Columns the fields ask for, in field order, named before collisions are resolved."""
    wanted: list[Column] = []
    seen: set[str] = set()
    for field in fields:
        api_name = str(field.get("api_name") or "")
        if not api_name or api_name == "id" or api_name in seen:
            continue
        seen.add(api_name)
        kind = _field_kind(field)
        base = snake_case(api_name)
        if kind == "lookup":
            parts = ["id", "name"]
            if str(field.get("data_type")).lower() in ("ownerlookup", "userlookup"):
                parts.append("email")
            for part in parts:
                wanted.append(Column(f"{base}_{part}", api_name, "text", part))
        else:
            wanted.append(Column(base, api_name, kind))
    return wanted


def plan_columns(
    fields: Iterable[Mapping[str, Any]], existing: Mapping[str, tuple[str, str] | None]
) -> list[Column]:
    """The data columns for ``fields``: existing columns keep their names, new ones get free, deterministic
    names.

    ``existing`` maps a table's current column names to the ``(api_name, part)`` of their comment. Collisions
    among new names are resolved order-independently: the group sorted by API name, the first keeps the plain
    name and the others get a hash suffix of their own API name.
    """
    by_key = {key: name for name, key in existing.items() if key is not None}
    taken = set(existing) | set(RESERVED_COLUMNS)
    wanted = _wanted_columns(fields)
    result: dict[tuple[str, str], Column] = {}
    pending: dict[str, list[Column]] = {}
    for column in wanted:
        if column.key in by_key:
            result[column.key] = Column(by_key[column.key], column.api_name, column.kind, column.part)
        else:
            name = fit_identifier(column.name, f"{column.api_name}#{column.part}")
            pending.setdefault(name, []).append(Column(name, column.api_name, column.kind, column.part))
    for name in sorted(pending):
        for index, column in enumerate(sorted(pending[name], key=lambda c: (c.api_name, c.part))):
            chosen = name
            salt = f"{column.api_name}#{column.part}"
            if index > 0 or chosen in taken:
                chosen = name[: MAX_IDENTIFIER_BYTES - 9] + "_" + _short_hash(salt)
            attempt = 0
            while chosen in taken:
                attempt += 1
                chosen = name[: MAX_IDENTIFIER_BYTES - 9] + "_" + _short_hash(f"{salt}#{attempt}")
            taken.add(chosen)
            result[column.key] = Column(chosen, column.api_name, column.kind, column.part)
    return [result[column.key] for column in wanted]


def table_columns(columns: Sequence[Column], cursor_column: str | None) -> list[sa.Column]:
    """A target table's columns: ``id`` primary key, the data columns, then the bookkeeping ones."""
    result = [sa.Column("id", sa.Text(), primary_key=True, comment=f"{COMMENT_PREFIX}id#")]
    for column in columns:
        result.append(sa.Column(column.name, column.sa_type(), comment=column.comment))
    result.append(sa.Column("_raw", pg.JSONB(), comment="the record as Zoho sent it"))
    result.append(
        sa.Column("_zoho_synced_at", sa.DateTime(timezone=True), comment="when this row was last written")
    )
    result.append(
        sa.Column(
            "_zoho_deleted_at", sa.DateTime(timezone=True), comment="when Zoho reported the record deleted"
        )
    )
    return result


# ------------------------------------------------------------------------------------------------------------
# --- Values → COPY text format. Text format (not CSV) because it has one unambiguous NULL (\N) and a simple
# escape.

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": ""})
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
NULL = "\\N"


class BadValueError(ValueError):
    """A Zoho value that cannot become its column's type; the message names the field and the value."""


def copy_escape(text: str) -> str:
    """Escape ``text`` for one field of COPY's text format (Postgres text cannot hold NUL: dropped)."""
    return text.translate(_COPY_ESCAPES)


def json_text(value: Any) -> str:
    """JSON for a jsonb column; ``\\u0000`` is removed because jsonb rejects it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if "\\u0000" in text:
        text = _JSON_NUL.sub(r"\1", text)
    return text


def _array_literal(values: Sequence[Any]) -> str:
    items = []
    for item in values:
        if item is None:
            items.append("NULL")
        else:
            text = (
                item
                if isinstance(item, str)
                else json.dumps(item)
                if isinstance(item, (dict, list))
                else str(item)
            )
            items.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(items) + "}"


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_value(column: Column, value: Any) -> str:
    """One COPY field (already escaped) for ``value`` of the field ``column`` reads, or ``\\N``."""
    if column.part:
        if value is None:
            return NULL
        if isinstance(value, Mapping):
            value = value.get(column.part)
        elif column.part != "id":
            return NULL
        if value is None:
            return NULL
        return copy_escape(_scalar_text(value))
    if value is None:
        return NULL
    kind = column.kind
    if kind == "jsonb":
        return copy_escape(json_text(value))
    if kind == "text[]":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise BadValueError(f"field {column.api_name!r} should be a list but is {value!r}")
        return copy_escape(_array_literal(value))
    if kind == "boolean":
        if isinstance(value, bool):
            return "t" if value else "f"
        if str(value).lower() in ("true", "false"):
            return "t" if str(value).lower() == "true" else "f"
        raise BadValueError(f"field {column.api_name!r} should be a boolean but is {value!r}")
    if kind == "bigint":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise BadValueError(f"field {column.api_name!r} should be an integer but is {value!r}")
        try:
            return str(int(value))
        except (TypeError, ValueError):
            raise BadValueError(f"field {column.api_name!r} should be an integer but is {value!r}") from None
    if kind == "numeric":
        if isinstance(value, (bool, dict, list)):
            raise BadValueError(f"field {column.api_name!r} should be a number but is {value!r}")
        text = str(value)
        if text.lower() in ("inf", "-inf", "infinity", "-infinity"):
            raise BadValueError(f"field {column.api_name!r} should be a finite number but is {value!r}")
        return copy_escape(text)
    if kind in ("date", "timestamptz"):
        if value == "":
            return NULL
        return copy_escape(str(value))
    return copy_escape(_scalar_text(value))
