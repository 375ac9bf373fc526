"""What every COQL read of this client shares: the endpoint, its scope, its page sizes and credit prices, and
which field types COQL returns exactly as the records list API does.

COQL (``POST /crm/v6/coql``, docs/zoho-crm-api.md §3.8) returns up to 2,000 rows per call for 3 credits, where
the records API returns 200 for 1: ten times fewer round trips per record. Two readers use it: the child rows
(:mod:`zoho_dagster.client.children`) and the COQL field passes of a window
(:mod:`zoho_dagster.client.coql_pass`).
"""

from collections.abc import Iterable, Mapping
from typing import Any

COQL_PATH = "/coql"
COQL_SCOPE = "ZohoCRM.coql.READ"
COQL_COLUMNS = 50
"""At most 50 selected columns in v6 (§3.8)."""
COQL_FIRST_PAGE = 200
"""1 credit (§3.8): what the records API charges for its first page, so a small read costs no more."""
COQL_NEXT_PAGE = 2000
"""3 credits for up to 2,000 rows (§3.8): the cheapest per row once a read has more than 200."""

SAME_SHAPE_TYPES = frozenset(
    {
        "text",
        "email",
        "phone",
        "website",
        "picklist",
        "autonumber",
        "integer",
        "bigint",
        "double",
        "decimal",
        "currency",
        "percent",
        "boolean",
        "date",
        "datetime",
    }
)
"""Field types whose COQL value is the list API's value (a string, number, boolean or null).

Zoho documents COQL's shapes only for lookups, which come back as ``{"id"}`` without the name (§3.8); the
other shapes are UNCONFIRMED, so this is the strictest plausible reading: only scalar types whose JSON form
has no room to differ. Lookups and owners (names missing), multi-select picklists (list shape), multi-line
text (the list API may truncate rich text, §7.9), formulas (their return type varies), images, tags and every
other type stay in the records API's passes.
"""


def coql_cost(limit: int) -> int:
    """Credits of one COQL call by its LIMIT (docs/zoho-crm-api.md §3.8): 1 to 200 → 1, ≤1000 → 2, else 3."""
    return 1 if limit <= 200 else 2 if limit <= 1000 else 3


def same_shape_fields(metadata: Iterable[Mapping[str, Any]]) -> list[str]:
    """The api names among ``metadata`` (a module's fields) whose type a COQL pass may read."""
    return [
        str(meta["api_name"])
        for meta in metadata
        if meta.get("api_name") and str(meta.get("data_type") or "") in SAME_SHAPE_TYPES
    ]
