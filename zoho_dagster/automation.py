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
import os
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import dagster as dg

from zoho_dagster.client.errors import ZohoError
from zoho_dagster.streams import StreamSpec

if TYPE_CHECKING:  # the public name dagster exports for what define_asset_job returns
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

AUTOMATION_VARIABLE = "ZOHO_DAGSTER_AUTOMATION"
FRESHNESS_VARIABLE = "ZOHO_DAGSTER_FRESHNESS_MINUTES"
SENSOR_INTERVAL_VARIABLE = "ZOHO_DAGSTER_SENSOR_SECONDS"
DEFAULT_FRESHNESS_MINUTES = 60
DEFAULT_SENSOR_SECONDS = 300
JOB_NAME = "zoho_crm_sync_job"
SCHEDULE_NAME = "zoho_crm_freshness_schedule"
SENSOR_NAME = "zoho_crm_change_sensor"
CLOSING_WINDOW = timedelta(hours=1)
"""Ticks within this time after midnight (and at least the first one) also sync yesterday's partition."""

_ON = {"on", "true", "1", "yes", "running"}
_OFF = {"", "off", "false", "0", "no", "stopped"}


class AutomationConfigError(ValueError):
    """A bad automation setting; the message names the variable and the fix."""


def automation_enabled() -> bool:
    """Whether ``ZOHO_DAGSTER_AUTOMATION`` asks for the schedule and sensor to start running."""
    value = os.environ.get(AUTOMATION_VARIABLE, "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise AutomationConfigError(
        f"{AUTOMATION_VARIABLE} is {value!r}; "
        "set it to 'on' to start the schedule and sensor or 'off' (the default)."
    )


def _positive_int(variable: str, default: int) -> int:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise AutomationConfigError(f"{variable} is {raw!r}; set it to a whole number greater than 0.")
    return value


def freshness_minutes() -> int:
    """``ZOHO_DAGSTER_FRESHNESS_MINUTES``: how old the open partition may get; the schedule's interval."""
    minutes = _positive_int(FRESHNESS_VARIABLE, DEFAULT_FRESHNESS_MINUTES)
    freshness_cron(minutes)
    return minutes


def sensor_interval_seconds() -> int:
    """``ZOHO_DAGSTER_SENSOR_SECONDS``: the least time between two of the sensor's look-ups."""
    return _positive_int(SENSOR_INTERVAL_VARIABLE, DEFAULT_SENSOR_SECONDS)


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


def build_sync_job(specs: Sequence[StreamSpec]) -> "UnresolvedAssetJobDefinition":
    """The job the schedule and the sensor launch: every replicated stream (run requests pick subsets)."""
    return dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.assets(*[dg.AssetKey(spec.name) for spec in specs]),
        description="Syncs Zoho CRM streams; launched by the freshness schedule and the change sensor.",
    )


def _target(specs: Sequence[StreamSpec], job: "UnresolvedAssetJobDefinition | None") -> dict[str, object]:
    """``job=`` the shared job when given; else ``target=`` the streams (Dagster makes a job of its own)."""
    if job is not None:
        return {"job": job}
    return {"target": dg.AssetSelection.assets(*[dg.AssetKey(spec.name) for spec in specs])}


def build_automation(
    specs: Sequence[StreamSpec],
    partitions_def: dg.TimeWindowPartitionsDefinition,
    resource_key: str = "zoho_crm",
) -> tuple[list["UnresolvedAssetJobDefinition"], list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    """The sync job, the freshness schedule and the change sensor, configured from the environment."""
    job = build_sync_job(specs)
    schedules = build_schedules(specs, partitions_def, job=job)
    sensors = build_sensors(specs, partitions_def, job=job, resource_key=resource_key)
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
            asset_selection=[dg.AssetKey(name) for name in incremental],
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
                asset_selection=[dg.AssetKey(name) for name in full_refresh],
                tags={"zoho_dagster/trigger": "freshness"},
            )
        )
    return requests


def build_schedules(
    specs: Sequence[StreamSpec],
    partitions_def: dg.TimeWindowPartitionsDefinition,
    job: "UnresolvedAssetJobDefinition | None" = None,
    minutes: int | None = None,
    enabled: bool | None = None,
) -> list[dg.ScheduleDefinition]:
    """The freshness schedule over ``specs`` (settings from the environment unless given)."""
    interval = minutes if minutes is not None else freshness_minutes()
    cron = freshness_cron(interval)
    running = automation_enabled() if enabled is None else enabled
    incremental = [spec.name for spec in specs if spec.incremental]
    full_refresh = [spec.name for spec in specs if not spec.incremental]

    @dg.schedule(
        name=SCHEDULE_NAME,
        cron_schedule=cron,
        execution_timezone="UTC",
        **_target(specs, job),
        default_status=_schedule_status(running),
        description=(
            f"Every {interval} min (UTC): syncs today's partition and the full-refresh streams; the ticks of "
            "the first hour after midnight also close yesterday's partition."
        ),
    )
    def zoho_crm_freshness_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        now = context.scheduled_execution_time or datetime.now(timezone.utc)
        return schedule_run_requests(now, incremental, full_refresh, partitions_def)

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
                    asset_selection=[dg.AssetKey(n) for n in names],
                    tags=tags,
                )
            )
        else:
            tags.update(
                {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": today}
            )
            requests.append(
                dg.RunRequest(run_key=key, asset_selection=[dg.AssetKey(n) for n in names], tags=tags)
            )
    return requests


def build_sensors(
    specs: Sequence[StreamSpec],
    partitions_def: dg.TimeWindowPartitionsDefinition,
    job: "UnresolvedAssetJobDefinition | None" = None,
    resource_key: str = "zoho_crm",
    interval_seconds: int | None = None,
    enabled: bool | None = None,
) -> list[dg.SensorDefinition]:
    """The change sensor over the incremental ``specs``; it reads Zoho through resource ``resource_key``."""
    watched = [spec for spec in specs if spec.incremental and spec.module]
    running = automation_enabled() if enabled is None else enabled

    @dg.sensor(
        name=SENSOR_NAME,
        **_target(specs, job),
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
        requests = change_run_requests(changed, now, partitions_def)
        if not requests:
            reason = "no stream changed" + (f" (not checked: {', '.join(failed)})" if failed else "")
            return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=json.dumps(cursor))
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))

    return [zoho_crm_change_sensor]
