"""Channels kept alive against the simulator: one per watched stream (never Notes), nothing done twice,
renewed before they lapse, enabled again when Zoho forgot them, disabled when a stream is no longer synced,
every call's credit in the ledger; and the channels job, run as Dagster runs it.

What the simulator holds after each step is read from its control plane, not from the code under test.
"""

from datetime import datetime, timedelta, timezone
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from zoho_dagster.notifications import store, watch
from zoho_dagster.notifications.channels import sync_channels
from zoho_dagster.notifications.config import NotifySettings
from zoho_dagster.notifications.sensor import CHANNELS_JOB_NAME, build_notifications
from zoho_dagster.postgres import credit_ledger
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.replication import ReplicatedStream, replicated
from zoho_dagster.streams import STREAMS_BY_NAME
from zoho_dagster_tests.notifications_support import SECRET
from zoho_dagster_tests.operations_support import resources, zoho_resource

URL = "http://127.0.0.1:9/zoho/notify"  # never posted to here: no record changes


def streams(*names: str) -> list[ReplicatedStream]:
    return [replicated(STREAMS_BY_NAME[name]) for name in names]


def held(simulator: Any) -> dict[str, dict[str, Any]]:
    """The simulator's live channels by channel id."""
    return {c["channel_id"]: c for c in simulator.control.notifications()["channels"] if c["live"]}


def test_channels_are_kept_and_nothing_is_done_twice(simulator: Any, database_url: str) -> None:
    settings = NotifySettings(SECRET, URL)
    engine = make_engine(database_url)
    client = watch.with_notifications_scope(zoho_resource(simulator, database_url).get_client())
    now = datetime.now(timezone.utc)

    first = sync_channels(client, engine, settings, streams("leads", "deals", "notes", "users"), now, "r1")
    assert sorted(first.enabled) == ["deals", "leads"] and (first.calls, first.credits) == (1, 1)
    channels = held(simulator)
    assert set(channels) == {settings.channel_id("Leads"), settings.channel_id("Deals")}
    assert channels[settings.channel_id("Leads")]["events"] == ["Leads.create", "Leads.delete", "Leads.edit"]
    assert channels[settings.channel_id("Leads")]["notify_url"] == URL
    assert 22.9 * 3600 < channels[settings.channel_id("Leads")]["expires_in_seconds"] <= 23 * 3600

    second = sync_channels(client, engine, settings, streams("leads", "deals", "notes"), now, "r2")
    assert (second.calls, sorted(second.unchanged)) == (0, ["deals", "leads"])

    # Twelve hours on (both clocks), the channels are due: renewed in one call for another 23 hours.
    simulator.control.advance_clock(12 * 3600 + 60)
    later = now + timedelta(hours=12, minutes=1)
    renewed = sync_channels(client, engine, settings, streams("leads", "deals"), later, "r3")
    assert sorted(renewed.renewed) == ["deals", "leads"] and renewed.credits == 1  # (+ a token refresh)
    assert all(22.9 * 3600 < c["expires_in_seconds"] <= 23 * 3600 for c in held(simulator).values())

    # Zoho forgot the Leads channel (disabled elsewhere, or lapsed unseen): the next renewal enables it again.
    _disable_in_zoho(simulator, database_url, settings.channel_id("Leads"))
    with engine.begin() as conn:  # both due again
        conn.execute(sa.update(store.CHANNELS).values(expires_at=later + timedelta(hours=1)))
    revived = sync_channels(client, engine, settings, streams("leads", "deals"), later, "r4")
    assert sorted(revived.renewed) == ["deals", "leads"]
    assert revived.calls == 4  # the batch refused; then Leads refused and enabled again, Deals renewed
    assert set(held(simulator)) == {settings.channel_id("Leads"), settings.channel_id("Deals")}

    # Deals no longer synced: its channel is disabled and forgotten, its pending notifications set aside.
    store.insert(
        engine,
        store.Notification(settings.channel_id("Deals"), "Deals", "update", ("1",), later),
    )
    with engine.begin() as conn:  # and an applied one from last month
        conn.execute(
            sa.insert(store.NOTIFICATIONS).values(
                channel_id=settings.channel_id("Leads"),
                module="Leads",
                operation="insert",
                ids=["2"],
                server_time=later,
                received_at=later - timedelta(days=30),
                consumed_at=later - timedelta(days=30),
            )
        )
    dropped = sync_channels(client, engine, settings, streams("leads"), later, "r5")
    assert dropped.disabled == ["deals"] and dropped.discarded_notifications == 1
    assert dropped.pruned_notifications == 1  # the month-old one; the one just set aside stays a week
    assert set(held(simulator)) == {settings.channel_id("Leads")}
    assert set(store.channels(engine)) == {settings.channel_id("Leads")}
    assert store.pending(engine) == {}

    gone = sync_channels(client, engine, settings, [], later, "r6", disable_all=True)
    assert gone.disabled == ["leads"] and held(simulator) == {}
    spent = credit_ledger.spent_since(engine, now - timedelta(days=1))
    total = first.credits + renewed.credits + revived.credits + dropped.credits + gone.credits
    assert spent == total > 0


def _disable_in_zoho(simulator: Any, database_url: str, channel_id: str) -> None:
    """Disable ``channel_id`` with Zoho's own API, as another tool or a person would."""
    client = watch.with_notifications_scope(zoho_resource(simulator, database_url).get_client())
    watch.disable(client, [channel_id])


def test_the_channels_job_runs_as_dagster_runs_it(
    simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOHO_DAGSTER_NOTIFY_SECRET", SECRET)
    monkeypatch.setenv("ZOHO_DAGSTER_NOTIFY_URL", URL)
    jobs, schedules, sensors = build_notifications(streams("leads", "notes"), enabled=False)
    job = next(j for j in jobs if j.name == CHANNELS_JOB_NAME)
    assert schedules[0].cron_schedule == "30 * * * *" and schedules[0].job_name == CHANNELS_JOB_NAME
    assert schedules[0].default_status == dg.DefaultScheduleStatus.STOPPED
    assert sensors[0].default_status == dg.DefaultSensorStatus.STOPPED
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, resources=resources(simulator, database_url))
    assert result.success
    assert set(held(simulator)) == {NotifySettings(SECRET).channel_id("Leads")}
    monkeypatch.setenv("ZOHO_DAGSTER_NOTIFY_URL", "http://hooks.example.com/zoho")
    with dg.DagsterInstance.ephemeral() as instance:
        failed = job.execute_in_process(
            instance=instance, resources=resources(simulator, database_url), raise_on_error=False
        )
    assert not failed.success
    [failure] = [e for e in failed.all_events if e.is_step_failure]
    assert "https" in str(failure.step_failure_data.error.message)


def test_the_commands(
    simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from zoho_dagster.cli import main
    from zoho_dagster_tests.postgres.sync_helpers import use_simulator

    use_simulator(monkeypatch, simulator, database_url)
    monkeypatch.delenv("ZOHO_DAGSTER_REPLICATION", raising=False)
    monkeypatch.setenv("ZOHO_DAGSTER_NOTIFY_SECRET", SECRET)
    monkeypatch.delenv("ZOHO_DAGSTER_NOTIFY_URL", raising=False)
    assert main(["notifications", "subscribe"]) == 1
    assert "ZOHO_DAGSTER_NOTIFY_URL is unset" in capsys.readouterr().err
    monkeypatch.setenv("ZOHO_DAGSTER_NOTIFY_URL", URL)
    assert main(["notifications", "subscribe"]) == 0
    out = capsys.readouterr().out
    assert (
        "enabled accounts, calls, campaigns, contacts, deals, leads, meetings" in out and "notes" not in out
    )
    assert main(["notifications", "subscribe"]) == 0
    assert "(0 calls, 0 credits)" in capsys.readouterr().out
    assert main(["notifications", "status"]) == 0
    status = capsys.readouterr().out
    assert "leads" in status and "expires in 23.0 h" in status and "0 pending" in status
    assert main(["notifications", "unsubscribe"]) == 0
    assert "disabled accounts" in capsys.readouterr().out and held(simulator) == {}
