"""The stream catalog: which Zoho endpoint feeds which asset and table, and how it is synced.

One place names every stream so that assets, the replication file, checks and the CLI agree. The twelve record
modules are incremental on ``Modified_Time``; ``users`` and ``modules`` are small reference data that Zoho
cannot filter by modification time, so they are refreshed whole.
"""

import difflib
from collections.abc import Iterable, Sequence
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

STANDARD_MODULES: tuple[StreamSpec, ...] = (
    _records("invoices", "Invoices", "Invoices (inventory; line items in invoices__invoiced_items)"),
    _records(
        "sales_orders", "Sales_Orders", "Sales orders (inventory; line items in sales_orders__ordered_items)"
    ),
    _records(
        "purchase_orders",
        "Purchase_Orders",
        "Purchase orders (inventory; line items in purchase_orders__purchased_items)",
    ),
    _records("price_books", "Price_Books", "Price books (inventory)"),
    _records("cases", "Cases", "Support cases"),
    _records("solutions", "Solutions", "Solutions (knowledge base answers to cases)"),
    _records("appointments_s", "Appointments__s", "Appointments (Zoho's module API name is Appointments__s)"),
    _records("services_s", "Services__s", "Services (Zoho's module API name is Services__s)"),
)
"""Zoho's other standard record modules (docs/zoho-crm-api.md §3.1): streams by name, outside the default set.

Their names are the snake_case of their API names, as for custom modules. They are not in :data:`CATALOG`
because an org may not have them (the inventory modules need a paid edition): a default that names a module
the org lacks would fail every sync. Name them in the replication file (or ``--streams``), or let ``'*'`` take
the modules the discovery file lists.
"""

STREAMS_BY_NAME: dict[str, StreamSpec] = {spec.name: spec for spec in CATALOG}
KNOWN_STREAMS: dict[str, StreamSpec] = {spec.name: spec for spec in (*CATALOG, *STANDARD_MODULES)}
"""Every stream known without asking Zoho: the default set and the other standard modules."""


class UnknownStreamError(KeyError, ValueError):
    """A stream name that is not in the catalog; ``str()`` is the sentence (a bare KeyError would quote it).

    A ``KeyError`` for the callers of :func:`stream` that look names up, a ``ValueError`` for those that
    validate input (a command line, a file).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def closest_stream(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name`` (difflib), or ``None`` when nothing is close: the "did you mean"."""
    close = difflib.get_close_matches(name.lower(), list(known), n=1)
    return close[0] if close else None


def unknown_streams_sentence(unknown: Sequence[str], known: Sequence[str], where: str = "") -> str:
    """One sentence refusing ``unknown`` names (each with its closest known name) and listing ``known``."""
    listed = []
    for name in unknown:
        close = closest_stream(name, known)
        listed.append(f"'{name}' (did you mean '{close}'?)" if close else f"'{name}'")
    names = listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} and {listed[-1]}"
    noun = "stream" if len(listed) == 1 else "streams"
    place = f" in {where}" if where else ""
    return f"Unknown Zoho CRM {noun} {names}{place}; use only: {', '.join(known)}."


def select_streams(
    names: Sequence[str] | None, where: str, catalog: Sequence[StreamSpec] = CATALOG
) -> list[StreamSpec]:
    """The specs of ``names`` in catalog order (all of them when ``names`` is empty or ``None``).

    Any unknown name is refused with :func:`unknown_streams_sentence`: a misspelt name must never shrink a
    sync silently.
    """
    known = [spec.name for spec in catalog]
    unknown = [name for name in names or () if name not in known]
    if unknown:
        raise UnknownStreamError(unknown_streams_sentence(unknown, known, where))
    return [spec for spec in catalog if not names or spec.name in names]


def stream(name: str) -> StreamSpec:
    """The known stream ``name`` (default set or other standard module), with a sentence naming the closest
    valid name when it is unknown."""
    try:
        return KNOWN_STREAMS[name]
    except KeyError:
        raise UnknownStreamError(unknown_streams_sentence([name], list(KNOWN_STREAMS))) from None
