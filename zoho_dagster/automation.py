"""Keeping the copy fresh unattended: a schedule for the open partition and a sensor for changed streams.

Two complementary triggers over one job (every replicated stream):

- ``zoho_crm_freshness_schedule`` fires every ``ZOHO_DAGSTER_FRESHNESS_MINUTES`` (default 60) in UTC and
  syncs today's (open) partition of every incremental stream plus the full-refresh streams. Its first tick(s)
  after midnight (every tick of the first hour, at least one) also sync yesterday's partition once more,
  which closes it: changes made between yesterday's last tick and midnight land there.
- ``zoho_crm_change_sensor`` asks Zoho, one call per incremental stream with ``If-Modified-Since`` (a 304
  costs next to nothing and says "unchanged"), which streams changed since its cursor, and requests runs only
  for those streams and only for the partitions their changes can be in (from the day of the stream's last
  check to today). Its cursor is JSON ``{stream: ISO time of the last check}``; run keys name the streams and
  the checked times, so an evaluation repeated from the same cursor launches nothing twice.

Both are stopped by default, as Dagster's are, so that loading the project never starts spending API credits;
``ZOHO_DAGSTER_AUTOMATION=on`` starts both (``default_status=RUNNING``).
"""

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import dagster as dg

from zoho_dagster.client import ZohoError
from zoho_dagster.environment import (
    FRESHNESS_VARIABLE,
    AutomationConfigError,
    automation_enabled,
    freshness_minutes_setting,
    sensor_interval_seconds,
)
from zoho_dagster.replication import ReplicatedStream, replicated
from zoho_dagster.streams import StreamSpec
from zoho_dagster.translator import DagsterZohoTranslator

if TYPE_CHECKING:  # the public name dagster exports for what define_asset_job returns
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

JOB_NAME = "zoho_crm_sync_job"
SCHEDULE_NAME = "zoho_crm_freshness_schedule"
SENSOR_NAME = "zoho_crm_change_sensor"
CLOSING_WINDOW = timedelta(hours=1)
"""Ticks within this time after midnight (and at least the first one) also sync yesterday's partition."""


def freshness_minutes() -> int:
    """``ZOHO_DAGSTER_FRESHNESS_MINUTES``: how old the open partition may get; the schedule's interval."""
    minutes = freshness_minutes_setting()
    freshness_cron(minutes)
    return minutes


def freshness_cron(minutes: int) -> str:
    """A cron string firing every ``minutes`` from midnight UTC; only intervals that divide a day evenly."""
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes % 60 == 0 and 1440 % minutes == 0:
        hours = minutes // 60
        return "0 * * * *" if hours == 1 else "0 0 * * *" if hours == 24 else f"0 */{hours} * * *"
    raise AutomationConfigError(
        f"{FRESHNESS_VARIABLE} is {minutes}, which does not divide an hour or a day evenly; "
        "use e.g. 5, 10, 15, 30, 60, 120, 180, 360, 720 or 1440."
    )


def _schedule_status(enabled: bool) -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if enabled else dg.DefaultScheduleStatus.STOPPED


def _sensor_status(enabled: bool) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED


AssetKeys = Mapping[str, dg.AssetKey]
"""Stream name → asset key, as the translator names the assets."""


def asset_keys(
    specs: Sequence[StreamSpec | ReplicatedStream], translator: DagsterZohoTranslator | None = None
) -> dict[str, dg.AssetKey]:
    """The asset key of every stream in ``specs``, from ``translator`` (default: the stream's name)."""
    translator = translator or DagsterZohoTranslator()
    streams = [replicated(spec) for spec in specs]
    return {stream.spec.name: translator.get_asset_key(stream) for stream in streams}


def _keys(names: Sequence[str], keys: AssetKeys | None) -> list[dg.AssetKey]:
    return [keys[name] if keys and name in keys else dg.AssetKey(name) for name in names]


def _specs(specs: Sequence[StreamSpec | ReplicatedStream]) -> list[StreamSpec]:
    return [replicated(spec).spec for spec in specs]


def build_sync_job(
    specs: Sequence[StreamSpec | ReplicatedStream], keys: AssetKeys | None = None
) -> "UnresolvedAssetJobDefinition":
    """The job the schedule and the sensor launch: every replicated stream (run requests pick subsets).

    Its steps run in the run's own process (``in_process_executor``, set on this job rather than on the
    ``Definitions``, so a project that merges the package's definitions keeps its own executor; builder.py
    says why in-process).
    """
    return dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.assets(*_keys([spec.name for spec in _specs(specs)], keys)),
        description="Syncs Zoho CRM streams; launched by the freshness schedule and the change sensor.",
        executor_def=dg.in_process_executor,
    )


def _target(
    specs: Sequence[StreamSpec], job: "UnresolvedAssetJobDefinition | None", keys: AssetKeys | None
) -> dict[str, object]:
    """``job=`` the shared job when given; else ``target=`` the streams (Dagster makes a job of its own)."""
    if job is not None:
        return {"job": job}
    return {"target": dg.AssetSelection.assets(*_keys([spec.name for spec in specs], keys))}


def build_automation(
    specs: Sequence[StreamSpec | ReplicatedStream],
    partitions_def: dg.TimeWindowPartitionsDefinition,
    resource_key: str = "zoho_crm",
    translator: DagsterZohoTranslator | None = None,
    minutes: int | None = None,
) -> tuple[list["UnresolvedAssetJobDefinition"], list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    """The sync job, the freshness schedule and the change sensor, configured from the environment (the
    schedule's interval: ``minutes``, else ``ZOHO_DAGSTER_FRESHNESS_MINUTES``)."""
    keys = asset_keys(specs, translator)
    job = build_sync_job(specs, keys)
    schedules = build_schedules(specs, partitions_def, job=job, minutes=minutes, keys=keys)
    sensors = build_sensors(specs, partitions_def, job=job, resource_key=resource_key, keys=keys)
    return [job], schedules, sensors


def _partition_key(partitions_def: dg.TimeWindowPartitionsDefinition, moment: datetime) -> str:
    return partitions_def.get_partition_key_for_timestamp(moment.timestamp())


def _first_partition_start(partitions_def: dg.TimeWindowPartitionsDefinition) -> datetime:
    first = partitions_def.get_first_partition_key()
    if first is None:
        return datetime.max.replace(tzinfo=timezone.utc)
    return partitions_def.start_time_for_partition_key(first)


def schedule_run_requests(
    now: datetime,
    incremental: Sequence[str],
    full_refresh: Sequence[str],
    partitions_def: dg.TimeWindowPartitionsDefinition,
    keys: AssetKeys | None = None,
) -> list[dg.RunRequest]:
    """One tick's runs: today's partition, the full-refresh streams and, after midnight, yesterday's.

    Run keys carry the tick's time: a tick retried after a daemon crash launches nothing twice, and the next
    tick (a new key) is a new run.
    """
    now = now.astimezone(timezone.utc)
    tick = now.strftime("%Y-%m-%dT%H:%MZ")
    requests: list[dg.RunRequest] = []
    first_start = _first_partition_start(partitions_def)

    def partition_run(kind: str, partition: str, trigger: str) -> dg.RunRequest:
        return dg.RunRequest(
            run_key=f"{kind}:{partition}:{tick}",
            partition_key=partition,
            asset_selection=_keys(incremental, keys),
            tags={"zoho_dagster/trigger": trigger},
        )

    if incremental and now >= first_start:
        requests.append(partition_run("open", _partition_key(partitions_def, now), "freshness"))
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        yesterday_moment = midnight - timedelta(seconds=1)
        if now - midnight < CLOSING_WINDOW and yesterday_moment >= first_start:
            yesterday = _partition_key(partitions_def, yesterday_moment)
            requests.append(partition_run("close", yesterday, "close-day"))
    if full_refresh:
        requests.append(
            dg.RunRequest(
                run_key=f"full-refresh:{tick}",
                asset_selection=_keys(full_refresh, keys),
                tags={"zoho_dagster/trigger": "freshness"},
            )
        )
    return requests


def build_schedules(
    specs: Sequence[StreamSpec | ReplicatedStream],
    partitions_def: dg.TimeWindowPartitionsDefinition,
    job: "UnresolvedAssetJobDefinition | None" = None,
    minutes: int | None = None,
    enabled: bool | None = None,
    keys: AssetKeys | None = None,
) -> list[dg.ScheduleDefinition]:
    """The freshness schedule over ``specs`` (settings from the environment unless given)."""
    specs = _specs(specs)
    interval = minutes if minutes is not None else freshness_minutes()
    cron = freshness_cron(interval)
    running = automation_enabled() if enabled is None else enabled
    incremental = [spec.name for spec in specs if spec.incremental]
    full_refresh = [spec.name for spec in specs if not spec.incremental]

    @dg.schedule(
        name=SCHEDULE_NAME,
        cron_schedule=cron,
        execution_timezone="UTC",
        **_target(specs, job, keys),
        default_status=_schedule_status(running),
        description=(
            f"Every {interval} min (UTC): syncs today's partition and the full-refresh streams; the ticks of "
            "the first hour after midnight also close yesterday's partition."
        ),
    )
    def zoho_crm_freshness_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        now = context.scheduled_execution_time or datetime.now(timezone.utc)
        return schedule_run_requests(now, incremental, full_refresh, partitions_def, keys)

    return [zoho_crm_freshness_schedule]


def _read_cursor(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def change_run_requests(
    changed: dict[str, datetime],
    now: datetime,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    keys: AssetKeys | None = None,
) -> list[dg.RunRequest]:
    """Runs for streams that changed: one per first affected partition, covering it through today.

    A record modified after ``since`` lies in a partition from the day of ``since`` to today (partitions are
    days of ``Modified_Time``), so only those are requested; several days become one single-run range.
    """
    first_start = _first_partition_start(partitions_def)
    today = _partition_key(partitions_def, now)
    groups: dict[str, list[str]] = {}
    for name, since in changed.items():
        start = _partition_key(partitions_def, max(since, first_start))
        groups.setdefault(start, []).append(name)
    requests = []
    for start, names in sorted(groups.items()):
        names.sort()
        checked = ",".join(f"{name}@{changed[name].isoformat()}" for name in names)
        key = f"changed:{start}..{today}:{checked}"
        tags = {"zoho_dagster/trigger": "change-sensor"}
        if start == today:
            requests.append(
                dg.RunRequest(
                    run_key=key,
                    partition_key=today,
                    asset_selection=_keys(names, keys),
                    tags=tags,
                )
            )
        else:
            tags.update(
                {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": today}
            )
            requests.append(
                dg.RunRequest(run_key=key, asset_selection=_keys(names, keys), tags=tags)
            )
    return requests


def build_sensors(
    specs: Sequence[StreamSpec | ReplicatedStream],
    partitions_def: dg.TimeWindowPartitionsDefinition,
    job: "UnresolvedAssetJobDefinition | None" = None,
    resource_key: str = "zoho_crm",
    interval_seconds: int | None = None,
    enabled: bool | None = None,
    keys: AssetKeys | None = None,
) -> list[dg.SensorDefinition]:
    """The change sensor over the incremental ``specs``; it reads Zoho through resource ``resource_key``."""
    specs = _specs(specs)
    watched = [spec for spec in specs if spec.incremental and spec.module]
    running = automation_enabled() if enabled is None else enabled

    @dg.sensor(
        name=SENSOR_NAME,
        **_target(specs, job, keys),
        minimum_interval_seconds=interval_seconds or sensor_interval_seconds(),
        default_status=_sensor_status(running),
        required_resource_keys={resource_key},
        description=(
            "Asks Zoho (one If-Modified-Since call per incremental stream; 304 = unchanged) which streams "
            "changed since the last check and syncs only those, for the partitions the changes can be in."
        ),
    )
    def zoho_crm_change_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        cursor = _read_cursor(context.cursor)
        now = datetime.now(timezone.utc)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        client = getattr(context.resources, resource_key).get_client()
        changed: dict[str, datetime] = {}
        failed: list[str] = []
        for spec in watched:
            since = _parse_time(cursor.get(spec.name)) or midnight
            try:
                if client.changed_since(spec.module, since):
                    changed[spec.name] = since
            except ZohoError as error:
                # The stream keeps its old cursor, so the next evaluation asks again from the same time.
                context.log.warning(f"Could not ask Zoho whether {spec.name} changed: {error}")
                failed.append(spec.name)
                continue
            cursor[spec.name] = now.isoformat(timespec="seconds")
        requests = change_run_requests(changed, now, partitions_def, keys)
        if not requests:
            reason = "no stream changed" + (f" (not checked: {', '.join(failed)})" if failed else "")
            return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=json.dumps(cursor))
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))

    return [zoho_crm_change_sensor]
