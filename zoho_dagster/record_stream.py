"""What an asset hands to the IO manager: field metadata plus a lazy iterator of pages.

Assets never build a list of a whole module: a 200,000-record window would not fit the memory budget. The IO
manager pulls pages from ``pages`` and copies each into a staging table as it arrives, so memory stays at
about one page per field pass, whatever the module's size.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from zoho_dagster.client.stats import CallStats
from zoho_dagster.streams import SyncMode


@dataclass
class RecordStream:
    """The output of a stream asset for one run.

    ``fields`` is Zoho's field metadata (``/settings/fields``) for record modules, or the fixed column list of
    the metadata streams; it decides the table's columns. ``pages`` yields lists of records exactly as Zoho
    sent them. ``deletions`` (record modules only) yields pages of ``/deleted`` entries to mark as deleted.
    ``window`` is the ``[start, end)`` of ``Modified_Time`` in UTC for incremental runs, ``None`` for full
    refreshes. ``stats`` is filled while the pages are consumed, so read it afterwards.
    """

    stream: str
    module: str | None
    mode: SyncMode
    fields: list[dict]
    pages: Iterable[list[dict]]
    window: tuple[datetime, datetime] | None = None
    deletions: Callable[[], Iterator[list[dict]]] | None = None
    stats: CallStats = field(default_factory=CallStats)
