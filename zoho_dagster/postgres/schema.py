"""Zoho field metadata → Postgres columns, and Zoho JSON values → COPY text.

Why a module of its own: the mapping is the table's public face (analysts query these columns), so it must be
deterministic across runs and machines, safe for any API name Zoho allows (quotes, semicolons, 80 characters,
any script) and stable when fields are added later. Each column carries a comment
``zoho:<api_name>#<part>`` so a later run maps a field to the column an earlier run chose, even if new fields
would now collide with it.

**Column names** are a pure function of the module's field list (plus, for a table that already exists, the
columns its comments name, which never move):

- the name is the snake_case of the API name (in Unicode NFC): a ``_`` between a lower-case letter or digit
  and an upper-case letter, every run of characters that are not letters, marks or digits (in any script:
  Unicode categories L, M, N) becomes one ``_``, then lower case (``First_Name`` → ``first_name``,
  ``日本語フィールド__c`` → ``日本語フィールド_c``, ``Größe`` → ``größe``); an empty result is ``field``, a
  leading digit gets ``f_``;
- a name longer than Postgres' 63 bytes (UTF-8) is cut at a character boundary and given ``_`` and 8 hex
  digits of the SHA-1 of the API name;
- when several new fields want one name, standard fields come before custom ones (custom: the field
  metadata says ``custom_field: true`` or the API name ends with ``__c``), then API names in code-point
  order; the first keeps the plain name and the others get the hash suffix of their own API name. A standard
  ``First_Name`` therefore keeps ``first_name`` whatever custom ``FirstName`` the org adds, in a new table
  as in an old one.

**Values.** A value becomes its column's type only if it is exactly what Zoho documents for that type;
anything else is *rejected*: the row still lands, ``_raw`` keeps the value, the typed column is NULL, and the
run counts it per field (:class:`ValueReport`). Nothing is coerced: Postgres' own input functions would
accept ``today``, ``now``, ``infinity``, ``NaN`` and datetimes without an offset (read in the session's time
zone), so values are checked here, before COPY, with these rules:

- date: ``YYYY-MM-DD`` that is a real date (``2024-02-29`` yes, ``2023-02-29`` no);
- datetime: ``YYYY-MM-DDTHH:MM:SS``, optional fraction of 1 to 9 digits, then ``Z`` or ``±HH:MM`` (at most
  ``±15:59``, Postgres' limit); a real date and time of day (hours 00 to 23, no leap second);
- integer and bigint: a JSON integer, an integral float, or a string of at most 19 ASCII digits with an
  optional sign, within bigint's range;
- double, currency, percent, decimal: a finite JSON number, or a string in JSON/SQL decimal notation
  (``12.5``, ``-3``, ``1.5e3``) within numeric's range (131,072 digits before the point, 16,383 after);
- boolean: JSON ``true``/``false`` or the strings ``true``/``false`` in any case;
- multi-select picklist: a list (a single string is a one-item list);
- the empty string is no value (NULL, not a rejection) for dates, datetimes, numbers and booleans;
- text, lookups and JSON columns accept any value.

**Replacement rule.** Postgres text cannot hold NUL (U+0000) and UTF-8 cannot encode a lone surrogate
(U+D800 to U+DFFF, which a JSON parser leaves only when the pair is broken), so each such character, in any
string of the record (keys included, at any depth, in typed columns and in ``_raw`` alike), is replaced by
U+FFFD REPLACEMENT CHARACTER and counted per top-level field. Non-finite floats (``NaN``, ``Infinity``,
``-Infinity``, which a JSON parser makes of Zoho's ``NaN`` or of an overflowing number such as ``1e400``)
cannot be stored in jsonb: ``_raw`` holds them as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``,
and a numeric column rejects them. Otherwise ``_raw`` is the record exactly as Zoho sent it.
"""

import functools
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
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


# ------------------------------------------------------------------------------------------------------------
# --- Names (module docstring: "Column names").


def _is_word_character(character: str) -> bool:
    """Letters, marks and digits of any script: what a column name keeps (marks: Devanagari vowel signs)."""
    return unicodedata.category(character)[0] in "LMN"


def _split_camel_case(text: str) -> str:
    """``LeadSource`` → ``Lead_Source``: ``_`` between a lower-case letter or digit and an upper-case one."""
    out: list[str] = []
    previous = ""
    for character in text:
        if character.isupper() and (previous.islower() or previous.isdigit()):
            out.append("_")
        out.append(character)
        previous = character
    return "".join(out)


def snake_case(api_name: str) -> str:
    """``First_Name`` → ``first_name``, ``LeadSource`` → ``lead_source``, ``Größe`` → ``größe``; characters
    that are not letters, marks or digits → ``_``."""
    text = _split_camel_case(unicodedata.normalize("NFC", api_name))
    words = "".join(c if _is_word_character(c) else " " for c in text).split()
    text = "_".join(words).lower()
    if not text:
        text = "field"
    if text[0].isdigit():
        text = "f_" + text
    return text


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def cut_to_bytes(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 form fits in ``limit`` bytes (never half a character)."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def _hashed(name: str, salt: str) -> str:
    """``name`` cut to leave room for ``_`` and 8 hex digits of the hash of ``salt``: 63 bytes at most."""
    return cut_to_bytes(name, MAX_IDENTIFIER_BYTES - 9) + "_" + _short_hash(salt)


def fit_identifier(name: str, salt: str) -> str:
    """``name`` if it fits in 63 bytes, else a prefix plus a hash of ``salt`` (the full API name)."""
    if len(name.encode("utf-8")) <= MAX_IDENTIFIER_BYTES:
        return name
    return _hashed(name, salt)


def is_custom(field: Mapping[str, Any]) -> bool:
    """A field the org added: ``custom_field: true`` in its metadata, or an API name ending with ``__c``."""
    return field.get("custom_field") is True or str(field.get("api_name") or "").endswith("__c")


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
    for field_ in fields:
        api_name = str(field_.get("api_name") or "")
        if not api_name or api_name == "id" or api_name in seen:
            continue
        seen.add(api_name)
        kind = _field_kind(field_)
        base = snake_case(api_name)
        if kind == "lookup":
            parts = ["id", "name"]
            if str(field_.get("data_type")).lower() in ("ownerlookup", "userlookup"):
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
    among new names are resolved order-independently (module docstring): the group sorted standard fields
    first, then by API name; the first keeps the plain name and the others get a hash suffix of their own API
    name.
    """
    fields = list(fields)
    custom = {str(f.get("api_name")) for f in fields if is_custom(f)}
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
        group = sorted(pending[name], key=lambda c: (c.api_name in custom, c.api_name, c.part))
        for index, column in enumerate(group):
            chosen = name
            salt = f"{column.api_name}#{column.part}"
            if index > 0 or chosen in taken:
                chosen = _hashed(name, salt)
            attempt = 0
            while chosen in taken:
                attempt += 1
                chosen = _hashed(name, f"{salt}#{attempt}")
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
# --- Characters Postgres cannot store (module docstring: "Replacement rule").

REPLACEMENT_CHARACTER = "\ufffd"
_UNSAFE = re.compile("[\x00\ud800-\udfff]")
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
"""``\\u0000`` in JSON text, not preceded by an odd number of backslashes (which would make it literal)."""
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def clean_text(text: str) -> tuple[str, int]:
    """``text`` with NUL and lone surrogates replaced by U+FFFD, and how many were replaced."""
    return _UNSAFE.subn(REPLACEMENT_CHARACTER, text)


def _clean_json(value: Any) -> tuple[Any, int]:
    """A JSON value with every string (keys too) cleaned and non-finite floats spelled as strings."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE[str(value)], 0
    if isinstance(value, (list, tuple)):
        items = [_clean_json(item) for item in value]
        return [item for item, _ in items], sum(count for _, count in items)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        total = 0
        for key, item in value.items():
            clean_key, in_key = clean_text(key) if isinstance(key, str) else (key, 0)
            out[clean_key], in_item = _clean_json(item)
            total += in_key + in_item
        return out, total
    return value, 0


def _has_non_finite(value: Any) -> bool:
    """Whether a JSON-like value holds NaN or ±Infinity anywhere (orjson would write them as ``null``)."""
    kind = type(value)
    if kind is float:
        return not math.isfinite(value)
    if kind is dict:
        for item in value.values():
            if type(item) in _CONTAINERS_AND_FLOATS and _has_non_finite(item):
                return True
    elif kind is list or kind is tuple:
        for item in value:
            if type(item) in _CONTAINERS_AND_FLOATS and _has_non_finite(item):
                return True
    elif isinstance(value, Mapping):
        return _has_non_finite(dict(value))
    return False


_CONTAINERS_AND_FLOATS = frozenset({float, dict, list, tuple})


def _dumps(value: Any) -> str:
    """Compact JSON with non-ASCII kept; ``ValueError`` for a non-finite float, as ``allow_nan=False``.

    orjson writes it (a page of Leads in a tenth of the time of the standard library, and a sync serialises
    every record once for ``_raw``); what orjson refuses (a lone surrogate, an integer past 64 bits, a key
    that is not a string) goes through the standard library, whose text the replacement rule then cleans.
    """
    if _has_non_finite(value):
        raise ValueError("a non-finite float has no JSON spelling")
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate; an encoding attempt is far cheaper than a regex scan."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _needs_cleaning(text: str) -> bool:
    """Whether JSON text (from :func:`_dumps`) holds a lone surrogate or an escaped NUL."""
    return _has_surrogate(text) or ("\\u0000" in text and bool(_JSON_NUL.search(text)))


@dataclass(frozen=True)
class CleanRecord:
    """A record ready for Postgres: values cleaned, JSON for ``_raw``, characters replaced per field."""

    values: Mapping[str, Any]
    raw: str
    replaced: Mapping[str, int]


def clean_record(record: Mapping[str, Any]) -> CleanRecord:
    """The record with the replacement rule applied, serialised once for ``_raw``.

    The common case costs one ``json.dumps`` and one scan of its text; only a record that holds something to
    replace is walked.
    """
    try:
        text = _dumps(record)
    except ValueError:  # a non-finite float
        text = None
    if text is not None and not _needs_cleaning(text):
        return CleanRecord(record, text, {})
    values: dict[str, Any] = {}
    replaced: dict[str, int] = {}
    for key, value in record.items():
        name, in_key = clean_text(key) if isinstance(key, str) else (str(key), 0)
        values[name], in_value = _clean_json(value)
        if in_key + in_value:
            replaced[name] = replaced.get(name, 0) + in_key + in_value
    return CleanRecord(values, _dumps(values), replaced)


# ------------------------------------------------------------------------------------------------------------
# --- Values → COPY text format. Text format (not CSV) because it has one unambiguous NULL (\N) and a simple
# escape. Every converter takes a cleaned value and returns its unescaped text or raises BadValueError.

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"
BIGINT_RANGE = (-(2**63), 2**63 - 1)
NUMERIC_INTEGER_DIGITS = 131_072
NUMERIC_FRACTION_DIGITS = 16_383
MAX_OFFSET_HOURS = 15
_MAX_OFFSET_HOURS_TEXT = f"{MAX_OFFSET_HOURS:02d}"
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})"  # the date
    r"T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?"  # the time, whole seconds or a fraction
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"  # the offset: Z or ±HH:MM, never absent
)
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class BadValueError(ValueError):
    """A Zoho value that cannot become its column's type; the message says what the type wants."""


def copy_escape(text: str) -> str:
    """Escape ``text`` for one field of COPY's text format; ``text`` is already clean (no NUL, see
    :func:`clean_text`).

    Most values hold nothing to escape, and four substring tests are far cheaper than ``str.translate``.
    """
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_COPY_ESCAPES)
    return text


def copy_escape_json(text: str) -> str:
    """:func:`copy_escape` for JSON text, which needs only its backslashes doubled.

    JSON never holds a raw tab, newline or carriage return (they are escaped inside strings, and orjson and
    the standard library both write them so), so one ``str.replace`` does what ``str.translate`` did over the
    whole of every record's ``_raw``, at a fraction of the cost.
    """
    return text.replace("\\", "\\\\")


def json_text(value: Any) -> str:
    """JSON for a jsonb column, with the replacement rule applied (jsonb refuses ``\\u0000``)."""
    try:
        text = _dumps(value)
    except ValueError:
        text = _dumps(_clean_json(value)[0])
    if _needs_cleaning(text):
        text = _JSON_NUL.sub(lambda m: m.group(1) + REPLACEMENT_CHARACTER, text)
        text = _UNSAFE.sub(REPLACEMENT_CHARACTER, text)
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
                else json_text(item)
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


@functools.lru_cache(maxsize=8192)
def _real_date(text: str) -> bool:
    """Whether ``text`` is a calendar date. Cached: a sync's dates and date-times fall on a few hundred days,
    and this check ran for every one of them."""
    match = _DATE.fullmatch(text)
    if match is None:
        return False
    year, month, day = match.groups()
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def _date_text(value: Any) -> str:
    if isinstance(value, str) and _real_date(value):
        return value
    raise BadValueError("not an ISO-8601 date (YYYY-MM-DD)")


def _datetime_text(value: Any) -> str:
    """The date-time with its offset spelled ``±HH:MM``: Postgres then never guesses a time zone."""
    match = _DATETIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise BadValueError("not an ISO-8601 date-time with an offset")
    day, hour, minute, second, fraction, zulu, _sign, offset_hours, offset_minutes = match.groups()
    # Two ASCII digits each, so comparing the texts compares the numbers (and costs no int()).
    valid = (
        _real_date(day)
        and hour <= "23"
        and minute <= "59"
        and second <= "59"
        and (zulu is not None or (offset_hours <= _MAX_OFFSET_HOURS_TEXT and offset_minutes <= "59"))
    )
    if not valid:
        raise BadValueError("not an ISO-8601 date-time with an offset")
    if zulu:
        return f"{day}T{hour}:{minute}:{second}{fraction or ''}+00:00"
    return value  # the pattern matched all of it, offset already spelled ±HH:MM


def _integer_value(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return None


def _integer_text(value: Any) -> str:
    number = _integer_value(value)
    if number is None or not BIGINT_RANGE[0] <= number <= BIGINT_RANGE[1]:
        raise BadValueError("not an integer within bigint's range")
    return str(number)


def _number_source(value: Any) -> str | None:
    """The decimal text of a finite number, or ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return value
    return None


def _number_text(value: Any) -> str:
    """Positional notation (no exponent), which every Postgres version reads the same way.

    The common JSON numbers skip the Decimal round trip, with the same text as a result: a bigint-sized
    integer is its own decimal text, and a finite float whose ``repr`` has no exponent is already positional
    with only the digits Decimal would keep.
    """
    kind = type(value)
    if kind is int and BIGINT_RANGE[0] <= value <= BIGINT_RANGE[1]:
        return str(value)
    if kind is float and math.isfinite(value):
        text = repr(value)
        if "e" not in text:
            return text
    source = _number_source(value)
    try:
        number = Decimal(source) if source is not None else None
    except InvalidOperation:
        number = None
    if number is None or not _numeric_fits(number):
        raise BadValueError("not a finite number within numeric's range")
    return format(number, "f")


def _numeric_fits(number: Decimal) -> bool:
    exponent = number.as_tuple().exponent
    return (
        isinstance(exponent, int)
        and number.adjusted() < NUMERIC_INTEGER_DIGITS
        and -exponent <= NUMERIC_FRACTION_DIGITS
    )


def _boolean_text(value: Any) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return "t" if value.lower() == "true" else "f"
    raise BadValueError("not true or false")


def _array_text(value: Any) -> str:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise BadValueError("not a list")
    return _array_literal(value)


_CONVERTERS: dict[str, Callable[[Any], str]] = {
    "date": _date_text,
    "timestamptz": _datetime_text,
    "bigint": _integer_text,
    "numeric": _number_text,
    "boolean": _boolean_text,
    "text[]": _array_text,
    "jsonb": json_text,
}
KIND_OF_SQL_TYPE = {
    "text": "text",
    "bigint": "bigint",
    "numeric": "numeric",
    "boolean": "boolean",
    "date": "date",
    "timestamp with time zone": "timestamptz",
    "text[]": "text[]",
    "jsonb": "jsonb",
}
"""A stored column's type as Postgres names it (``information_schema``/SQLAlchemy's compile, lower case) →
the column kind of this module: how type drift and the formula refresh read an existing table's types."""
_EMPTY_IS_NULL = frozenset({"date", "timestamptz", "bigint", "numeric", "boolean"})


def render_value(column: Column, value: Any) -> str:
    """One COPY field (already escaped) for ``value`` of the field ``column`` reads, or ``\\N``.

    Raises :class:`BadValueError` when the value is not what the column's type wants (module docstring).
    """
    if column.part:
        if isinstance(value, Mapping):
            value = value.get(column.part)
        elif column.part != "id":
            return NULL
        return NULL if value is None else copy_escape(_scalar_text(value))
    if value is None or (value == "" and column.kind in _EMPTY_IS_NULL):
        return NULL
    converter = _CONVERTERS.get(column.kind, _scalar_text)
    return copy_escape(converter(value))


def value_renderer(column: Column) -> Callable[[Any], str]:
    """:func:`render_value` for one column, with the per-column decisions taken once.

    Why: the writer renders every value of every record (70 per Lead), and looking the converter up again for
    each value was a measurable part of a sync's CPU. Same results and errors as :func:`render_value`.
    """
    part = column.part
    if part:

        def render_part(value: Any) -> str:
            if type(value) is dict or isinstance(value, Mapping):  # the exact type first: far cheaper
                value = value.get(part)
            elif part != "id":
                return NULL
            return NULL if value is None else copy_escape(_scalar_text(value))

        return render_part
    converter = _CONVERTERS.get(column.kind, _scalar_text)
    if converter is _scalar_text:

        def render_text(value: Any) -> str:
            if value is None:
                return NULL
            return copy_escape(value if type(value) is str else _scalar_text(value))

        return render_text
    empty_is_null = column.kind in _EMPTY_IS_NULL
    escape = copy_escape_json if converter is json_text else copy_escape

    def render(value: Any) -> str:
        if value is None or (empty_is_null and value == ""):
            return NULL
        return escape(converter(value))

    return render


def convert_datetime(value: Any) -> str:
    """A Zoho date-time as the text Postgres reads, or :class:`BadValueError` (e.g. a ``deleted_time``)."""
    return _datetime_text(value)


# ------------------------------------------------------------------------------------------------------------
# --- What a run refused or repaired.

SAMPLE_CHARACTERS = 100
SAMPLES_PER_FIELD = 3
SAMPLES = 20


def sample_text(value: Any) -> str:
    """A value for a sample: strings as they are, other values as JSON, cut to 100 characters.

    The replacement rule applies here too: samples end up in Dagster's event log, itself often in Postgres.
    """
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return clean_text(text[:SAMPLE_CHARACTERS])[0]


@dataclass
class ValueReport:
    """Rejected values and replaced characters of one run, per field, with a few samples.

    Why: a bad value must neither fail the run nor pass unnoticed; these figures become the materialization's
    metadata, which the ``values_accepted`` WARN check reads.
    """

    rejected: dict[str, int] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, str]] = field(default_factory=list)
    replaced_samples: list[dict[str, str]] = field(default_factory=list)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def replaced_total(self) -> int:
        return sum(self.replaced.values())

    def reject(self, record_id: str, field_name: str, value: Any, reason: str) -> None:
        self.rejected[field_name] = self.rejected.get(field_name, 0) + 1
        if self._room(self.samples, field_name):
            self.samples.append(
                {"id": record_id, "field": field_name, "value": sample_text(value), "reason": reason}
            )

    def replace(self, record_id: str, field_name: str, count: int, value: Any) -> None:
        self.replaced[field_name] = self.replaced.get(field_name, 0) + count
        if self._room(self.replaced_samples, field_name):
            self.replaced_samples.append(
                {"id": record_id, "field": field_name, "characters": str(count), "value": sample_text(value)}
            )

    @staticmethod
    def _room(samples: list[dict[str, str]], field_name: str) -> bool:
        same = sum(1 for sample in samples if sample["field"] == field_name)
        return len(samples) < SAMPLES and same < SAMPLES_PER_FIELD
