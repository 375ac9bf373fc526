"""Keeping one notification channel per synced record stream alive: enable, renew, disable.

``zoho-dagster notifications subscribe`` and the ``zoho_crm_notification_channels`` job call
:func:`sync_channels`, which compares the channels the streams need with those
``zoho_dagster.notification_channels`` holds and calls Zoho only for the difference:

- a stream without its channel (or whose channel posts elsewhere): enabled, all events of its module
  (``{Module}.all``), to ``ZOHO_DAGSTER_NOTIFY_URL``, with the channel's token (:mod:`.config`);
- a channel with less than :data:`RENEW_BEFORE` left: renewed (``PATCH``) for :data:`LIFETIME`; one that Zoho
  no longer knows (it expired unseen, or was disabled elsewhere) is enabled again;
- a channel of a stream no longer synced: disabled, and its pending notifications set aside;
- anything else: nothing. A second run right after the first makes no call at all.

Each pass also deletes the notifications consumed more than a week ago, so the table stays small.

Notes is never watched: Zoho's Notifications API does not serve it (docs/zoho-crm-api.md §3.12); the polling
sensor and the freshness schedule keep it fresh. Each call costs a credit, recorded in the credit ledger.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from zoho_dagster.client import ZohoAPIError, ZohoClient
from zoho_dagster.notifications import store, watch
from zoho_dagster.notifications.config import NotifySettings
from zoho_dagster.postgres import credit_ledger
from zoho_dagster.replication import ReplicatedStream, replicated
from zoho_dagster.streams import StreamSpec

UNWATCHABLE = frozenset({"Notes"})
"""Record modules Zoho's Notifications API does not serve (its supported-modules list, §3.12)."""
LIFETIME = timedelta(hours=23)
"""Expiry asked for a channel. Zoho's maximum is one week by its v7/v8 pages and one day by some v6 copies,
and an expiry past the maximum silently becomes one hour (§3.12): under a day is right either way."""
RENEW_BEFORE = timedelta(hours=12)
"""A channel with less than this left is renewed: the hourly schedule then has a dozen tries before it
lapses."""
LEDGER_STREAM = "notification_channels"
"""The credit ledger's ``stream`` for the calls made here."""


@dataclass(frozen=True)
class WatchedStream:
    """A stream whose module is watched, and its channel id."""

    stream: str
    module: str
    channel_id: str


def watched_streams(
    specs: Sequence[StreamSpec | ReplicatedStream], settings: NotifySettings
) -> list[WatchedStream]:
    """The incremental record streams of ``specs`` Zoho can notify about (not Notes), with their channels."""
    watched = []
    for spec in (replicated(s).spec for s in specs):
        if spec.incremental and spec.module and spec.module not in UNWATCHABLE:
            watched.append(WatchedStream(spec.name, spec.module, settings.channel_id(spec.module)))
    return watched


@dataclass
class ChannelReport:
    """What one pass did (each list holds stream names)."""

    enabled: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    discarded_notifications: int = 0
    pruned_notifications: int = 0
    """Consumed notifications older than a week, deleted (:data:`~.store.KEEP_CONSUMED`)."""
    calls: int = 0
    credits: int = 0

    def sentence(self) -> str:
        parts = []
        for label, names in (
            ("enabled", self.enabled),
            ("renewed", self.renewed),
            ("disabled", self.disabled),
            ("unchanged", self.unchanged),
        ):
            if names:
                parts.append(f"{label} {', '.join(sorted(names))}")
        return (
            f"Notification channels: {'; '.join(parts) or 'none needed'} "
            f"({self.calls} calls, {self.credits} credits)."
        )


def sync_channels(
    client: ZohoClient,
    engine: sa.Engine,
    settings: NotifySettings,
    specs: Sequence[StreamSpec | ReplicatedStream],
    now: datetime,
    run_id: str,
    disable_all: bool = False,
) -> ChannelReport:
    """Make Zoho's channels match the streams of ``specs`` (module docstring); ``disable_all`` disables every
    stored channel instead."""
    if not disable_all and not settings.url:
        raise ValueError("sync_channels needs the notify URL (load_settings(need_url=True))")
    store.ensure_tables(engine)
    wanted = [] if disable_all else watched_streams(specs, settings)
    stored = store.channels(engine)
    report = ChannelReport()
    before = (client.stats.calls, client.stats.credits)
    try:
        fresh, due = [], []
        for stream in wanted:
            known = stored.get(stream.channel_id)
            if known is None or known.notify_url != settings.url or known.module != stream.module:
                fresh.append(stream)
            elif known.expires_at - now < RENEW_BEFORE:
                due.append(stream)
            else:
                report.unchanged.append(stream.stream)
        if fresh:
            _save(engine, fresh, watch.enable(client, _channels(fresh, settings, now), now), settings)
            report.enabled += [s.stream for s in fresh]
        if due:
            renewed = _renew(client, due, settings, now)
            _save(engine, due, renewed, settings)
            report.renewed += [s.stream for s in due]
        wanted_ids = {stream.channel_id for stream in wanted}
        gone = [channel for channel in stored.values() if channel.channel_id not in wanted_ids]
        if gone:
            watch.disable(client, [channel.channel_id for channel in gone])
            store.forget_channels(engine, [channel.channel_id for channel in gone])
            report.disabled += [channel.stream for channel in gone]
            watched_modules = {stream.module for stream in wanted}
            report.discarded_notifications = store.discard_modules(
                engine,
                [channel.module for channel in gone if channel.module not in watched_modules],
                "discarded: stream no longer synced",
            )
    finally:
        report.calls = client.stats.calls - before[0]
        report.credits = client.stats.credits - before[1]
        credit_ledger.record(engine, run_id, LEDGER_STREAM, report.credits)
    report.pruned_notifications = store.prune(engine)
    return report


def _channels(
    streams: Sequence[WatchedStream], settings: NotifySettings, now: datetime
) -> list[watch.Channel]:
    assert settings.url is not None
    return [
        watch.Channel(s.channel_id, s.module, settings.url, settings.token(s.channel_id), now + LIFETIME)
        for s in streams
    ]


def _renew(
    client: ZohoClient, due: Sequence[WatchedStream], settings: NotifySettings, now: datetime
) -> dict[str, datetime]:
    """Renew ``due`` in one call; if Zoho refuses, one at a time, enabling again each channel it refuses
    (a channel it no longer knows)."""
    channels = _channels(due, settings, now)
    try:
        return watch.renew(client, channels, now)
    except ZohoAPIError:
        if len(channels) == 1:
            return watch.enable(client, channels, now)
    expiries: dict[str, datetime] = {}
    for channel in channels:
        try:
            expiries.update(watch.renew(client, [channel], now))
        except ZohoAPIError:
            expiries.update(watch.enable(client, [channel], now))
    return expiries


def _save(
    engine: sa.Engine,
    streams: Sequence[WatchedStream],
    expiries: dict[str, datetime],
    settings: NotifySettings,
) -> None:
    assert settings.url is not None
    store.save_channels(
        engine,
        [
            store.StoredChannel(s.channel_id, s.stream, s.module, settings.url, expiries[s.channel_id])
            for s in streams
        ],
    )
