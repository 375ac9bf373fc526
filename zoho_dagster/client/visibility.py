"""Which records a Get Records call returns: every one, or the sets Zoho hides by default.

Zoho's list API leaves out converted records (``converted`` defaults to ``false``) and records awaiting
approval (``approved`` defaults to ``true``) unless asked (docs/zoho-crm-api.md §2.1, §7.16). A sync that
forgets either parameter loses most of a lead history without an error, so every Get Records call of this
package (pages, ``ids=`` refetches, the change probe) sends :data:`EVERY_RECORD`.

Whether COQL, Bulk Read and the count API include those records is not documented (UNCONFIRMED, §9); the
routes that may leave them out read them again with the records API and :data:`HIDDEN_SETS`, the two
complements of Zoho's defaults, so nothing depends on the answer.
"""

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

EVERY_RECORD: Mapping[str, str] = MappingProxyType({"converted": "both", "approved": "both"})
"""Get Records parameters that lift both default filters."""

CONVERTED = MappingProxyType({"converted": "true", "approved": "both"})
"""Only the converted records, approved or not."""

AWAITING_APPROVAL = MappingProxyType({"converted": "both", "approved": "false"})
"""Only the records not (yet) approved, converted or not."""

HIDDEN_SETS: tuple[Mapping[str, str], ...] = (CONVERTED, AWAITING_APPROVAL)
"""Together: every record the list API leaves out by default (a converted record awaiting approval is in
both, and read twice)."""


CONVERSION_FIELD = "Converted__s"
"""The field Zoho lists in the metadata of modules whose records convert (Leads, docs/zoho-crm-api.md §5)."""


def _system_field(api_name: str, data_type: str, json_type: str) -> dict[str, Any]:
    return {"api_name": api_name, "data_type": data_type, "json_type": json_type, "read_only": True}


APPROVAL_FIELDS = (
    _system_field("$approved", "boolean", "boolean"),
    _system_field("$approval_state", "text", "string"),
)
CONVERSION_FIELDS = (
    _system_field("$converted", "boolean", "boolean"),
    _system_field("$converted_detail", "jsonobject", "jsonobject"),
)


def system_fields(fields_metadata: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Field metadata for the ``$`` keys that say whether a record is converted or awaiting approval.

    Zoho sends them with every record of the list API, unasked (docs/zoho-crm-api.md §5), but its fields
    metadata does not list them; described as fields, they get typed columns like any other (``approved``,
    ``approval_state``, and ``converted``, ``converted_detail`` where the metadata lists ``Converted__s``).
    They are never asked for in ``fields``: only ``$approval_state`` is documented as a name ``fields`` takes.
    """
    names = {str(meta.get("api_name")) for meta in fields_metadata}
    chosen = [*APPROVAL_FIELDS, *(CONVERSION_FIELDS if CONVERSION_FIELD in names else ())]
    return [dict(meta) for meta in chosen if meta["api_name"] not in names]


def is_system_key(api_name: str) -> bool:
    """Whether ``api_name`` is one of Zoho's read-only ``$`` keys rather than a field ``fields`` can name."""
    return api_name.startswith("$")
