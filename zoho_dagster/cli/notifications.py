"""``zoho-dagster notifications serve | subscribe | unsubscribe | status``: Zoho's change notifications.

- ``serve``: the receiver Zoho posts to (:mod:`zoho_dagster.notifications.receiver`), on ``--host``/``--port``
  (default 127.0.0.1:8787), behind a TLS reverse proxy whose public https URL is ``ZOHO_DAGSTER_NOTIFY_URL``.
- ``subscribe``: one channel per synced record stream (not Notes) enabled, renewed when due, disabled for
  streams no longer synced (:mod:`zoho_dagster.notifications.channels`); the hourly channels schedule does the
  same once automation is on. Run twice, the second run makes no call.
- ``unsubscribe``: every channel disabled.
- ``status``: the channels held and the notifications pending.

Every command needs ``ZOHO_DAGSTER_NOTIFY_SECRET`` and the database (``ZOHO_DAGSTER_DATABASE_URL``);
``subscribe`` also the Zoho credentials, with the scope ``ZohoCRM.notifications.ALL``.
"""

import argparse
import sys
from datetime import datetime, timezone
from typing import Any

DEFAULT_PORT = 8787


def _engine() -> Any:
    from zoho_dagster.postgres.database import resolve_database_url
    from zoho_dagster.postgres.engine import make_engine

    return make_engine(resolve_database_url(announce=print))


def _channels(disable_all: bool) -> int:
    from zoho_dagster.cli.common import zoho_client
    from zoho_dagster.environment import replication_file
    from zoho_dagster.notifications import watch
    from zoho_dagster.notifications.channels import sync_channels
    from zoho_dagster.notifications.config import load_settings
    from zoho_dagster.replication import load_replication

    settings = load_settings(need_url=not disable_all)
    streams = load_replication(replication_file())
    now = datetime.now(timezone.utc)
    with watch.with_notifications_scope(zoho_client()) as client:
        report = sync_channels(
            client, _engine(), settings, streams, now, f"cli:{now:%Y%m%dT%H%M%SZ}", disable_all=disable_all
        )
    print(report.sentence())
    return 0


def _status() -> int:
    from zoho_dagster.notifications import store

    engine = _engine()
    now = datetime.now(timezone.utc)
    held = store.channels(engine)
    if not held:
        print("No notification channels (run `zoho-dagster notifications subscribe`).")
    for channel in sorted(held.values(), key=lambda c: c.stream):
        left = channel.expires_at - now
        hours = left.total_seconds() / 3600
        state = f"expires in {hours:.1f} h" if hours > 0 else "EXPIRED"
        print(f"{channel.stream:<20} {channel.module:<20} channel {channel.channel_id}  {state}")
    pending = store.pending(engine)
    totals = store.counts(engine)
    print(f"Notifications: {totals['pending']} pending, {totals['consumed']} applied.")
    for module, waiting in sorted(pending.items()):
        print(f"    {module:<20} {waiting.count} pending")
    return 0


def cmd_notifications(args: argparse.Namespace) -> int:
    from zoho_dagster.client import ZohoError
    from zoho_dagster.notifications.config import NotificationConfigError
    from zoho_dagster.postgres.engine import DatabaseConnectionError

    try:
        if args.action == "serve":
            from zoho_dagster.notifications.config import load_settings
            from zoho_dagster.notifications.receiver import serve

            settings = load_settings()
            serve(_engine(), settings, args.host, args.port)
            return 0
        if args.action == "status":
            return _status()
        return _channels(disable_all=args.action == "unsubscribe")
    except (NotificationConfigError, ZohoError, DatabaseConnectionError) as error:
        print(f"notifications {args.action} failed: {error}", file=sys.stderr)
        return 1


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("notifications", help="Zoho's change notifications: receive and subscribe")
    actions = parser.add_subparsers(dest="action", required=True)
    serve = actions.add_parser("serve", help="run the receiver Zoho posts notifications to")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    actions.add_parser("subscribe", help="enable, renew and disable the channels of the synced streams")
    actions.add_parser("unsubscribe", help="disable every notification channel")
    actions.add_parser("status", help="the channels held and the notifications pending")
    parser.set_defaults(func=cmd_notifications)
