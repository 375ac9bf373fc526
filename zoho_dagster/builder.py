"""``build_definitions``: the project's streams as a ``Definitions`` object (assets, checks, automation).

Kept apart from :mod:`zoho_dagster.definitions`, which builds the object at import for Dagster to load, so
that ``from zoho_dagster import build_definitions`` builds nothing until called. The YAML face of the same
thing is :class:`~zoho_dagster.component.ZohoCRMComponent`, which calls this.

The result is safe to merge into a larger project (``dg.Definitions.merge``): its resources have keys of
their own (``zoho_crm`` and ``zoho_crm_io_manager``, which every stream asset names as its IO manager), and
it sets no executor: the package's jobs carry theirs.
"""

import warnings
from pathlib import Path

import dagster as dg

from zoho_dagster.assets import build_stream_assets
from zoho_dagster.automation import build_automation
from zoho_dagster.checks import build_checks, build_freshness_check_schedule, build_values_checks
from zoho_dagster.environment import replication_file as replication_file_setting
from zoho_dagster.formula_refresh import build_formula_refresh
from zoho_dagster.notifications.sensor import build_notifications
from zoho_dagster.partitions import daily_partitions
from zoho_dagster.postgres.io_manager import PostgresIOManager
from zoho_dagster.replication import ReplicatedStream, load_replication, stream_lines
from zoho_dagster.resource import IO_MANAGER_KEY, RESOURCE_KEY, ZohoCRMResource
from zoho_dagster.translator import DagsterZohoTranslator

DEFAULT_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
"""Dagster retries a stream's step twice (after about 1 and 2 minutes) when Zoho kept failing transiently
through the client's own retries (an outage, a long 429 storm); configuration, permission and credit errors
are ``dg.Failure(allow_retries=False)`` and are never retried (:mod:`zoho_dagster.failures`)."""


def code_references(
    path: Path | None, streams: list[ReplicatedStream]
) -> dict[str, dg.LocalFileCodeReference]:
    """Each stream's line in the replication file at ``path``, as Dagster code references (none without)."""
    if path is None or not path.is_file():
        return {}
    absolute = path.resolve()
    lines = stream_lines(absolute.read_text(encoding="utf-8"), [s.spec.name for s in streams])
    with warnings.catch_warnings():
        # Code references are beta in Dagster 1.13 (one warning per stream otherwise); accepted as the
        # single-run backfill policy is (docs/dagster.md §3).
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        return {
            name: dg.LocalFileCodeReference(file_path=str(absolute), line_number=line, label="replication")
            for name, line in lines.items()
        }


def build_definitions(
    streams: list[ReplicatedStream] | None = None,
    translator: DagsterZohoTranslator | None = None,
    retry_policy: dg.RetryPolicy | None = DEFAULT_RETRY_POLICY,
    *,
    zoho_crm: ZohoCRMResource | None = None,
    io_manager: PostgresIOManager | None = None,
    freshness_minutes: int | None = None,
    replication_file: Path | str | None = None,
) -> dg.Definitions:
    """The replicated streams as assets with their checks, the freshness schedules and the change sensor.

    ``streams`` defaults to those of ``replication_file`` (default ``$ZOHO_DAGSTER_REPLICATION``; neither:
    the whole catalog, :func:`~zoho_dagster.replication.load_replication`), whose lines become each asset's
    code reference. ``translator`` names the assets (keys, groups, owners, tags, freshness policy, automation
    condition) everywhere at once. ``zoho_crm`` and ``io_manager`` default to the environment's
    (:meth:`ZohoCRMResource.from_env`, ``PostgresIOManager()``); ``freshness_minutes`` (default
    ``ZOHO_DAGSTER_FRESHNESS_MINUTES``) is the schedule's interval, the freshness check's limit and the
    freshness policy's window.

    The package's jobs (the sync job, the freshness checks' job, the formula refresh) run their steps in the
    run's own process (``in_process_executor``): a step in a process of its own re-imports Dagster and the
    definitions, 5 to 10 s per step on a 2-core machine, twice for a stream and its checks, while the work
    itself is bound by Zoho's concurrency, which one process already uses fully through its concurrent
    slices (README, "Speed and manners"). The executor is set on those jobs, not here, so the object merges
    into a project with an executor of its own.
    """
    source = Path(replication_file) if replication_file is not None else replication_file_setting()
    replicated = load_replication(source) if streams is None else streams
    minutes = freshness_minutes
    if minutes is None and translator is not None:
        minutes = translator.freshness_minutes
    translator = translator or DagsterZohoTranslator(freshness_minutes=minutes)
    partitions = daily_partitions()
    jobs, schedules, sensors = build_automation(
        replicated, partitions, resource_key=RESOURCE_KEY, translator=translator, minutes=minutes
    )
    formula_job, formula_schedule = build_formula_refresh(replicated, translator=translator)
    notify_jobs, notify_schedules, notify_sensors = build_notifications(replicated, translator=translator)
    return dg.Definitions(
        assets=build_stream_assets(
            replicated,
            translator=translator,
            retry_policy=retry_policy,
            replication=replicated,
            code_references=code_references(source, replicated),
        ),
        asset_checks=[
            *build_checks(replicated, interval_minutes=minutes, translator=translator),
            *build_values_checks(replicated, translator=translator),
        ],
        jobs=[*jobs, formula_job, *notify_jobs],
        schedules=[
            *schedules,
            build_freshness_check_schedule(replicated, minutes=minutes, translator=translator),
            formula_schedule,
            *notify_schedules,
        ],
        sensors=[*sensors, *notify_sensors],
        resources={
            RESOURCE_KEY: zoho_crm if zoho_crm is not None else ZohoCRMResource.from_env(),
            IO_MANAGER_KEY: io_manager if io_manager is not None else PostgresIOManager(),
        },
    )
