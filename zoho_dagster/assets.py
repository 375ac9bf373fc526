"""One Dagster asset per stream, built by a factory over replicated streams.

Why a factory: the catalog, custom modules found by discovery and user-renamed targets all become assets the
same way, and the :class:`~zoho_dagster.translator.DagsterZohoTranslator` decides their key, group and
metadata. Each asset only describes what to fetch and returns a lazy ``RecordStream``; the Postgres IO manager
pulls the pages inside its transaction, so nothing fetched is held in memory and a failure anywhere writes
nothing.

Incremental streams are daily-partitioned on ``Modified_Time`` with a single-run backfill policy: a backfill
of many days is one run and one pass over the API for ``[first day, last day + 1)``. The window is worked out
here, once, and travels to the IO manager in the ``RecordStream``.
"""

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date

import dagster as dg

# Not exported by `dagster` 1.13; Dagster's own libraries import it from here (docs/dagster.md §3).
from dagster._core.definitions.metadata import CodeReferencesMetadataSet

from zoho_dagster.budget import check_credit_budget
from zoho_dagster.client import CallStats, ChildField, ChildReader, ZohoClient, record_fields
from zoho_dagster.client.visibility import is_system_key
from zoho_dagster.discovery import snake_case
from zoho_dagster.failures import zoho_errors_as_failures
from zoho_dagster.metadata_source import org_metadata_source
from zoho_dagster.partitions import daily_partitions, utc_window
from zoho_dagster.postgres.metadata_tables import ModulesStream
from zoho_dagster.postgres.tables import TableName
from zoho_dagster.record_stream import ChildRows, RecordStream
from zoho_dagster.replication import ReplicatedStream, load_replication, replicated
from zoho_dagster.resource import IO_MANAGER_KEY, POOL, ZohoCRMResource
from zoho_dagster.streams import CATALOG, StreamSpec
from zoho_dagster.translator import DagsterZohoTranslator

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


class StreamMeter:
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


def child_rows_of(
    client: ZohoClient, module: str, metadata: list[dict], meter: StreamMeter
) -> ChildRows | None:
    """The child tables of ``module`` (subforms, lookup links, Deals' stage history) and how to read them.

    Costs one ``/settings/fields`` call per subform module here; the rows are read by the IO manager for the
    parents it staged (:mod:`zoho_dagster.client.children`). Each table is named after the field in
    snake_case, as streams are (``zoho_crm.quotes__quoted_items``).
    """
    reader = ChildReader(client, module, metadata)
    if not reader.children:
        return None

    def rows(
        child: ChildField, parent_ids: Sequence[str], hidden: Sequence[str] = ()
    ) -> Iterator[list[dict]]:
        return meter.wrap(reader.rows(child, parent_ids, hidden))

    return ChildRows(
        fields=reader.children,
        rows=rows,
        suffixes={child.field: snake_case(child.field) for child in reader.children},
        stats=reader.stats,
    )


def _record_stream(
    context: dg.AssetExecutionContext,
    spec: StreamSpec,
    zoho_crm: ZohoCRMResource,
    replication: Sequence[ReplicatedStream] | None = None,
) -> RecordStream:
    client = zoho_crm.get_client(announce=context.log.info)
    stream = RecordStream(stream=spec.name, module=spec.module, mode=spec.mode, fields=[], pages=[])
    meter = StreamMeter(client.stats, stream.stats)
    if spec.incremental:
        assert spec.module is not None
        start, end = utc_window(context.partition_time_window)
        metadata = client.list_fields(spec.module)
        fields = record_fields(metadata)
        check_credit_budget(context, zoho_crm, client, spec.name, spec.module, (start, end), metadata)
        # The `$` keys come with every record unasked; `fields` names Zoho's fields only.
        names = [
            str(f["api_name"])
            for f in fields
            if f.get("api_name") and f.get("api_name") != "id" and not is_system_key(str(f["api_name"]))
        ]
        context.log.info(
            f"{spec.name}: Modified_Time in [{start.isoformat()}, {end.isoformat()}), {len(names)} fields"
        )
        stream.fields = fields
        stream.window = (start, end)
        stream.pages = meter.wrap(client.iter_records(spec.module, start, end, names, fields))
        module = spec.module
        stream.deletions = lambda: meter.wrap(client.iter_deleted(module, since=start))
        stream.children = child_rows_of(client, module, metadata, meter)
    elif spec.name == "users":
        stream.fields = USER_FIELDS
        stream.pages = meter.wrap(client.iter_users())
    elif spec.name == "modules":
        # With the metadata tables, written in the same transaction (postgres/metadata_tables.py).
        modules = client.list_modules()
        stream = ModulesStream(
            stream=spec.name,
            module=None,
            mode=spec.mode,
            fields=MODULE_FIELDS,
            pages=meter.wrap(iter([modules])),
            stats=stream.stats,
            metadata=org_metadata_source(
                client, modules, load_replication() if replication is None else replication, meter.update
            ),
        )
    else:
        raise ValueError(
            f"Stream {spec.name!r} is full-refresh but only users and modules can be; make it incremental."
        )
    meter.update()
    return stream


def _single_run_backfills() -> dg.BackfillPolicy:
    """Dagster's single-run backfill policy, without the BetaWarning it prints on every build.

    The policy is what makes a year's backfill one run and one pass over the API (docs/design.md §3); the
    warning only says the API is beta, which the project accepts (docs/dagster.md), and it would otherwise
    print once per stream on every load.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        return dg.BackfillPolicy.single_run()


def build_stream_asset(
    spec: StreamSpec | ReplicatedStream,
    table: str | TableName | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    translator: DagsterZohoTranslator | None = None,
    retry_policy: dg.RetryPolicy | None = None,
    replication: Sequence[ReplicatedStream] | None = None,
    code_reference: dg.LocalFileCodeReference | None = None,
) -> dg.AssetsDefinition:
    """One stream's asset, written by the ``zoho_crm_io_manager`` into ``table`` (default
    ``zoho_crm.<stream>``).

    ``translator`` gives the asset spec (key, group, kinds, metadata, freshness policy, automation
    condition); ``retry_policy`` decides whether Dagster retries a step whose Zoho calls kept failing
    transiently (other Zoho errors are never retried: :mod:`zoho_dagster.failures`). ``replication`` is the
    whole set of replicated streams, which the ``modules`` stream needs for the metadata tables (default:
    the replication file, read when the run starts); ``code_reference`` is where the stream is chosen (its
    line in the replication file), shown by the UI.
    """
    stream = replicated(spec, table)
    stream_spec = stream.spec
    asset_spec = (translator or DagsterZohoTranslator()).get_asset_spec(stream)
    if code_reference is not None:
        with warnings.catch_warnings():  # beta in Dagster 1.13, accepted (docs/dagster.md §3)
            warnings.filterwarnings("ignore", category=dg.BetaWarning)
            references = dg.CodeReferencesMetadataValue(code_references=[code_reference])
        asset_spec = asset_spec.merge_attributes(
            metadata=CodeReferencesMetadataSet(code_references=references)
        )
    partitioned = stream_spec.incremental
    streams = None if replication is None else list(replication)

    @dg.multi_asset(
        name=asset_spec.key.to_python_identifier(),
        specs=[asset_spec.with_io_manager_key(IO_MANAGER_KEY)],
        pool=POOL,
        partitions_def=(partitions_def or daily_partitions()) if partitioned else None,
        backfill_policy=_single_run_backfills() if partitioned else None,
        retry_policy=retry_policy,
    )
    def _stream_asset(context: dg.AssetExecutionContext, zoho_crm: ZohoCRMResource) -> RecordStream:
        with zoho_errors_as_failures(f"Preparing the {stream_spec.name} sync"):
            return _record_stream(context, stream_spec, zoho_crm, streams)

    return _stream_asset


def build_stream_assets(
    specs: Sequence[StreamSpec | ReplicatedStream] = CATALOG,
    tables: Mapping[str, str] | None = None,
    anchor: date | None = None,
    translator: DagsterZohoTranslator | None = None,
    retry_policy: dg.RetryPolicy | None = None,
    replication: Sequence[ReplicatedStream] | None = None,
    code_references: Mapping[str, dg.LocalFileCodeReference] | None = None,
) -> list[dg.AssetsDefinition]:
    """Assets for ``specs`` (streams, or replicated streams with their tables); ``tables`` maps a stream name
    to its ``schema.table`` (default ``zoho_crm.<stream>``); ``code_references`` maps a stream name to its
    place in the replication file.

    All incremental assets share one partitions definition so a backfill can select several of them at once.
    """
    tables = tables or {}
    code_references = code_references or {}
    partitions_def = daily_partitions(anchor)
    return [
        build_stream_asset(
            spec,
            tables.get(spec.name) if isinstance(spec, StreamSpec) else None,
            partitions_def,
            translator,
            retry_policy,
            replication,
            code_references.get(replicated(spec).spec.name),
        )
        for spec in specs
    ]
