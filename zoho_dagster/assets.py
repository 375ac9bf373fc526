"""One Dagster asset per stream, built by a factory over :class:`~zoho_dagster.streams.StreamSpec`.

Why a factory: the catalog, custom modules found by discovery and user-renamed targets all become assets the
same way. Each asset only describes what to fetch and returns a lazy ``RecordStream``; the Postgres IO manager
pulls the pages inside its transaction, so nothing fetched is held in memory and a failure anywhere writes
nothing.

Incremental streams are daily-partitioned on ``Modified_Time`` with a single-run backfill policy: a backfill
of many days is one run and one pass over the API for ``[first day, last day + 1)``.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timezone

import dagster as dg

from zoho_dagster.partitions import daily_partitions
from zoho_dagster.postgres.io_manager import CURSOR_FIELD_KEY, TARGET_TABLE_KEY
from zoho_dagster.record_stream import CallStats, RecordStream
from zoho_dagster.resource import ZohoCRMResource
from zoho_dagster.streams import CATALOG, StreamSpec

GROUP = "zoho_crm"
POOL = "zoho_crm_api"
KINDS = {"zoho_crm", "postgres"}

LIST_UNSUPPORTED_TYPES = {"subform", "multiselectlookup", "multiuserlookup"}
"""Zoho leaves these out of list responses (reference §3.3, §7.8); asking for them only costs field slots."""

USER_FIELDS: list[dict] = [
    {"api_name": name, "data_type": data_type}
    for name, data_type in (
        ("full_name", "text"),
        ("first_name", "text"),
        ("last_name", "text"),
        ("email", "email"),
        ("status", "text"),
        ("confirm", "boolean"),
        ("role", "lookup"),
        ("profile", "lookup"),
        ("zuid", "text"),
        ("time_zone", "text"),
        ("locale", "text"),
        ("type__s", "text"),
        ("created_time", "datetime"),
        ("Modified_Time", "datetime"),
    )
]
"""The users table's columns: Zoho has no field metadata for users, so the columns are fixed here."""

MODULE_FIELDS: list[dict] = [
    {"api_name": name, "data_type": data_type}
    for name, data_type in (
        ("api_name", "text"),
        ("module_name", "text"),
        ("singular_label", "text"),
        ("plural_label", "text"),
        ("generated_type", "text"),
        ("api_supported", "boolean"),
        ("viewable", "boolean"),
        ("visibility", "integer"),
        ("modified_time", "datetime"),
    )
]


def default_table(spec: StreamSpec) -> str:
    return f"zoho_crm.{spec.name}"


def _utc(moment: datetime) -> datetime:
    return datetime.fromtimestamp(moment.timestamp(), tz=timezone.utc)


class _Meter:
    """Copies the client's running call counts into the stream's stats as pages are consumed.

    The client may be shared by several runs in one process, so the stream reports the difference since the
    run started rather than the client's totals.
    """

    def __init__(self, client_stats: CallStats, stream_stats: CallStats) -> None:
        self._client = client_stats
        self._stream = stream_stats
        self._base = (client_stats.calls, client_stats.credits)

    def update(self) -> None:
        self._stream.calls = self._client.calls - self._base[0]
        self._stream.credits = self._client.credits - self._base[1]

    def wrap(self, pages: Iterable[list[dict]]) -> Iterator[list[dict]]:
        for page in pages:
            self.update()
            yield page
        self.update()


def _record_stream(
    context: dg.AssetExecutionContext, spec: StreamSpec, zoho_crm: ZohoCRMResource
) -> RecordStream:
    client = zoho_crm.get_client()
    stream = RecordStream(stream=spec.name, module=spec.module, mode=spec.mode, fields=[], pages=[])
    meter = _Meter(client.stats, stream.stats)
    if spec.incremental:
        assert spec.module is not None
        window = context.partition_time_window
        start, end = _utc(window.start), _utc(window.end)
        fields = [
            f for f in client.list_fields(spec.module) if f.get("data_type") not in LIST_UNSUPPORTED_TYPES
        ]
        names = [str(f["api_name"]) for f in fields if f.get("api_name") and f.get("api_name") != "id"]
        context.log.info(
            f"{spec.name}: Modified_Time in [{start.isoformat()}, {end.isoformat()}), {len(names)} fields"
        )
        stream.fields = fields
        stream.window = (start, end)
        stream.pages = meter.wrap(client.iter_records(spec.module, start, end, names))
        module = spec.module
        stream.deletions = lambda: meter.wrap(client.iter_deleted(module, since=start))
    elif spec.name == "users":
        stream.fields = USER_FIELDS
        stream.pages = meter.wrap(client.iter_users())
    elif spec.name == "modules":
        stream.fields = MODULE_FIELDS
        stream.pages = meter.wrap(iter([client.list_modules()]))
    else:
        raise ValueError(
            f"Stream {spec.name!r} is full-refresh but only users and modules can be; make it incremental."
        )
    meter.update()
    return stream


def build_stream_asset(
    spec: StreamSpec,
    table: str | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.AssetsDefinition:
    """One stream's asset: key = stream name, written by the ``io_manager`` into ``table`` (schema.table)."""
    metadata: dict[str, str] = {TARGET_TABLE_KEY: table or default_table(spec)}
    if spec.cursor_field:
        metadata[CURSOR_FIELD_KEY] = spec.cursor_field
    partitioned = spec.incremental
    source = f"Zoho CRM module {spec.module}" if spec.module else f"Zoho CRM {spec.name}"
    how = "incremental on Modified_Time, daily partitions (UTC)" if partitioned else "full refresh"

    @dg.asset(
        name=spec.name,
        group_name=GROUP,
        kinds=KINDS,
        pool=POOL,
        description=f"{spec.description}: {source} → {metadata[TARGET_TABLE_KEY]} ({how}).",
        metadata=metadata,
        partitions_def=(partitions_def or daily_partitions()) if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        io_manager_key="io_manager",
    )
    def _stream_asset(context: dg.AssetExecutionContext, zoho_crm: ZohoCRMResource) -> RecordStream:
        return _record_stream(context, spec, zoho_crm)

    return _stream_asset


def build_stream_assets(
    specs: Sequence[StreamSpec] = CATALOG,
    tables: Mapping[str, str] | None = None,
    anchor: date | None = None,
) -> list[dg.AssetsDefinition]:
    """Assets for ``specs``; ``tables`` maps a stream name to its ``schema.table`` (default
    ``zoho_crm.<stream>``).

    All incremental assets share one partitions definition so a backfill can select several of them at once.
    """
    tables = tables or {}
    partitions_def = daily_partitions(anchor)
    return [build_stream_asset(spec, tables.get(spec.name), partitions_def) for spec in specs]
