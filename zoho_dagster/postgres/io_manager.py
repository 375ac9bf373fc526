"""The Dagster face of the Postgres writer: one asset output = one transaction on its table.

The asset returns a lazy :class:`~zoho_dagster.record_stream.RecordStream` (with its partition window, worked
out once by the asset); this IO manager hands it to :func:`~zoho_dagster.postgres.writer.write_stream` and
reports what happened as materialization metadata. The target table comes from the asset's definition
metadata (``dagster/table_name``, ``schema.table``) so that custom modules and renamed targets need no code
here; without it the table is ``zoho_crm.<asset name>``. Zoho errors raised while the pages stream in become
``dg.Failure``s (:mod:`zoho_dagster.failures`); the transaction has rolled back by then.

Bad values never fail the run (:mod:`zoho_dagster.postgres.schema`); what the writer rejected or replaced is
reported here so it cannot pass unnoticed: per-field counts and a few samples in the materialization's
metadata (``rejected_values``, ``rejected_values_total``, ``rejected_values_sample``, ``replaced_characters``,
``replaced_characters_total``, ``replaced_characters_sample``, ``unreadable_cursors``), which the
``values_accepted`` WARN check reads, and warnings in the run's log: one summary line, and one sentence per
record whose ``Modified_Time`` could not be read.

Whatever the outcome, the credits a run spent are appended to ``zoho_dagster.credit_ledger`` when its write
ends (:mod:`zoho_dagster.postgres.credit_ledger`), which the daily credit budget reads.
"""

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import dagster as dg

# Not exported by `dagster` 1.13; Dagster's own libraries import it from here (docs/dagster.md §3).
from dagster._core.definitions.metadata import TableMetadataSet
from pydantic import Field

from zoho_dagster.collector import sync_collection
from zoho_dagster.failures import zoho_errors_as_failures
from zoho_dagster.partitions import utc_window
from zoho_dagster.postgres import credit_ledger
from zoho_dagster.postgres import schema as sc
from zoho_dagster.postgres.database import resolve_database_url
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.metadata_tables import ModulesStream, write_modules_and_metadata
from zoho_dagster.postgres.tables import DEFAULT_SCHEMA, TableName
from zoho_dagster.postgres.writer import WriteResult, read_rows, write_stream
from zoho_dagster.record_stream import RecordStream
from zoho_dagster.translator import CURSOR_FIELD_KEY, TABLE_NAME_KEY

TARGET_TABLE_KEY = TABLE_NAME_KEY


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name}: {count}" for name, count in sorted(counts.items()))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def value_summary(target: TableName, report: sc.ValueReport) -> str | None:
    """One sentence on what a run rejected or replaced, or ``None`` when it stored every value as sent."""
    parts = []
    if report.rejected_total:
        parts.append(
            f"{_plural(report.rejected_total, 'value')} rejected ({_counts(report.rejected)}), stored as "
            "NULL in their columns and as Zoho sent them in _raw"
        )
    if report.replaced_total:
        parts.append(
            f"{_plural(report.replaced_total, 'character')} that Postgres cannot store (NUL, lone "
            f"surrogates) replaced by U+FFFD ({_counts(report.replaced)})"
        )
    return f"{target}: " + "; ".join(parts) + "." if parts else None


def value_metadata(result: WriteResult) -> dict[str, Any]:
    """The materialization metadata the ``values_accepted`` check reads (always present, zero when clean)."""
    report = result.values
    return {
        "rejected_values": dg.MetadataValue.json(dict(sorted(report.rejected.items()))),
        "rejected_values_total": report.rejected_total,
        "rejected_values_sample": dg.MetadataValue.json(report.samples),
        "replaced_characters": dg.MetadataValue.json(dict(sorted(report.replaced.items()))),
        "replaced_characters_total": report.replaced_total,
        "replaced_characters_sample": dg.MetadataValue.json(report.replaced_samples),
        "unreadable_cursors": dg.MetadataValue.json(result.notes),
    }


def child_metadata(stream: RecordStream, result: WriteResult) -> dict[str, Any]:
    """Rows per child table and what the child rows cost (none for a stream without child tables)."""
    children = stream.children if isinstance(stream, RecordStream) else None
    if children is None or not result.child_rows:
        return {}
    return {
        "child_tables": dg.MetadataValue.json(
            {
                table: {"rows": rows, "received": result.child_received.get(table, 0)}
                for table, rows in sorted(result.child_rows.items())
            }
        ),
        "child_rows_received": sum(result.child_received.values()),
        "child_api_calls": children.stats.calls,
        "child_api_credits": children.stats.credits,
    }


def _target(metadata: Mapping[str, Any] | None, asset_key: dg.AssetKey) -> tuple[TableName, str | None]:
    metadata = metadata or {}
    raw_table = metadata.get(TARGET_TABLE_KEY)
    table = getattr(raw_table, "value", raw_table) or f"{DEFAULT_SCHEMA}.{asset_key.path[-1]}"
    raw_cursor = metadata.get(CURSOR_FIELD_KEY, "Modified_Time")
    cursor = getattr(raw_cursor, "value", raw_cursor)
    return TableName.parse(str(table)), (str(cursor) if cursor else None)


def _credits_recorded(
    manager: "PostgresIOManager", context: dg.OutputContext, obj: Any
) -> AbstractContextManager[None]:
    """Append the run's credits to the ledger when the write ends, failed or not (credit_ledger.py)."""
    if not isinstance(obj, RecordStream):
        return nullcontext()
    return credit_ledger.recorded(
        lambda: manager._engine(), context.run_id, obj.stream, lambda: obj.stats.credits
    )


class PostgresIOManager(dg.ConfigurableIOManager):
    """Upserts each run's Zoho records into ``zoho_crm.<stream>`` (newest ``Modified_Time`` wins).

    One transaction per run: table DDL, COPY into a staging table, merge, deletion marks. Full-refresh streams
    are loaded into a new table swapped in at commit. Reading an asset returns its rows as dicts (those of the
    requested partitions for partitioned assets).
    """

    database_url: str | None = Field(
        default=None,
        description="Postgres URL for the synced tables; unset: $ZOHO_DAGSTER_DATABASE_URL, else the "
        "embedded "
        "Postgres.",
    )

    def _engine(self, announce: Callable[[str], object] | None = None) -> Any:
        return make_engine(resolve_database_url(self.database_url, announce))

    def handle_output(self, context: dg.OutputContext, obj: RecordStream) -> None:
        target, cursor = _target(context.definition_metadata, context.asset_key)
        window = obj.window if isinstance(obj, RecordStream) else None
        started = time.monotonic()
        with (
            zoho_errors_as_failures(f"Syncing into {target}"),
            _credits_recorded(self, context, obj),
            sync_collection(),
        ):
            # The modules stream also refreshes the metadata tables, in its transaction.
            write = write_modules_and_metadata if isinstance(obj, ModulesStream) else write_stream
            result = write(self._engine(context.log.info), obj, target, cursor_field=cursor, window=window)
        context.log.info(
            f"{target}: {result.received} records received, {result.inserted} inserted, "
            f"{result.updated} updated, "
            f"{result.deletions_marked} deletions marked in {time.monotonic() - started:.1f}s "
            f"({obj.stats.calls} API calls)"
        )
        for note in result.notes:
            context.log.warning(note)
        summary = value_summary(target, result.values)
        if summary:
            context.log.warning(summary)
        # dagster/table_name, dagster/row_count, dagster/column_schema (and dagster/partition_row_count for a
        # partitioned sync): Dagster's table keys, written by its own TableMetadataSet.
        table_metadata = TableMetadataSet(
            table_name=str(result.table),
            row_count=result.row_count,
            column_schema=dg.TableSchema(
                columns=[
                    dg.TableColumn(name=name, type=type_, description=description or None)
                    for name, type_, description in result.columns
                ]
            ),
            partition_row_count=result.partition_row_count,
        )
        metadata: dict[str, Any] = {
            **table_metadata,
            "records_received": result.received,
            "rows_inserted": result.inserted,
            "rows_updated": result.updated,
            "deletions_marked": result.deletions_marked,
            "api_calls": obj.stats.calls,
            "api_credits": obj.stats.credits,
            **value_metadata(result),
        }
        if isinstance(obj, ModulesStream) and obj.written:
            metadata["metadata_tables_rows"] = dg.MetadataValue.json(obj.written)
        metadata.update(child_metadata(obj, result))
        if window is not None:
            metadata["window_start"] = window[0].isoformat()
            metadata["window_end"] = window[1].isoformat()
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> list[dict[str, Any]]:
        upstream = context.upstream_output
        definition_metadata = upstream.definition_metadata if upstream is not None else None
        target, cursor = _target(definition_metadata, context.asset_key)
        windows = [utc_window(context.asset_partitions_time_window)] if context.has_asset_partitions else []
        return read_rows(self._engine(context.log.info), target, cursor_field=cursor, windows=windows)
