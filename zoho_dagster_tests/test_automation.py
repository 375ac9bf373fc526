"""The freshness schedule and the change sensor, against the simulator and a real Postgres."""

import json
import time
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest

from zoho_dagster.assets import build_stream_assets
from zoho_dagster.automation import (
    JOB_NAME,
    SCHEDULE_NAME,
    SENSOR_NAME,
    build_automation,
    build_schedules,
    build_sensors,
    build_sync_job,
    freshness_cron,
    freshness_minutes,
)
from zoho_dagster.environment import AUTOMATION_VARIABLE, FRESHNESS_VARIABLE, AutomationConfigError
from zoho_dagster.partitions import daily_partitions
from zoho_dagster.postgres.io_manager import PostgresIOManager
from zoho_dagster.resource import ZohoCRMResource
from zoho_dagster.streams import stream
from zoho_dagster_tests.operations_support import resources, scalar, today_key

SPECS = [stream("leads"), stream("contacts"), stream("deals"), stream("users")]
UTC = timezone.utc


def definitions(
    simulator: object,
    database_url: str,
    anchor: date,
    minutes: int | None = None,
    enabled: bool | None = None,
) -> dg.Definitions:
    partitions = daily_partitions(anchor)
    job = build_sync_job(SPECS)
    return dg.Definitions(
        assets=build_stream_assets(SPECS, anchor=anchor),
        jobs=[job],
        schedules=build_schedules(SPECS, partitions, job=job, minutes=minutes, enabled=enabled),
        sensors=build_sensors(SPECS, partitions, job=job, enabled=enabled),
        resources=resources(simulator, database_url),
    )


def offline_definitions(
    anchor: date = date(2026, 1, 1), minutes: int | None = None, enabled: bool | None = None
) -> dg.Definitions:
    partitions = daily_partitions(anchor)
    return dg.Definitions(
        assets=build_stream_assets(SPECS, anchor=anchor),
        schedules=build_schedules(SPECS, partitions, minutes=minutes, enabled=enabled),
        sensors=build_sensors(SPECS, partitions, enabled=enabled),
        resources={"zoho_crm": ZohoCRMResource(), "zoho_crm_io_manager": PostgresIOManager()},
    )


def tick(defs: dg.Definitions, when: datetime, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    return list(schedule.evaluate_tick(context).run_requests or [])


def by_trigger(requests: list[dg.RunRequest]) -> dict[str, tuple[str | None, list[str]]]:
    return {
        r.tags["zoho_dagster/trigger"] + (f"@{r.partition_key}" if r.partition_key else ""): (
            r.partition_key,
            sorted(key.to_user_string() for key in r.asset_selection or []),
        )
        for r in requests
    }


def test_cron_follows_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    assert freshness_cron(60) == "0 * * * *"
    assert freshness_cron(15) == "*/15 * * * *"
    assert freshness_cron(120) == "0 */2 * * *"
    assert freshness_cron(1440) == "0 0 * * *"
    with pytest.raises(AutomationConfigError, match="does not divide an hour or a day evenly"):
        freshness_cron(7)
    monkeypatch.delenv(FRESHNESS_VARIABLE, raising=False)
    assert freshness_minutes() == 60
    monkeypatch.setenv(FRESHNESS_VARIABLE, "30")
    assert freshness_minutes() == 30
    monkeypatch.setenv(FRESHNESS_VARIABLE, "soon")
    with pytest.raises(AutomationConfigError, match=f"{FRESHNESS_VARIABLE} is 'soon'; set it to a whole"):
        freshness_minutes()


def test_stopped_by_default_and_one_setting_starts_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTOMATION_VARIABLE, raising=False)
    defs = offline_definitions()
    assert defs.resolve_schedule_def(SCHEDULE_NAME).default_status == dg.DefaultScheduleStatus.STOPPED
    assert defs.resolve_sensor_def(SENSOR_NAME).default_status == dg.DefaultSensorStatus.STOPPED

    monkeypatch.setenv(AUTOMATION_VARIABLE, "on")
    defs = offline_definitions()
    assert defs.resolve_schedule_def(SCHEDULE_NAME).default_status == dg.DefaultScheduleStatus.RUNNING
    assert defs.resolve_sensor_def(SENSOR_NAME).default_status == dg.DefaultSensorStatus.RUNNING

    monkeypatch.setenv(AUTOMATION_VARIABLE, "maybe")
    with pytest.raises(AutomationConfigError, match=f"{AUTOMATION_VARIABLE} is 'maybe'; set it to 'on'"):
        offline_definitions()


def test_schedule_keeps_today_fresh_and_closes_yesterday_after_midnight() -> None:
    with dg.instance_for_test() as instance:
        defs = offline_definitions(minutes=60, enabled=False)
        assert defs.resolve_schedule_def(SCHEDULE_NAME).cron_schedule == "0 * * * *"
        records = ["contacts", "deals", "leads"]

        def at(definitions: dg.Definitions, *clock: int) -> dict[str, tuple[str | None, list[str]]]:
            return by_trigger(tick(definitions, datetime(*clock, tzinfo=UTC), instance))

        assert at(defs, 2026, 3, 10, 14, 0) == {
            "freshness@2026-03-10": ("2026-03-10", records),
            "freshness": (None, ["users"]),
        }
        assert at(defs, 2026, 3, 10, 0, 0) == {
            "freshness@2026-03-10": ("2026-03-10", records),
            "close-day@2026-03-09": ("2026-03-09", records),
            "freshness": (None, ["users"]),
        }
        assert "close-day@2026-03-09" not in at(defs, 2026, 3, 10, 1, 0)

        every_quarter = offline_definitions(minutes=15, enabled=False)
        assert every_quarter.resolve_schedule_def(SCHEDULE_NAME).cron_schedule == "*/15 * * * *"
        assert "close-day@2026-03-09" in at(every_quarter, 2026, 3, 10, 0, 45)
        assert "close-day@2026-03-09" not in at(every_quarter, 2026, 3, 10, 1, 0)

        # The anchor day has no yesterday to close.
        assert set(at(defs, 2026, 1, 1, 0, 0)) == {"freshness@2026-01-01", "freshness"}

        keys = [r.run_key for r in tick(defs, datetime(2026, 3, 10, 0, 0, tzinfo=UTC), instance)]
        assert len(set(keys)) == len(keys) == 3


def test_schedule_tick_runs_against_the_simulator(simulator: object, database_url: str) -> None:
    today = datetime.now(UTC)
    defs = definitions(simulator, database_url, today.date() - timedelta(days=3), minutes=60, enabled=False)
    with dg.instance_for_test() as instance:
        requests = tick(defs, today.replace(minute=0, second=0, microsecond=0), instance)
        job = defs.resolve_job_def(JOB_NAME)
        for request in requests:
            result = job.execute_in_process(
                instance=instance,
                partition_key=request.partition_key,
                asset_selection=request.asset_selection,
            )
            assert result.success
    # Today's partition, and in the first hour after midnight UTC also yesterday's (the schedule closes it).
    days = {request.partition_key for request in requests}
    assert today.date().isoformat() in days
    expected_leads = sum(
        1
        for record in simulator.control.truth("Leads")["data"]  # type: ignore[attr-defined]
        if datetime.fromisoformat(record["Modified_Time"]).astimezone(UTC).date().isoformat() in days
    )
    assert scalar(database_url, "SELECT count(*) FROM zoho_crm.leads") == expected_leads
    assert scalar(database_url, "SELECT count(*) FROM zoho_crm.users") > 0


def evaluate(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        repository_def=defs.get_repository_def(),
        resources=defs.resources,
    ) as context:
        return sensor.evaluate_tick(context)


def leads_list_calls(simulator: object) -> int:
    stats = simulator.control.stats()  # type: ignore[attr-defined]
    return sum(n for endpoint, n in stats["by_endpoint"].items() if endpoint.endswith("/crm/v6/Leads"))


def test_sensor_requests_runs_only_for_changed_streams(simulator: object, database_url: str) -> None:
    now = datetime.now(UTC)
    defs = definitions(simulator, database_url, now.date() - timedelta(days=3), enabled=False)
    start = json.dumps({name: now.isoformat(timespec="seconds") for name in ("leads", "contacts", "deals")})
    with dg.instance_for_test() as instance:
        quiet = evaluate(defs, instance, start)
        assert not quiet.run_requests
        assert "no stream changed" in (quiet.skip_message or "")
        # One cheap call per incremental stream, none for users (a full-refresh stream).
        assert leads_list_calls(simulator) == 1
        cursor = json.loads(quiet.cursor or "{}")
        assert set(cursor) == {"leads", "contacts", "deals"}

        lead = simulator.control.truth("Leads")["data"][0]  # type: ignore[attr-defined]
        simulator.control.update("Leads", lead["id"], {"Last_Name": "Sensor-Seen"})  # type: ignore[attr-defined]
        # Zoho's times have whole seconds and If-Modified-Since is inclusive: a change in the very second of a
        # check is seen by that check and the next (at least once, never lost). Step past that second.
        time.sleep(1.1)
        changed = evaluate(defs, instance, quiet.cursor)
        (request,) = changed.run_requests or []
        assert [key.to_user_string() for key in request.asset_selection or []] == ["leads"]
        assert request.partition_key == today_key()
        # The same cursor gives the same run key: a repeated evaluation launches nothing twice.
        again = evaluate(defs, instance, quiet.cursor)
        assert [r.run_key for r in again.run_requests or []] == [request.run_key]
        # The next evaluation from the advanced cursor sees nothing new.
        assert not evaluate(defs, instance, changed.cursor).run_requests

        result = defs.resolve_job_def(JOB_NAME).execute_in_process(
            instance=instance, partition_key=request.partition_key, asset_selection=request.asset_selection
        )
        assert result.success
    name = scalar(database_url, "SELECT last_name FROM zoho_crm.leads WHERE id = :id", id=lead["id"])
    assert name == "Sensor-Seen"


def test_sensor_covers_every_day_since_its_last_check(simulator: object, database_url: str) -> None:
    now = datetime.now(UTC)
    two_days_ago = now - timedelta(days=2)
    defs = definitions(simulator, database_url, now.date() - timedelta(days=5), enabled=False)
    cursor = json.dumps({name: two_days_ago.isoformat() for name in ("leads", "contacts", "deals")})
    contact = simulator.control.truth("Contacts")["data"][0]  # type: ignore[attr-defined]
    simulator.control.update("Contacts", contact["id"], {"Last_Name": "Late"})  # type: ignore[attr-defined]
    with dg.instance_for_test() as instance:
        result = evaluate(defs, instance, cursor)
    requests = {
        tuple(k.to_user_string() for k in r.asset_selection or []): r for r in result.run_requests or []
    }
    assert "contacts" in {name for names in requests for name in names}
    (contacts_request,) = [r for names, r in requests.items() if "contacts" in names]
    assert contacts_request.partition_key is None
    assert contacts_request.tags["dagster/asset_partition_range_start"] == two_days_ago.strftime("%Y-%m-%d")
    assert contacts_request.tags["dagster/asset_partition_range_end"] == today_key()


def test_sensor_keeps_the_cursor_of_a_stream_zoho_refuses(simulator: object, database_url: str) -> None:
    """A client without the Deals scope: deals keeps its cursor and is asked again next time; others go on."""
    now = datetime.now(UTC)
    scopes = ["ZohoCRM.modules.leads.READ", "ZohoCRM.modules.contacts.READ"]
    client = simulator.control.add_client(scopes)  # type: ignore[attr-defined]
    org = simulator.primary  # type: ignore[attr-defined]
    # A refresh token carries exactly the scopes it was granted (the client-credentials grant asks anew).
    limited = ZohoCRMResource(
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        refresh_token=client["refresh_token"],
        accounts_url=org["accounts_url"],
        api_domain=org["api_domain"],
        database_url=database_url,
    )
    partitions = daily_partitions(now.date() - timedelta(days=2))
    defs = dg.Definitions(
        assets=build_stream_assets(SPECS, anchor=now.date() - timedelta(days=2)),
        sensors=build_sensors(SPECS, partitions, enabled=False),
        resources={**resources(simulator, database_url), "zoho_crm": limited},
    )
    old = (now - timedelta(minutes=5)).isoformat(timespec="seconds")
    with dg.instance_for_test() as instance:
        result = evaluate(defs, instance, json.dumps({"leads": old, "contacts": old, "deals": old}))
    cursor = json.loads(result.cursor or "{}")
    assert cursor["deals"] == old
    assert cursor["leads"] != old and cursor["contacts"] != old


def test_replication_checks_schedule_and_sensor_load_together() -> None:
    """What definitions.py wires: replication assets, their checks, the job, the schedule, the sensor."""
    from zoho_dagster.checks import build_checks
    from zoho_dagster.replication import parse_replication

    replicated = parse_replication(
        "defaults: {object: 'crm.{stream_name}'}\nstreams: {'*': , users: {mode: full-refresh}}",
        custom_streams=[],
    )
    specs = [r.spec for r in replicated]
    anchor = date(2026, 1, 1)
    jobs, schedules, sensors = build_automation(specs, daily_partitions(anchor))
    defs = dg.Definitions(
        assets=build_stream_assets(specs, {r.spec.name: str(r.target) for r in replicated}, anchor),
        asset_checks=build_checks(replicated, interval_minutes=60),
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={"zoho_crm": ZohoCRMResource(), "zoho_crm_io_manager": PostgresIOManager()},
    )
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def(JOB_NAME)
    assert len(defs.resolve_asset_graph().asset_check_keys) == 12 * 4 + 2 * 2
    assert job is not None
