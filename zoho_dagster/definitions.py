"""The one ``Definitions`` object that ``dagster dev``, ``dagster asset materialize`` and the demo load.

Loading must work with no secret set (the UI, ``definitions validate`` and CI load it on machines without Zoho
credentials): the resource reads its configuration lazily through ``EnvVar``s and the IO manager resolves its
database only when a run writes. The streams and their tables come from the replication file
(``ZOHO_DAGSTER_REPLICATION``; unset: the whole catalog into ``zoho_crm.<stream>``), which only reads files,
so loading never calls Zoho either.
"""

import dagster as dg

from zoho_dagster.assets import build_stream_assets
from zoho_dagster.automation import build_automation
from zoho_dagster.checks import build_checks, build_freshness_check_schedule
from zoho_dagster.partitions import daily_partitions
from zoho_dagster.postgres.io_manager import PostgresIOManager
from zoho_dagster.replication import load_replication
from zoho_dagster.resource import ZohoCRMResource


def build_definitions() -> dg.Definitions:
    """The replicated streams as assets with their checks, the freshness schedule and the change sensor."""
    replicated = load_replication()
    specs = [r.spec for r in replicated]
    jobs, schedules, sensors = build_automation(specs, daily_partitions())
    return dg.Definitions(
        assets=build_stream_assets(specs, {r.spec.name: str(r.target) for r in replicated}),
        asset_checks=build_checks(replicated),
        jobs=jobs,
        schedules=[*schedules, build_freshness_check_schedule(specs)],
        sensors=sensors,
        resources={"zoho_crm": ZohoCRMResource.from_env(), "io_manager": PostgresIOManager()},
    )


defs = build_definitions()
