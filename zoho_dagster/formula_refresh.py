"""Formula and rollup fields kept fresh: the ``zoho_crm_formula_refresh`` job and its daily schedule.

Why a job of its own: Zoho recomputes formula and rollup fields without bumping ``Modified_Time``
(docs/zoho-crm-api.md §7.5), so the incremental sync, which reads by ``Modified_Time``, never sees their new
values. Once a day (by default) this job re-reads only those fields (``data_type`` ``formula``,
``rollup_summary`` and ``autonumber``) for every record stream of the definitions that has some, and writes
just those columns of the rows that exist (:mod:`zoho_dagster.postgres.formula_update`).

Cost: one ``/settings/fields`` call per stream, then one pass of the stored window with only these fields
(plus ``Modified_Time``), 200 records a call, through the client's window reader (page-token caps and time
slices handled, docs/design.md §3): about ``records ÷ 200`` credits per stream when a module has at most 49
such fields, one more pass per further 49 (docs/zoho-crm-api.md §6.1: 1 credit a call). Every stream is its
own transaction, so a failure keeps the streams already refreshed.

The schedule starts STOPPED, as the others do (docs/dagster.md §3), and runs when ``ZOHO_DAGSTER_AUTOMATION``
is on, daily at 03:00 UTC unless built with another cron.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import dagster as dg
from pydantic import Field

from zoho_dagster.client import listable_fields
from zoho_dagster.environment import automation_enabled
from zoho_dagster.failures import zoho_errors_as_failures
from zoho_dagster.postgres.formula_update import refreshed_fields, update_formula_columns
from zoho_dagster.replication import ReplicatedStream, replicated
from zoho_dagster.resource import IO_MANAGER_KEY, POOL, RESOURCE_KEY, ZohoCRMResource
from zoho_dagster.stream_ops import chosen_streams, observe_stream, tables_engine
from zoho_dagster.streams import StreamSpec
from zoho_dagster.translator import DagsterZohoTranslator

JOB_NAME = "zoho_crm_formula_refresh"
SCHEDULE_NAME = "zoho_crm_formula_refresh_schedule"
DEFAULT_CRON = "0 3 * * *"
"""Daily at 03:00 UTC: after the day's closing sync, before a working day's reports."""


class FormulaRefreshConfig(dg.Config):
    """Which streams one run refreshes."""

    streams: list[str] = Field(
        default_factory=list,
        description="Stream names to refresh; empty: every record stream of the definitions.",
    )


def _record_streams(specs: Sequence[StreamSpec | ReplicatedStream]) -> list[ReplicatedStream]:
    streams = [replicated(spec) for spec in specs]
    return [stream for stream in streams if stream.spec.incremental and stream.spec.module]


def build_formula_refresh(
    specs: Sequence[StreamSpec | ReplicatedStream],
    translator: DagsterZohoTranslator | None = None,
    cron: str = DEFAULT_CRON,
    enabled: bool | None = None,
) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """The formula refresh job over the record streams of ``specs``, and its schedule."""
    streams = _record_streams(specs)
    translator = translator or DagsterZohoTranslator()
    keys = {stream.spec.name: translator.get_asset_key(stream) for stream in streams}

    # The output is Nothing: its totals are metadata, and the IO manager (the synced tables') stores none.
    @dg.op(
        name="refresh_formula_fields",
        pool=POOL,
        required_resource_keys={RESOURCE_KEY, IO_MANAGER_KEY},
        out=dg.Out(dg.Nothing),
    )
    def refresh_formula_fields(context: dg.OpExecutionContext, config: FormulaRefreshConfig) -> None:
        """Per stream: read its formula/rollup/auto-number fields, update their columns (module docstring)."""
        chosen = chosen_streams(streams, config.streams, "the formula refresh's config")
        zoho_crm: ZohoCRMResource = getattr(context.resources, RESOURCE_KEY)
        client = zoho_crm.get_client(announce=context.log.info)
        engine = tables_engine(getattr(context.resources, IO_MANAGER_KEY), context.log.info)
        totals = {"rows_updated": 0, "records_received": 0, "api_calls": 0, "api_credits": 0}
        for stream in chosen:
            module = str(stream.spec.module)
            calls, credits = client.stats.calls, client.stats.credits
            with zoho_errors_as_failures(f"Refreshing the formula fields of {stream.target}"):
                fields = refreshed_fields(listable_fields(client.list_fields(module)))

                def read(start: datetime, end: datetime, names: list[str], module: str = module) -> Any:
                    return client.iter_records(module, start, end, names)

                result = update_formula_columns(engine, stream.target, fields, read) if fields else None
            metadata: dict[str, Any] = {
                "rows_updated": result.updated if result else 0,
                "records_received": result.received if result else 0,
                "fields": dg.MetadataValue.json(result.fields if result else []),
                "fields_without_column": dg.MetadataValue.json(result.skipped if result else []),
                "rejected_values_total": result.values.rejected_total if result else 0,
                "api_calls": client.stats.calls - calls,
                "api_credits": client.stats.credits - credits,
            }
            context.log.info(
                f"{stream.target}: {metadata['rows_updated']} rows updated from "
                f"{metadata['records_received']} records ({', '.join(fields) or 'no formula fields'}), "
                f"{metadata['api_calls']} calls, {metadata['api_credits']} credits"
            )
            observe_stream(context, keys[stream.spec.name], "zoho_dagster/formula_refresh", metadata, totals)
        context.add_output_metadata(totals)

    # The package's own job runs in the run's process (builder.py says why); a project merging these
    # definitions keeps its own executor for everything else.
    @dg.job(
        name=JOB_NAME,
        executor_def=dg.in_process_executor,
        description=(
            "Re-reads the formula, rollup-summary and auto-number fields of every record stream and updates "
            "just those columns of the stored rows (newest Modified_Time wins)."
        ),
    )
    def zoho_crm_formula_refresh() -> None:
        refresh_formula_fields()

    running = automation_enabled() if enabled is None else enabled
    schedule = dg.ScheduleDefinition(
        name=SCHEDULE_NAME,
        cron_schedule=cron,
        execution_timezone="UTC",
        job=zoho_crm_formula_refresh,
        default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
        description="Daily (UTC): refreshes formula and rollup fields, whose changes Zoho does not date.",
    )
    return zoho_crm_formula_refresh, schedule


