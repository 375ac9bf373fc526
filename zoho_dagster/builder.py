"""``build_definitions``: the project's streams as a ``Definitions`` object (assets, checks, automation).

Kept apart from :mod:`zoho_dagster.definitions`, which builds the object at import for Dagster to load, so
that ``from zoho_dagster import build_definitions`` builds nothing until called.
"""

import dagster as dg

from zoho_dagster.assets import build_stream_assets
from zoho_dagster.automation import build_automation
from zoho_dagster.checks import build_checks, build_freshness_check_schedule, build_values_checks
from zoho_dagster.formula_refresh import build_formula_refresh
from zoho_dagster.partitions import daily_partitions
from zoho_dagster.postgres.io_manager import PostgresIOManager
from zoho_dagster.replication import ReplicatedStream, load_replication
from zoho_dagster.resource import ZohoCRMResource
from zoho_dagster.translator import DagsterZohoTranslator

DEFAULT_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
"""Dagster retries a stream's step twice (after about 1 and 2 minutes) when Zoho kept failing transiently
through the client's own retries (an outage, a long 429 storm); configuration, permission and credit errors
are ``dg.Failure(allow_retries=False)`` and are never retried (:mod:`zoho_dagster.failures`)."""


def build_definitions(
    streams: list[ReplicatedStream] | None = None,
    translator: DagsterZohoTranslator | None = None,
    retry_policy: dg.RetryPolicy | None = DEFAULT_RETRY_POLICY,
) -> dg.Definitions:
    """The replicated streams as assets with their checks, the freshness schedules and the change sensor.

    ``streams`` defaults to the replication file's (:func:`~zoho_dagster.replication.load_replication`);
    ``translator`` names the assets (keys, groups, owners, tags) everywhere at once.

    Runs execute their steps in the run's own process (``in_process_executor``): a step in a process of its
    own re-imports Dagster and the definitions, 5 to 10 s per step on a 2-core machine, twice for a stream
    and its checks, while the work itself is bound by Zoho's concurrency, which one process already uses
    fully through its concurrent slices (README, "Speed and manners").
    """
    replicated = load_replication() if streams is None else streams
    partitions = daily_partitions()
    jobs, schedules, sensors = build_automation(replicated, partitions, translator=translator)
    formula_job, formula_schedule = build_formula_refresh(replicated, translator=translator)
    return dg.Definitions(
        assets=build_stream_assets(replicated, translator=translator, retry_policy=retry_policy),
        asset_checks=[
            *build_checks(replicated, translator=translator),
            *build_values_checks(replicated, translator=translator),
        ],
        jobs=[*jobs, formula_job],
        schedules=[
            *schedules,
            build_freshness_check_schedule(replicated, translator=translator),
            formula_schedule,
        ],
        sensors=sensors,
        resources={"zoho_crm": ZohoCRMResource.from_env(), "io_manager": PostgresIOManager()},
        executor=dg.in_process_executor,
    )

