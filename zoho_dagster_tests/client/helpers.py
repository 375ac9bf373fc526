"""Expected values from the simulator's truth, computed independently of the client under test."""

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from zoho_dagster.simulator.schema import MODULES, RICH_TEXT_LIMIT

WIDE_START = datetime(2000, 1, 1, tzinfo=timezone.utc)
WIDE_END = datetime(2100, 1, 1, tzinfo=timezone.utc)


def utc(text: str) -> datetime:
    """A Zoho datetime string in UTC, parsed here without the client's helper."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").astimezone(timezone.utc)


def projected(record: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """The record as the list API returns it for ``fields``: those keys plus ``id``."""
    keys = {*fields, "id"}
    return {key: record.get(key) for key in keys}


RICH_TEXT_FIELDS = frozenset(f.api_name for spec in MODULES for f in spec.fields if f.rich_text)
"""The simulator's rich-text fields: a list answer carries their first 500 characters (ref. §2.5)."""


def as_listed(record: dict[str, Any]) -> dict[str, Any]:
    """The record as a list answer gives it: rich text cut to its first 500 characters (ref. §2.5)."""
    return {
        key: value[:RICH_TEXT_LIMIT] if key in RICH_TEXT_FIELDS and isinstance(value, str) else value
        for key, value in record.items()
    }


def truth_window(
    truth: dict[str, Any], fields: Iterable[str], start: datetime, end: datetime, whole_text: bool = False
) -> dict[str, dict[str, Any]]:
    """The truth's records with ``start <= Modified_Time < end``, projected to ``fields``, by id: as a list
    answer gives them (rich text cut), or with ``whole_text`` as a read given the fields metadata does
    (client/full_text.py)."""
    names = list(fields)
    return {
        record["id"]: projected(record if whole_text else as_listed(record), names)
        for record in truth["data"]
        if start <= utc(record["Modified_Time"]) < end
    }


def collect(pages: Iterable[list[dict[str, Any]]], fields: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Pages read by the client, by id (later versions win); every requested field must be present."""
    keys = {*fields, "id"}
    result: dict[str, dict[str, Any]] = {}
    for page in pages:
        for record in page:
            missing = keys - set(record)
            assert not missing, f"record {record.get('id')} lacks {sorted(missing)}"
            result[record["id"]] = {key: record[key] for key in keys}
    return result


SINGLE_RECORD_ONLY = frozenset({"subform", "multiselectlookup", "multiuserlookup"})
"""Field types whose values only a single-record read carries (docs/zoho-crm-api.md §2.5)."""


def field_names(fields_metadata: list[dict[str, Any]]) -> list[str]:
    """The fields a list read can ask for: all but those of :data:`SINGLE_RECORD_ONLY`."""
    return [
        field["api_name"] for field in fields_metadata if field.get("data_type") not in SINGLE_RECORD_ONLY
    ]


def is_converted(record: dict[str, Any]) -> bool:
    """Whether a truth record is converted: Zoho's ``$converted`` key (docs/zoho-crm-api.md §5)."""
    return record.get("$converted") is True


def is_awaiting_approval(record: dict[str, Any]) -> bool:
    """Whether a truth record awaits approval: Zoho's ``$approved`` key is false (docs/zoho-crm-api.md §5)."""
    return record.get("$approved") is False


def is_hidden_by_default(record: dict[str, Any]) -> bool:
    """Whether Zoho's list API leaves the record out unless asked (``converted``, ``approved``, §2.1)."""
    return is_converted(record) or is_awaiting_approval(record)


def shown_by_default(truth: dict[str, Any]) -> list[dict[str, Any]]:
    """The truth's records Zoho's list API shows without ``converted``/``approved`` (not converted, not
    awaiting approval): what the simulator's count API counts under its strict reading (ref. §10)."""
    return [r for r in truth["data"] if not is_hidden_by_default(r)]
