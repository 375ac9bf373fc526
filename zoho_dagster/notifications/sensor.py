"""The Dagster side of notifications: a sensor that turns them into runs, and a schedule that keeps channels.

- ``zoho_crm_notification_sensor`` looks at ``zoho_dagster.notifications`` every
  ``ZOHO_DAGSTER_NOTIFY_SENSOR_SECONDS`` (default 10): for the watched streams with pending notifications
  and no notification run queued or running, it requests one run of ``zoho_crm_notification_job`` naming
  them. A look costs one small query and no Zoho call. Its runs carry the tag ``zoho_dagster/streams``, which
  is how the next look knows they are in flight; a run requested twice (a daemon restarted mid-tick) only
  applies the same notifications twice, which changes nothing (:mod:`.apply`).
- ``zoho_crm_notification_job`` applies each named stream's pending notifications (:mod:`.apply`) in the
  ``zoho_crm_api`` pool, and records an observation of the stream's asset with what it did.
- ``zoho_crm_notification_channels_schedule`` runs ``zoho_crm_notification_channels`` hourly
  (:mod:`.channels`): channels enabled, renewed well before they lapse, disabled for streams no longer
  synced. It is not in the pool: a couple of calls that must not wait behind a long backfill while a channel
  lapses.

The polling sensor and the freshness schedule stay as they are (:mod:`zoho_dagster.automation`): Notes has no
notifications, and a window read repairs whatever a notification never told (a delivery Zoho dropped, a
receiver outage). All three start STOPPED, like the package's other automation, and start RUNNING when
``ZOHO_DAGSTER_AUTOMATION`` is on and ``ZOHO_DAGSTER_NOTIFY_URL`` is set.
"""

from collections.abc import Sequence
from datetime import datetime, timezone

import dagster as dg
from pydantic import Field

from zoho_dagster.automation import asset_keys
from zoho_dagster.environment import automation_enabled, notify_sensor_seconds, notify_url
from zoho_dagster.failures import zoho_errors_as_failures
from zoho_dagster.notifications import store, watch
from zoho_dagster.notifications.apply import apply_stream
from zoho_dagster.notifications.channels import UNWATCHABLE, sync_channels
from zoho_dagster.notifications.config import NotificationConfigError, load_settings
from zoho_dagster.replication import ReplicatedStream, replicated
from zoho_dagster.resource import IO_MANAGER_KEY, POOL, RESOURCE_KEY, ZohoCRMResource
from zoho_dagster.stream_ops import chosen_streams, observe_stream, tables_engine
from zoho_dagster.streams import StreamSpec
from zoho_dagster.translator import DagsterZohoTranslator

JOB_NAME = "zoho_crm_notification_job"
SENSOR_NAME = "zoho_crm_notification_sensor"
CHANNELS_JOB_NAME = "zoho_crm_notification_channels"
CHANNELS_SCHEDULE_NAME = "zoho_crm_notification_channels_schedule"
CHANNELS_CRON = "30 * * * *"
"""Hourly, at half past: away from the freshness schedule's full hours."""
STREAMS_TAG = "zoho_dagster/streams"
IN_FLIGHT = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


class NotificationRunConfig(dg.Config):
    """Which streams one notification run applies."""

    streams: list[str] = Field(
        default_factory=list, description="Stream names; empty: every watched stream of the definitions."
    )


def watched(specs: Sequence[StreamSpec | ReplicatedStream]) -> list[ReplicatedStream]:
    """The streams of ``specs`` whose module Zoho notifies about: incremental record streams, not Notes."""
    streams = [replicated(spec) for spec in specs]
    return [s for s in streams if s.spec.incremental and s.spec.module and s.spec.module not in UNWATCHABLE]


def notification_run_requests(
    pending: dict[str, store.Pending], streams: Sequence[ReplicatedStream], in_flight: set[str]
) -> list[dg.RunRequest]:
    """One run for the streams with pending notifications that no run is applying yet (or none)."""
    ready = sorted(s.spec.name for s in streams if s.spec.module in pending and s.spec.name not in in_flight)
    if not ready:
        return []
    return [
        dg.RunRequest(
            run_config={"ops": {"apply_notifications": {"config": {"streams": ready}}}},
            tags={STREAMS_TAG: ",".join(ready), "zoho_dagster/trigger": "notifications"},
        )
    ]


def _in_flight(instance: dg.DagsterInstance) -> set[str]:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=JOB_NAME, statuses=IN_FLIGHT))
    names: set[str] = set()
    for run in runs:
        names.update(name for name in run.tags.get(STREAMS_TAG, "").split(",") if name)
    return names


def _status(enabled: bool | None) -> bool:
    return (automation_enabled() and notify_url() is not None) if enabled is None else enabled


def build_notifications(
    specs: Sequence[StreamSpec | ReplicatedStream],
    translator: DagsterZohoTranslator | None = None,
    enabled: bool | None = None,
    interval_seconds: int | None = None,
) -> tuple[list[dg.JobDefinition], list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    """The notification job and sensor, the channels job and its schedule, over the streams of ``specs``."""
    streams = watched(specs)
    all_streams = [replicated(spec) for spec in specs]
    keys = asset_keys(streams, translator)
    running = _status(enabled)

    @dg.op(
        name="apply_notifications",
        pool=POOL,
        required_resource_keys={RESOURCE_KEY, IO_MANAGER_KEY},
        out=dg.Out(dg.Nothing),
    )
    def apply_notifications(context: dg.OpExecutionContext, config: NotificationRunConfig) -> None:
        """Apply each stream's pending notifications, one transaction per stream (notifications/apply.py)."""
        chosen = chosen_streams(streams, config.streams, "the notification run's config")
        zoho_crm: ZohoCRMResource = getattr(context.resources, RESOURCE_KEY)
        engine = tables_engine(getattr(context.resources, IO_MANAGER_KEY), context.log.info)
        client = zoho_crm.get_client(announce=context.log.info)
        totals = {"notifications": 0, "records_received": 0, "deletions_marked": 0, "api_credits": 0}
        for stream in chosen:
            with zoho_errors_as_failures(f"Applying the notifications of {stream.target}"):
                applied = apply_stream(client, engine, stream, context.run_id)
            if not applied.notifications:
                continue
            metadata = {key: value for key, value in vars(applied).items() if key != "stream"}
            context.log.info(
                f"{stream.target}: {applied.notifications} notifications ({applied.changed_ids} ids changed, "
                f"{applied.deleted_ids} deleted): {applied.records_received} records read, "
                f"{applied.inserted} inserted, {applied.updated} updated, {applied.deletions_marked} "
                f"deletions marked, {applied.api_calls} calls"
            )
            observe_stream(context, keys[stream.spec.name], "zoho_dagster/notifications", metadata, totals)
        context.add_output_metadata(totals)

    @dg.job(
        name=JOB_NAME,
        executor_def=dg.in_process_executor,
        description="Applies Zoho's change notifications: reads the notified records again and writes them "
        "(newest Modified_Time wins), marks the notified deletions.",
    )
    def zoho_crm_notification_job() -> None:
        apply_notifications()

    @dg.op(
        name="keep_notification_channels",
        required_resource_keys={RESOURCE_KEY, IO_MANAGER_KEY},
        out=dg.Out(dg.Nothing),
    )
    def keep_notification_channels(context: dg.OpExecutionContext) -> None:
        """Enable, renew and disable the channels (notifications/channels.py)."""
        try:
            settings = load_settings(need_url=True)
        except NotificationConfigError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None
        zoho_crm: ZohoCRMResource = getattr(context.resources, RESOURCE_KEY)
        engine = tables_engine(getattr(context.resources, IO_MANAGER_KEY), context.log.info)
        with zoho_errors_as_failures("Keeping the notification channels"):
            client = watch.with_notifications_scope(zoho_crm.get_client(announce=context.log.info))
            report = sync_channels(
                client, engine, settings, all_streams, datetime.now(timezone.utc), context.run_id
            )
        context.log.info(report.sentence())
        context.add_output_metadata(
            {
                "enabled": dg.MetadataValue.json(report.enabled),
                "renewed": dg.MetadataValue.json(report.renewed),
                "disabled": dg.MetadataValue.json(report.disabled),
                "api_calls": report.calls,
                "api_credits": report.credits,
            }
        )

    @dg.job(
        name=CHANNELS_JOB_NAME,
        executor_def=dg.in_process_executor,
        description="Keeps one Zoho notification channel per watched stream: enabled, renewed before it "
        "lapses, disabled once the stream is no longer synced.",
    )
    def zoho_crm_notification_channels() -> None:
        keep_notification_channels()

    schedule = dg.ScheduleDefinition(
        name=CHANNELS_SCHEDULE_NAME,
        cron_schedule=CHANNELS_CRON,
        execution_timezone="UTC",
        job=zoho_crm_notification_channels,
        default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
        description="Hourly: enables, renews and disables the Zoho notification channels.",
    )

    # By name, not by object: a sensor given an op job is rebuilt when the Definitions bind its resources, and
    # that rebuild makes Dagster 1.13.27 print a BetaWarning about its own `owners` parameter.
    @dg.sensor(
        name=SENSOR_NAME,
        job_name=JOB_NAME,
        minimum_interval_seconds=interval_seconds or notify_sensor_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        required_resource_keys={IO_MANAGER_KEY},
        description="Turns the pending Zoho change notifications into runs that apply them (no Zoho call).",
    )
    def zoho_crm_notification_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        pending = store.pending(tables_engine(getattr(context.resources, IO_MANAGER_KEY)))
        requests = notification_run_requests(pending, streams, _in_flight(context.instance))
        if not requests:
            reason = "no pending notifications" if not pending else "their runs are in flight"
            return dg.SensorResult(skip_reason=dg.SkipReason(reason))
        return dg.SensorResult(run_requests=requests)

    return (
        [zoho_crm_notification_job, zoho_crm_notification_channels],
        [schedule],
        [zoho_crm_notification_sensor],
    )


