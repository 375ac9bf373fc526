"""``zoho-dagster demo``: the bundled simulator synced into Postgres, then compared with its truth.

Uses the embedded Postgres (or ``ZOHO_DAGSTER_DATABASE_URL``, in a schema of its own) and syncs every stream
over the whole anchor range, one single-run backfill per stream, printing one progress line per stream; then
it compares each table with the simulator's truth and exits 1 on any difference.
"""

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zoho_dagster import environment
from zoho_dagster.cli.common import point_at_simulator, shared_database_url, simulator

DEMO_SCHEMA_ON_SHARED_DATABASE = "zoho_crm_demo"


@dataclass
class StreamRun:
    """One stream's sync in the demo: how it went, for the progress line and the closing table."""

    name: str
    ok: bool
    rows: int
    seconds: float
    api_calls: int
    error: str = ""


def _metadata_value(result: Any, name: str, key: str, default: Any = 0) -> Any:
    materializations = result.asset_materializations_for_node(name)
    if not materializations:
        return default
    entry = materializations[-1].metadata.get(key)
    return getattr(entry, "value", default) if entry is not None else default


def sync_all(
    specs: Sequence[Any], tables: dict[str, str], requests_per_second: float | None = None
) -> list[StreamRun]:
    """Materialize every stream in-process: partitioned ones as one run over the whole partition range."""
    import dagster as dg

    from zoho_dagster.assets import build_stream_assets
    from zoho_dagster.postgres.io_manager import PostgresIOManager
    from zoho_dagster.resource import IO_MANAGER_KEY, RESOURCE_KEY, ZohoCRMResource

    assets = build_stream_assets(specs, tables)
    resources = {
        RESOURCE_KEY: ZohoCRMResource.from_env(requests_per_second=requests_per_second),
        IO_MANAGER_KEY: PostgresIOManager(),
    }
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    runs: list[StreamRun] = []
    with dg.DagsterInstance.ephemeral() as instance:
        for asset in assets:
            name = asset.key.to_user_string()
            tags: dict[str, str] = {}
            if asset.partitions_def is not None:
                keys = asset.partitions_def.get_partition_keys()
                tags = {
                    "dagster/asset_partition_range_start": keys[0],
                    "dagster/asset_partition_range_end": keys[-1],
                }
            started = time.monotonic()
            result = dg.materialize(
                [asset],
                instance=instance,
                resources=resources,
                tags=tags,
                run_config=quiet,
                raise_on_error=False,
            )
            seconds = time.monotonic() - started
            error = ""
            if not result.success:
                failures = [e for e in result.all_events if e.is_step_failure]
                error = failures[0].step_failure_data.error.message.strip() if failures else "run failed"
            run = StreamRun(
                name,
                result.success,
                int(_metadata_value(result, name, "dagster/row_count")),
                seconds,
                int(_metadata_value(result, name, "api_calls")),
                error,
            )
            status = "ok" if run.ok else f"FAILED: {run.error}"
            print(
                f"  {name:<16} {run.rows:>8,} rows  {run.seconds:6.1f} s  "
                f"{run.api_calls:>5} API calls  {status}",
                flush=True,
            )
            runs.append(run)
    return runs


def demo_streams() -> list[Any]:
    """The streams the demo can sync: the default set, then every other record module the bundled simulator
    serves (its standard inventory and service modules and its custom module), named as discovery names them.

    The demo knows its simulator, so it needs no discovery file; its default stays the default set.
    """
    from zoho_dagster.discovery import DiscoveredModule, module_stream_specs
    from zoho_dagster.simulator.schema import MODULES
    from zoho_dagster.streams import CATALOG

    served = [
        DiscoveredModule(m.api_name, m.module_name or m.api_name, m.plural, m.generated_type, True)
        for m in MODULES
    ]
    return [*CATALOG, *module_stream_specs(served)]


def _with_metadata_stream(specs: list[Any], catalog: Sequence[Any]) -> list[Any]:
    """``specs`` plus the ``modules`` stream, which refreshes the metadata tables (fields, org, roles, …) that
    every synced table is read with; the demo always brings it along."""
    if any(spec.name == "modules" for spec in specs):
        return specs
    return [*specs, *[spec for spec in catalog if spec.name == "modules"]]


def _refusal(text: str) -> int:
    """Print a refusal (one sentence naming the fix) to stderr; exit status 2, as argparse's errors."""
    print(f"zoho-dagster demo: {text}", file=sys.stderr)
    return 2


def cmd_demo(args: argparse.Namespace) -> int:
    from zoho_dagster.cli.comparison import child_targets, compare, compare_children, compare_metadata
    from zoho_dagster.client import ZohoConfigError
    from zoho_dagster.partitions import anchor_date
    from zoho_dagster.postgres.engine import DatabaseConnectionError, make_engine
    from zoho_dagster.postgres.queries import drop_tables
    from zoho_dagster.postgres.tables import TableName
    from zoho_dagster.streams import CATALOG, UnknownStreamError, select_streams

    try:  # every mistake of the command line is refused before anything starts
        catalog = demo_streams()
        default = [spec for spec in catalog if spec.name in {s.name for s in CATALOG}]
        specs = select_streams(args.streams, "--streams", catalog) if args.streams else default
        specs = _with_metadata_stream(specs, catalog)
        anchor_date()
    except (UnknownStreamError, ZohoConfigError) as error:
        return _refusal(str(error))
    shared = environment.database_url() is not None
    schema = args.schema or (DEMO_SCHEMA_ON_SHARED_DATABASE if shared else "zoho_crm")
    tables = {spec.name: f"{schema}.{spec.name}" for spec in specs}
    try:
        url = shared_database_url()
        drop_tables(make_engine(url), [TableName.parse(t) for t in tables.values()])
    except DatabaseConnectionError as error:
        print(f"zoho-dagster demo: {error}", file=sys.stderr)
        return 1
    where = environment.DATABASE_URL_VARIABLE if shared else "the embedded Postgres"
    print(f"zoho-dagster demo: simulator with {args.records:,} leads → {where}, schema {schema}")
    with simulator(args.records, args.seed, args.latency_ms) as running:
        point_at_simulator(running.primary)
        # A re-run must not find the child tables of an earlier one (their parents were dropped above).
        drop_tables(make_engine(url), child_targets(running, specs, tables))
        anchor = anchor_date()
        print(
            f"syncing {len(specs)} streams, Modified_Time from {anchor} to today (UTC), one run per stream:"
        )
        started = time.monotonic()
        runs = sync_all(specs, tables, args.requests_per_second)
        elapsed = time.monotonic() - started
        total_rows = sum(r.rows for r in runs)
        calls = sum(r.api_calls for r in runs)
        print(
            f"synced {total_rows:,} rows in {elapsed:.1f} s ({total_rows / max(elapsed, 1e-9):,.0f} rows/s, "
            f"{calls} API calls)"
        )
        matched = all(r.ok for r in runs)
        matched = compare(running, specs, tables, anchor, url) and matched
        matched = compare_children(running, specs, tables, anchor, url) and matched
        if any(spec.name == "modules" for spec in specs):
            matched = compare_metadata(running, TableName.parse(tables["modules"]).schema, url) and matched
    return 0 if matched else 1


def add_parser(commands: Any) -> None:
    demo = commands.add_parser(
        "demo", help="sync the bundled simulator into Postgres and compare with its truth"
    )
    demo.add_argument("--records", type=int, default=2500, help="leads in the simulator (default 2500)")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--latency-ms", type=int, default=0, help="simulated API latency per request")
    demo.add_argument(
        "--requests-per-second", type=float, default=None, help="cap on request starts (default: none)"
    )
    demo.add_argument("--schema", help="target schema (default zoho_crm; zoho_crm_demo on a shared database)")
    demo.add_argument(
        "--streams",
        nargs="*",
        help="only these streams (default: the 14 of the default set; also invoices, sales_orders, "
        "purchase_orders, price_books, cases, solutions, vehicles); modules always comes along; an unknown "
        "name is refused",
    )
    demo.set_defaults(func=cmd_demo)
