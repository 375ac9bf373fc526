"""Helpers shared by the operations tests (automation, checks, replication): real simulator, real Postgres."""

from collections.abc import Sequence
from datetime import date, datetime, timezone
from typing import Any

import dagster as dg
import sqlalchemy as sa

from zoho_dagster.assets import build_stream_assets
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.io_manager import PostgresIOManager
from zoho_dagster.resource import ZohoCRMResource
from zoho_dagster.streams import StreamSpec


def zoho_resource(simulator: Any, database_url: str) -> ZohoCRMResource:
    """The resource pointed at the simulator's primary (US) org, its token cache in the test database."""
    org = simulator.primary
    return ZohoCRMResource(
        client_id=org["client_id"],
        client_secret=org["client_secret"],
        soid=org["soid"],
        accounts_url=org["accounts_url"],
        api_domain=org["api_domain"],
        database_url=database_url,
    )


def resources(simulator: Any, database_url: str) -> dict[str, Any]:
    return {
        "zoho_crm": zoho_resource(simulator, database_url),
        "zoho_crm_io_manager": PostgresIOManager(database_url=database_url),
    }


def earliest_modified(simulator: Any, module: str) -> date:
    """The UTC day of the oldest ``Modified_Time`` in the simulator's truth: an anchor covering all."""
    times = [
        datetime.fromisoformat(record["Modified_Time"]).astimezone(timezone.utc)
        for record in simulator.control.truth(module)["data"]
    ]
    return min(times).date()


def today_key() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def materialize_range(
    targets: Sequence[tuple[StreamSpec, Any]],
    simulator: Any,
    database_url: str,
    anchor: date,
    instance: dg.DagsterInstance,
    extra: Sequence[Any] = (),
    selection: Sequence[str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Sync the incremental ``targets`` over every partition from ``anchor`` to today, as one run."""
    assets = build_stream_assets([spec for spec, _ in targets], {s.name: str(t) for s, t in targets}, anchor)
    return dg.materialize(
        [*assets, *extra],
        selection=selection or [spec.name for spec, _ in targets if spec.incremental],
        instance=instance,
        resources=resources(simulator, database_url),
        tags={
            "dagster/asset_partition_range_start": anchor.isoformat(),
            "dagster/asset_partition_range_end": today_key(),
        },
    )


def scalar(database_url: str, sql: str, **params: Any) -> Any:
    with make_engine(database_url).connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()
