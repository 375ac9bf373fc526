"""Asset checks per stream: does the Postgres copy agree with Zoho, and is it fresh?

Four checks in two multi-checks (two steps, not four) per record stream: ``<key>_zoho_checks`` holds the two
that call Zoho and runs in the ``zoho_crm_api`` pool, as the syncs do; ``<key>_checks`` holds the two that
read only Postgres and Dagster's event log (full-refresh streams have only these):

- ``row_count_matches_zoho`` (record streams, ERROR): Zoho's count API against the table's live rows. Zoho
  refreshes its counts 1 to 10 minutes late (docs/zoho-crm-api.md §3.5), so the comparison tolerates exactly
  what that lag can hide: rows modified (or created) and rows marked deleted in the last ``lag_minutes``
  (default 10). It passes when ``live - recent_live <= zoho_count <= live + recent_deleted``, with ``live``
  counted over every row or over the rows the list API shows by default (not converted, not awaiting
  approval): whether Zoho's count includes those is not documented, so like is compared with like either way.
- ``unique_ids`` (ERROR, blocking): no id twice and no null id. A failure fails its step, so assets that
  depend on the stream do not run after it in the same run.
- ``open_partition_fresh`` (ERROR): the last sync of today's partition (full-refresh streams: the last sync)
  is at most the freshness interval (``ZOHO_DAGSTER_FRESHNESS_MINUTES``) plus a 5-minute allowance for the
  run itself old; just after midnight the age counts from midnight, since the new day had nothing to sync.
- ``columns_match_zoho`` (record streams, WARN): Zoho's field metadata against the table's columns: fields
  without a column yet, columns whose type no longer matches the field, columns of fields Zoho dropped; and
  the type changes earlier syncs migrated (:mod:`zoho_dagster.postgres.drift`): which column, old → new
  type, migrated in place or the old values kept under which name.

One more check stands on its own, because it needs neither Zoho nor the database: ``values_accepted`` (every
stream, WARN, :func:`build_values_checks`) reads the latest materialization's metadata from the Dagster
instance and warns when that sync rejected values (stored as NULL in their columns, kept in ``_raw``) or
replaced characters Postgres cannot store (:mod:`zoho_dagster.postgres.schema`). A bad value never fails a
run, so this warning is where it shows.

The checks read the tables the :class:`~zoho_dagster.postgres.io_manager.PostgresIOManager` writes, through
its database URL. Every question to the database is asked by :mod:`zoho_dagster.postgres.queries` (which maps
fields to columns with the writer's own rules); this module holds only the Dagster side.
"""

from collections.abc import Iterator, Sequence
from datetime import datetime, time, timedelta, timezone
from typing import Any

import dagster as dg
import sqlalchemy as sa

from zoho_dagster.automation import freshness_cron, freshness_minutes
from zoho_dagster.client import record_fields
from zoho_dagster.environment import automation_enabled
from zoho_dagster.failures import zoho_errors_as_failures
from zoho_dagster.partitions import anchor_date
from zoho_dagster.postgres import drift, queries
from zoho_dagster.postgres.database import resolve_database_url
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.replication import ReplicatedStream, replicated
from zoho_dagster.resource import IO_MANAGER_KEY, POOL, RESOURCE_KEY
from zoho_dagster.streams import StreamSpec
from zoho_dagster.translator import RUN_ALLOWANCE, DagsterZohoTranslator

ROW_COUNT = "row_count_matches_zoho"
UNIQUE_IDS = "unique_ids"
FRESHNESS = "open_partition_fresh"
COLUMNS = "columns_match_zoho"
VALUES = "values_accepted"
DEFAULT_LAG_MINUTES = 10


def _missing_table(
    check_name: str, target: ReplicatedStream, severity: dg.AssetCheckSeverity
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=False,
        severity=severity,
        description=f"{target.target} does not exist yet; materialize {target.spec.name} first.",
        metadata={"table": str(target.target)},
    )


def row_count_result(
    conn: sa.Connection,
    target: ReplicatedStream,
    zoho_count: int,
    now: datetime,
    lag: timedelta,
    history_start: datetime | None = None,
) -> dg.AssetCheckResult:
    """Compare Zoho's count with the table, tolerating the rows Zoho's late statistics may not reflect yet.

    ``history_start`` (the anchor) bounds both sides: ``zoho_count`` must then be Zoho's count of records
    modified since it, and only rows modified since it are counted, because older records are never synced.
    """
    columns = queries.table_columns(conn, target.target)
    if columns is None:
        return _missing_table(ROW_COUNT, target, dg.AssetCheckSeverity.ERROR)
    cursor = queries.cursor_column(columns, target.spec.cursor_field)
    every = queries.row_counts(conn, target.target, cursor, now - lag, history_start)
    hidden = {
        column: value
        for name, value in queries.HIDDEN_BY_DEFAULT
        if (column := queries.field_column(columns, name)) is not None
    }
    # Whether Zoho's count includes converted records and records awaiting approval is not documented
    # (docs/zoho-crm-api.md §3.5, UNCONFIRMED): the table's rows are counted both ways, and the count must
    # match one of them; the scope it matched is reported.
    shown = every
    if hidden:
        shown = queries.row_counts(conn, target.target, cursor, now - lag, history_start, hidden)
    scopes = [("every record", every), ("records the list API shows by default", shown)]
    matched = [
        (scope, counts)
        for scope, counts in scopes
        if counts.live - counts.recent_live <= zoho_count <= counts.live + counts.recent_deleted
    ]
    passed = bool(matched)
    # Failing, the report takes the scope the count misses by least.
    scope, counts = matched[0] if matched else min(scopes, key=lambda item: abs(zoho_count - item[1].live))
    live, recent_live, recent_deleted = counts.live, counts.recent_live, counts.recent_deleted
    low, high = live - recent_live, live + recent_deleted
    verdict = "within" if passed else "outside"
    hidden_rows = every.live - shown.live
    return dg.AssetCheckResult(
        check_name=ROW_COUNT,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"Zoho counts {zoho_count} {target.spec.module} records; {target.target} has {every.live} live "
            f"rows, {hidden_rows} of them converted or awaiting approval. Counting {scope} ({live} rows), "
            f"the count is {verdict} the range [{low}, {high}] that Zoho's {lag.seconds // 60}-minute "
            "statistics lag allows."
        ),
        metadata={
            "zoho_count": zoho_count,
            "table_live_rows": every.live,
            "table_rows_hidden_by_default": hidden_rows,
            "compared_scope": scope if passed else "none matched",
            "difference": zoho_count - live,
            "rows_modified_within_lag": recent_live,
            "rows_deleted_within_lag": recent_deleted,
            "lag_minutes": lag.seconds // 60,
            "table": str(target.target),
        },
    )


def unique_ids_result(conn: sa.Connection, target: ReplicatedStream) -> dg.AssetCheckResult:
    """No id appears twice and none is null (the merge relies on both)."""
    if queries.table_columns(conn, target.target) is None:
        return _missing_table(UNIQUE_IDS, target, dg.AssetCheckSeverity.ERROR)
    ids = queries.id_counts(conn, target.target)
    extra, nulls = ids.duplicate_rows, ids.nulls
    passed = extra == 0 and nulls == 0
    return dg.AssetCheckResult(
        check_name=UNIQUE_IDS,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{target.target}: every id is unique." if passed
            else f"{target.target}: {extra} duplicate and {nulls} null ids."
        ),
        metadata={
            "rows": ids.rows,
            "duplicate_rows": extra,
            "null_ids": nulls,
            "duplicate_ids_sample": ", ".join(ids.duplicates_sample),
        },
    )


def _last_sync(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> datetime | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    if not records:
        return None
    return datetime.fromtimestamp(records[0].timestamp, tz=timezone.utc)


def freshness_result(
    instance: dg.DagsterInstance,
    spec: StreamSpec,
    now: datetime,
    interval: timedelta,
    key: dg.AssetKey | None = None,
) -> dg.AssetCheckResult:
    """Whether today's partition (or the whole full-refresh table) was synced within the interval.

    ``key`` is the stream's asset key (default: the stream name, the default translator's key).
    """
    now = now.astimezone(timezone.utc)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    partition = midnight.strftime("%Y-%m-%d") if spec.incremental else None
    last = _last_sync(instance, key or dg.AssetKey(spec.name), partition)
    # A new day has had nothing to sync before midnight: its age counts from midnight at the earliest.
    reference = (max(last, midnight) if last else midnight) if partition else last
    allowed = interval + RUN_ALLOWANCE
    what = f"partition {partition}" if partition else "table"
    if reference is None:
        return dg.AssetCheckResult(
            check_name=FRESHNESS,
            passed=False,
            description=f"{spec.name} has never been synced; materialize it (or start the schedule).",
            metadata={"allowed_age_minutes": allowed.total_seconds() / 60},
        )
    age = now - reference
    passed = age <= allowed
    return dg.AssetCheckResult(
        check_name=FRESHNESS,
        passed=passed,
        description=(
            f"The {what} of {spec.name} is {age.total_seconds() / 60:.1f} minutes old "
            f"({'within' if passed else 'more than'} the {allowed.total_seconds() / 60:.0f} allowed)."
        ),
        metadata={
            "last_sync": last.isoformat() if last else "never",
            "age_minutes": round(age.total_seconds() / 60, 2),
            "allowed_age_minutes": allowed.total_seconds() / 60,
            "partition": partition or "(unpartitioned)",
        },
    )


def _metadata_value(metadata: dict[str, Any], key: str, default: Any) -> Any:
    value = metadata.get(key)
    return default if value is None else getattr(value, "value", value)


def values_result(instance: dg.DagsterInstance, key: dg.AssetKey, stream_name: str) -> dg.AssetCheckResult:
    """A WARN check: did the latest sync store every value as Zoho sent it (the writer's counts)?"""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1).records
    materialization = records[0].asset_materialization if records else None
    if materialization is None:
        return dg.AssetCheckResult(
            check_name=VALUES,
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{stream_name} has no sync to report on yet.",
        )
    metadata = dict(materialization.metadata)
    rejected = dict(_metadata_value(metadata, "rejected_values", {}))
    replaced = dict(_metadata_value(metadata, "replaced_characters", {}))
    rejected_total = int(_metadata_value(metadata, "rejected_values_total", 0))
    replaced_total = int(_metadata_value(metadata, "replaced_characters_total", 0))
    passed = rejected_total == 0 and replaced_total == 0
    return dg.AssetCheckResult(
        check_name=VALUES,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=_values_description(stream_name, rejected, replaced, rejected_total, replaced_total),
        metadata={
            "rejected_values": dg.MetadataValue.json(rejected),
            "rejected_values_total": rejected_total,
            "rejected_values_sample": dg.MetadataValue.json(
                _metadata_value(metadata, "rejected_values_sample", [])
            ),
            "replaced_characters": dg.MetadataValue.json(replaced),
            "replaced_characters_total": replaced_total,
            "unreadable_cursors": dg.MetadataValue.json(_metadata_value(metadata, "unreadable_cursors", [])),
            "run_id": records[0].run_id,
        },
    )


def _values_description(
    stream_name: str,
    rejected: dict[str, int],
    replaced: dict[str, int],
    rejected_total: int,
    replaced_total: int,
) -> str:
    if rejected_total == 0 and replaced_total == 0:
        return f"The last sync of {stream_name} stored every value as Zoho sent it."
    parts = []
    if rejected_total:
        counts = "; ".join(f"{name}: {count}" for name, count in sorted(rejected.items()))
        parts.append(
            f"rejected {rejected_total} values ({counts}), kept as NULL in their columns and as Zoho sent "
            "them in _raw"
        )
    if replaced_total:
        counts = "; ".join(f"{name}: {count}" for name, count in sorted(replaced.items()))
        parts.append(f"replaced {replaced_total} characters Postgres cannot store by U+FFFD ({counts})")
    return f"The last sync of {stream_name} " + " and ".join(parts) + "; samples are in the metadata."


def columns_result(
    conn: sa.Connection, target: ReplicatedStream, fields: Sequence[dict[str, Any]]
) -> dg.AssetCheckResult:
    """A WARN check listing how Zoho's fields and the table's columns differ."""
    columns = queries.table_columns(conn, target.target)
    if columns is None:
        return _missing_table(COLUMNS, target, dg.AssetCheckSeverity.WARN)
    differences = queries.column_differences(record_fields(fields), columns, conn.dialect)
    count = sum(len(items) for items in differences.values())
    summary = "; ".join(
        f"{kind.replace('_', ' ')}: {', '.join(items)}" for kind, items in differences.items() if items
    )
    description = (
        f"{target.target} matches Zoho's {len(fields)} fields"
        if count == 0
        else f"{target.target} differs from Zoho's fields ({summary}); the next sync adds new columns and "
        "migrates changed types (docs/design.md §3, type drift)"
    )
    migrations = drift.recent_migrations(conn, target.target)
    if migrations:
        description += "; type changes migrated by earlier syncs: " + "; ".join(
            migration.describe() for migration in migrations
        )
    return dg.AssetCheckResult(
        check_name=COLUMNS,
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=description + ".",
        metadata={
            **{kind: dg.MetadataValue.json(items) for kind, items in differences.items()},
            "differences": count,
            "zoho_fields": len(fields),
            "type_migrations": dg.MetadataValue.json([_migration_row(m) for m in migrations]),
        },
    )


def _migration_row(migration: drift.Migration) -> dict[str, Any]:
    """One type migration for the check's metadata: which column, old → new, and what became of the data."""
    return {
        "column": migration.column,
        "field": migration.api_name + (f".{migration.part}" if migration.part else ""),
        "old_type": migration.old_type,
        "new_type": migration.new_type,
        "migrated": "in place" if migration.kept_as is None else f"old column kept as {migration.kept_as}",
        "rejected_values": migration.rejected_values,
        "at": migration.migrated_at.isoformat() if migration.migrated_at else None,
    }


def check_names(spec: StreamSpec) -> list[str]:
    """The checks a stream gets: count and columns only where Zoho has a module to compare with."""
    names = [UNIQUE_IDS, FRESHNESS]
    if spec.module and spec.incremental:
        names = [ROW_COUNT, *names, COLUMNS]
    return names


_DESCRIPTIONS = {
    ROW_COUNT: "Zoho's count API vs live rows, tolerating Zoho's few minutes of statistics lag.",
    UNIQUE_IDS: "No duplicate and no null ids.",
    FRESHNESS: "Today's partition (or the table) synced within the freshness interval.",
    COLUMNS: "Zoho's field metadata vs the table's columns (new, changed, removed); a warning.",
}


def _history_start(context: dg.AssetCheckExecutionContext, key: dg.AssetKey) -> datetime:
    """Where the asset's synced history starts: its partitions' first day (the anchor date)."""
    asset_graph = context.op_execution_context.job_def.asset_layer.asset_graph
    partitions = asset_graph.get(key).partitions_def if asset_graph.has(key) else None
    if isinstance(partitions, dg.TimeWindowPartitionsDefinition):
        return partitions.start.astimezone(timezone.utc)
    return datetime.combine(anchor_date(), time.min, tzinfo=timezone.utc)


ZOHO_CHECKS = frozenset({ROW_COUNT, COLUMNS})
"""The checks that call Zoho: they run in the ``zoho_crm_api`` pool, like the syncs, so that checks and syncs
together never exceed the runs the pool allows to call Zoho at once."""


def build_stream_checks(
    target: ReplicatedStream,
    zoho_key: str = RESOURCE_KEY,
    io_manager_key: str = IO_MANAGER_KEY,
    interval_minutes: int | None = None,
    lag_minutes: int = DEFAULT_LAG_MINUTES,
    translator: DagsterZohoTranslator | None = None,
) -> list[dg.AssetChecksDefinition]:
    """The checks of ``target``'s stream, on the translator's asset key, in at most two steps.

    ``<key>_checks`` holds the checks that read only Postgres and Dagster's event log (``unique_ids``, a
    blocking check: when it fails the step fails, and assets downstream of the stream in the same run do not
    run; ``open_partition_fresh``); ``<key>_zoho_checks`` (record streams) holds those that call Zoho
    (``row_count_matches_zoho``, ``columns_match_zoho``) and runs in the ``zoho_crm_api`` pool.
    """
    spec = target.spec
    key = (translator or DagsterZohoTranslator()).get_asset_key(target)
    names = check_names(spec)
    interval = timedelta(minutes=interval_minutes if interval_minutes is not None else freshness_minutes())
    lag = timedelta(minutes=lag_minutes)

    def multi_check(
        suffix: str, check_names: list[str], pool: str | None, resource_keys: set[str]
    ) -> dg.AssetChecksDefinition:
        @dg.multi_asset_check(
            name=f"{key.to_python_identifier()}_{suffix}",
            specs=[
                dg.AssetCheckSpec(
                    name, asset=key, description=_DESCRIPTIONS[name], blocking=name == UNIQUE_IDS
                )
                for name in check_names
            ],
            can_subset=True,
            required_resource_keys=resource_keys,
            pool=pool,
        )
        def _checks(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
            selected = {check_key.name for check_key in context.selected_asset_check_keys}
            now = datetime.now(timezone.utc)
            database_url = getattr(getattr(context.resources, io_manager_key), "database_url", None)
            engine = make_engine(resolve_database_url(database_url, context.log.info))
            needs_zoho = selected & ZOHO_CHECKS
            with zoho_errors_as_failures(f"Checking {target.target} against Zoho"), engine.connect() as conn:
                zoho = getattr(context.resources, zoho_key) if needs_zoho else None
                client = zoho.get_client(announce=context.log.info) if zoho is not None else None
                if ROW_COUNT in selected:
                    assert client is not None and spec.module is not None
                    history_start = _history_start(context, key)
                    zoho_count = client.count(spec.module, modified_since=history_start)
                    yield row_count_result(conn, target, zoho_count, now, lag, history_start)
                if UNIQUE_IDS in selected:
                    yield unique_ids_result(conn, target)
                if FRESHNESS in selected:
                    yield freshness_result(context.instance, spec, now, interval, key)
                if COLUMNS in selected:
                    assert client is not None and spec.module is not None
                    yield columns_result(conn, target, client.list_fields(spec.module))

        return _checks

    local = [name for name in names if name not in ZOHO_CHECKS]
    remote = [name for name in names if name in ZOHO_CHECKS]
    definitions = [multi_check("checks", local, None, {io_manager_key})]
    if remote:
        definitions.append(multi_check("zoho_checks", remote, POOL, {zoho_key, io_manager_key}))
    return definitions


def build_checks(
    targets: Sequence[ReplicatedStream],
    zoho_key: str = RESOURCE_KEY,
    io_manager_key: str = IO_MANAGER_KEY,
    interval_minutes: int | None = None,
    lag_minutes: int = DEFAULT_LAG_MINUTES,
    translator: DagsterZohoTranslator | None = None,
) -> list[dg.AssetChecksDefinition]:
    """Checks for every replicated stream, e.g. the result of ``load_replication()``."""
    return [
        check
        for target in targets
        for check in build_stream_checks(
            target, zoho_key, io_manager_key, interval_minutes, lag_minutes, translator
        )
    ]


def build_values_check(
    target: ReplicatedStream, translator: DagsterZohoTranslator | None = None
) -> dg.AssetChecksDefinition:
    """The ``values_accepted`` WARN check of ``target``'s stream: it reads only Dagster's instance."""
    key = (translator or DagsterZohoTranslator()).get_asset_key(target)
    name = target.spec.name

    @dg.asset_check(
        asset=key,
        name=VALUES,
        description="Values the last sync rejected (NULL in their columns, kept in _raw) or repaired.",
    )
    def _values(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return values_result(context.instance, key, name)

    return _values


def build_values_checks(
    targets: Sequence[ReplicatedStream], translator: DagsterZohoTranslator | None = None
) -> list[dg.AssetChecksDefinition]:
    """The ``values_accepted`` check of every replicated stream (beside :func:`build_checks`)."""
    return [build_values_check(target, translator) for target in targets]


FRESHNESS_CHECKS_JOB = "zoho_crm_freshness_checks_job"
FRESHNESS_CHECKS_SCHEDULE = "zoho_crm_freshness_checks_schedule"


def build_freshness_check_schedule(
    specs: Sequence[StreamSpec | ReplicatedStream],
    minutes: int | None = None,
    enabled: bool | None = None,
    translator: DagsterZohoTranslator | None = None,
) -> dg.ScheduleDefinition:
    """Runs the freshness checks on their own, on the freshness schedule's cadence.

    Run with a materialization the freshness check passes by construction; run alone it is what notices a
    sync that stopped (a failed run, a stopped daemon). It reads only Dagster's event log: no Zoho credits.
    Started and stopped with the sync schedule (``ZOHO_DAGSTER_AUTOMATION``).
    """
    interval = minutes if minutes is not None else freshness_minutes()
    running = automation_enabled() if enabled is None else enabled
    translator = translator or DagsterZohoTranslator()
    keys = [dg.AssetCheckKey(translator.get_asset_key(replicated(spec)), FRESHNESS) for spec in specs]
    job = dg.define_asset_job(
        FRESHNESS_CHECKS_JOB,
        selection=dg.AssetSelection.checks(*keys),
        description="Only the freshness checks of every stream: is each table's open partition recent?",
        executor_def=dg.in_process_executor,
    )
    return dg.ScheduleDefinition(
        name=FRESHNESS_CHECKS_SCHEDULE,
        job=job,
        cron_schedule=freshness_cron(interval),
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
        description=f"Every {interval} min (UTC): the freshness checks alone, so a stalled sync shows up.",
    )
