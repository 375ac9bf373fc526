"""Applying a stream's pending notifications: read the changed records again, write them, mark deletions.

A notification says only which ids changed (docs/zoho-crm-api.md §3.12), so the records are read again, whole,
with the client's own completion step: ``ids=`` calls of 100 ids, one per field pass, every record Zoho holds
(``converted=both&approved=both``), passes that disagree on ``Modified_Time`` read again
(:class:`~zoho_dagster.client.records.WindowReader`). The writer then does what it does for a window
(:func:`~zoho_dagster.postgres.writer.write_stream`): newest ``Modified_Time`` wins, child tables are
replaced for the staged parents, and the deleted ids are marked deleted at the notification's
``server_time`` (a tombstone for an id never seen). The notifications applied are marked consumed in that
same transaction, so either the records and the marks commit together or neither does.

Why this is exact whatever the notifications' order or number: what is written is Zoho's current version of
each record, never a notification's content; a duplicate reads the same record again and newest-wins keeps
one version; an edit notified late reads the record's latest version (or nothing, once it is deleted, so a
deletion is never undone); a deletion marks only rows not modified after it.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

# The assets' own way to read a stream's child tables and meter its calls: the notification sync writes the
# same tables the same way.
from zoho_dagster.assets import StreamMeter, child_rows_of
from zoho_dagster.client import ZohoClient, record_fields
from zoho_dagster.client.client import module_scope
from zoho_dagster.client.http import Need
from zoho_dagster.client.records import MAX_IDS_PER_CALL, WindowReader
from zoho_dagster.client.visibility import is_system_key
from zoho_dagster.notifications import store
from zoho_dagster.postgres import credit_ledger
from zoho_dagster.postgres.writer import write_stream
from zoho_dagster.record_stream import RecordStream
from zoho_dagster.replication import ReplicatedStream


@dataclass
class Applied:
    """What one stream's notifications did; becomes metadata."""

    stream: str
    notifications: int = 0
    ids_notified: int = 0
    changed_ids: int = 0
    deleted_ids: int = 0
    records_received: int = 0
    inserted: int = 0
    updated: int = 0
    deletions_marked: int = 0
    consumed: int = 0
    api_calls: int = 0
    api_credits: int = 0


def read_by_ids(
    client: ZohoClient,
    module: str,
    fields: Sequence[str],
    ids: Sequence[str],
    full_text_fields: Sequence[str] = (),
) -> Iterator[list]:
    """Pages of the records ``ids`` (at most 100 a page) with every field of ``fields``; ids Zoho no longer
    holds (deleted since) are left out. Records API passes only: ``ids=`` is a Get Records parameter.
    ``full_text_fields``: rich-text fields, read whole where the list API cut them (client/full_text.py)."""
    need = Need(module_scope(module), f"the {module} records")
    now = datetime.now(timezone.utc)
    reader = WindowReader(client.http, module, fields, now, now, need, full_text_fields=full_text_fields)
    for offset in range(0, len(ids), MAX_IDS_PER_CALL):
        # WindowReader's completion step: ids= for each pass, re-read until the passes agree (records.py).
        page = reader.read_ids(ids[offset : offset + MAX_IDS_PER_CALL])
        if page:
            yield page


def apply_stream(
    client: ZohoClient, engine: sa.Engine, stream: ReplicatedStream, run_id: str, limit: int = store.MAX_BATCH
) -> Applied:
    """Apply ``stream``'s pending notifications (at most ``limit``) in one transaction (module docstring)."""
    spec = stream.spec
    assert spec.module is not None
    module = spec.module
    result = Applied(spec.name)
    batch = store.take_batch(engine, module, limit)
    if not batch.rows:
        return result
    result.notifications, result.ids_notified = len(batch.rows), batch.received
    result.changed_ids, result.deleted_ids = len(batch.changed), len(batch.deleted)
    record_stream = RecordStream(stream=spec.name, module=module, mode="incremental", fields=[], pages=[])
    meter = StreamMeter(client.stats, record_stream.stats)

    def spent() -> int:
        meter.update()
        return record_stream.stats.credits

    with credit_ledger.recorded(lambda: engine, run_id, spec.name, spent):
        metadata = client.list_fields(module)
        record_stream.fields = record_fields(metadata)
        names = [
            str(f["api_name"])
            for f in record_stream.fields
            if f.get("api_name") not in (None, "id") and not is_system_key(str(f["api_name"]))
        ]
        record_stream.pages = meter.wrap(
            read_by_ids(client, module, names, batch.changed, client.whole_text_fields(metadata, names))
        )
        deletions: list[dict[str, Any]] = [
            {"id": record_id, "deleted_time": when.isoformat()} for record_id, when in batch.deleted.items()
        ]
        record_stream.deletions = lambda: iter([deletions] if deletions else [])
        record_stream.children = child_rows_of(client, module, metadata, meter)

        def consume(conn: sa.Connection) -> None:
            result.consumed = store.mark_consumed(conn, batch.rows, run_id)

        written = write_stream(
            engine,
            record_stream,
            stream.target,
            cursor_field=spec.cursor_field,
            deletions=record_stream.deletions,
            before_commit=consume,
        )
    meter.update()
    result.records_received = written.received
    result.inserted, result.updated = written.inserted, written.updated
    result.deletions_marked = written.deletions_marked
    result.api_calls, result.api_credits = record_stream.stats.calls, record_stream.stats.credits
    return result
