"""What an asset hands to the IO manager: field metadata plus a lazy iterator of pages.

Assets never build a list of a whole module: a 200,000-record window would not fit the memory budget. The IO
manager pulls pages from ``pages`` and copies each into a staging table as it arrives, so memory stays at
about one page per field pass, whatever the module's size.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from zoho_dagster.client.children import ChildField
from zoho_dagster.client.stats import CallStats
from zoho_dagster.streams import SyncMode


@dataclass
class ChildRows:
    """How the child tables of an incremental stream are filled (subforms, lookup links, stage history).

    The writer asks ``rows(child, parent_ids, hidden)`` for the parents it staged, a few thousand ids at a
    time (``hidden``: those of them that are converted or awaiting approval, whose rows need another route),
    after
    the parents' pages are in: pages of child rows, each with ``_parent_id``. ``suffixes`` maps a child's
    field to its table's suffix (``zoho_crm.<stream>__<suffix>``, snake_case of the field as streams are
    named); ``stats`` counts what the child rows cost.
    """

    fields: list[ChildField]
    rows: Callable[[ChildField, Sequence[str], Sequence[str]], Iterable[list[dict]]]
    suffixes: dict[str, str] = field(default_factory=dict)
    stats: CallStats = field(default_factory=CallStats)


@dataclass
class RecordStream:
    """The output of a stream asset for one run.

    ``fields`` is Zoho's field metadata (``/settings/fields``) for record modules, or the fixed column list of
    the metadata streams; it decides the table's columns. ``pages`` yields lists of records exactly as Zoho
    sent them. ``deletions`` (record modules only) yields pages of ``/deleted`` entries to mark as deleted.
    ``window`` is the ``[start, end)`` of ``Modified_Time`` in UTC for incremental runs, ``None`` for full
    refreshes. ``stats`` is filled while the pages are consumed, so read it afterwards. ``children``
    (incremental record streams only) describes the stream's child tables.
    """

    stream: str
    module: str | None
    mode: SyncMode
    fields: list[dict]
    pages: Iterable[list[dict]]
    window: tuple[datetime, datetime] | None = None
    deletions: Callable[[], Iterator[list[dict]]] | None = None
    stats: CallStats = field(default_factory=CallStats)
    children: ChildRows | None = None
