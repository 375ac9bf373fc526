"""The stream catalog: which Zoho endpoint feeds which asset and table, and how it is synced.

One place names every stream so that assets, the replication file, checks and the CLI agree. The twelve record
modules are incremental on ``Modified_Time``; ``users`` and ``modules`` are small reference data that Zoho
cannot filter by modification time, so they are refreshed whole.
"""

from dataclasses import dataclass
from typing import Literal

SyncMode = Literal["incremental", "full-refresh"]


@dataclass(frozen=True)
class StreamSpec:
    """One stream of the catalog.

    ``name`` is the asset key and the table name; ``module`` is the Zoho module API name used in URLs
    (``None`` for the two metadata streams, which have endpoints of their own).
    """

    name: str
    module: str | None
    mode: SyncMode
    description: str
    cursor_field: str | None = "Modified_Time"

    @property
    def incremental(self) -> bool:
        return self.mode == "incremental"


def _records(name: str, module: str, description: str) -> StreamSpec:
    return StreamSpec(name=name, module=module, mode="incremental", description=description)


CATALOG: tuple[StreamSpec, ...] = (
    _records("leads", "Leads", "CRM leads"),
    _records("contacts", "Contacts", "CRM contacts"),
    _records("accounts", "Accounts", "CRM accounts (companies)"),
    _records("deals", "Deals", "CRM deals (opportunities)"),
    _records("tasks", "Tasks", "CRM tasks"),
    _records("meetings", "Events", "CRM meetings (Zoho's module API name is Events)"),
    _records("calls", "Calls", "CRM call logs"),
    _records("campaigns", "Campaigns", "CRM campaigns"),
    _records("products", "Products", "Product catalog"),
    _records("quotes", "Quotes", "Quotes and proposals"),
    _records("vendors", "Vendors", "Vendor records"),
    _records("notes", "Notes", "Notes attached to records (Zoho lists them to admin users only)"),
    StreamSpec("users", None, "full-refresh", "Every CRM user of the organisation", cursor_field=None),
    StreamSpec("modules", None, "full-refresh", "Metadata about every CRM module", cursor_field=None),
)

STREAMS_BY_NAME: dict[str, StreamSpec] = {spec.name: spec for spec in CATALOG}


def stream(name: str) -> StreamSpec:
    """The catalog entry for ``name``, with a sentence listing the valid names when it is unknown."""
    try:
        return STREAMS_BY_NAME[name]
    except KeyError:
        known = ", ".join(STREAMS_BY_NAME)
        raise KeyError(f"Unknown Zoho CRM stream {name!r}; use one of: {known}.") from None
