"""The two notification tables in Postgres: what Zoho told us, and which channels we hold.

``zoho_dagster.notifications``: one row per notification the receiver accepted, written (and committed)
before the receiver answers Zoho, so an answered notification is never lost. A row stays *pending*
(``consumed_at`` NULL) until the transaction that writes its records into the synced table marks it consumed
(:mod:`zoho_dagster.notifications.apply`); a failed run leaves it pending for the next one.

``zoho_dagster.notification_channels``: the channels ``subscribe`` enabled, with the expiry Zoho answered, so
a second run knows what is already there (and changes nothing) and the channels of streams no longer synced
can be disabled.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

SCHEMA = "zoho_dagster"
OPERATIONS = ("insert", "update", "delete")
"""The ``operation`` values of Zoho's callback body (docs/zoho-crm-api.md §3.12)."""
MAX_BATCH = 20_000
"""Pending notifications one run applies per stream at most; more wait for the next run."""
KEEP_CONSUMED = timedelta(days=7)
"""How long consumed notifications are kept (for looking back at what arrived) before the channels job
deletes them; pending ones are never deleted."""

_DDL_LOCK_KEY = 0x7A645F6E6F746966  # arbitrary: serialises the CREATE ... IF NOT EXISTS below
_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.notifications (
        id bigserial PRIMARY KEY,
        received_at timestamptz NOT NULL DEFAULT now(),
        channel_id text NOT NULL,
        module text NOT NULL,
        operation text NOT NULL CHECK (operation IN ('insert', 'update', 'delete')),
        ids text[] NOT NULL,
        server_time timestamptz NOT NULL,
        consumed_at timestamptz,
        consumed_by text
    )""",
    f"""CREATE INDEX IF NOT EXISTS notifications_pending ON {SCHEMA}.notifications (module, id)
        WHERE consumed_at IS NULL""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.notification_channels (
        channel_id text PRIMARY KEY,
        stream text NOT NULL,
        module text NOT NULL,
        notify_url text NOT NULL,
        expires_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""",
)

_metadata = sa.MetaData(schema=SCHEMA)
NOTIFICATIONS = sa.Table(
    "notifications",
    _metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("received_at", sa.DateTime(timezone=True)),
    sa.Column("channel_id", sa.Text),
    sa.Column("module", sa.Text),
    sa.Column("operation", sa.Text),
    sa.Column("ids", pg.ARRAY(sa.Text)),
    sa.Column("server_time", sa.DateTime(timezone=True)),
    sa.Column("consumed_at", sa.DateTime(timezone=True)),
    sa.Column("consumed_by", sa.Text),
)
CHANNELS = sa.Table(
    "notification_channels",
    _metadata,
    sa.Column("channel_id", sa.Text, primary_key=True),
    sa.Column("stream", sa.Text),
    sa.Column("module", sa.Text),
    sa.Column("notify_url", sa.Text),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)


def ensure_tables(engine: sa.Engine) -> None:
    """Create the schema and both tables when missing (safe from several processes at once)."""
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        if inspector.has_table("notifications", schema=SCHEMA) and inspector.has_table(
            "notification_channels", schema=SCHEMA
        ):
            return
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_DDL_LOCK_KEY)))
        for statement in _DDL:
            conn.exec_driver_sql(statement)


def _exists(conn: sa.Connection, table: str) -> bool:
    return sa.inspect(conn).has_table(table, schema=SCHEMA)


@dataclass(frozen=True)
class Notification:
    """One accepted notification, as the receiver stores it."""

    channel_id: str
    module: str
    operation: str
    ids: tuple[str, ...]
    server_time: datetime


def insert(engine: sa.Engine, notification: Notification) -> int:
    """Store ``notification`` and commit; returns its row id."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.insert(NOTIFICATIONS)
                .values(
                    channel_id=notification.channel_id,
                    module=notification.module,
                    operation=notification.operation,
                    ids=list(notification.ids),
                    server_time=notification.server_time,
                )
                .returning(NOTIFICATIONS.c.id)
            ).scalar_one()
        )


@dataclass(frozen=True)
class Pending:
    """A module's pending notifications: how many, and the newest row id among them."""

    count: int
    newest: int


def pending(engine: sa.Engine) -> dict[str, Pending]:
    """Pending notifications by module (none when the table does not exist yet)."""
    with engine.connect() as conn:
        if not _exists(conn, "notifications"):
            return {}
        rows = conn.execute(
            sa.select(NOTIFICATIONS.c.module, sa.func.count(), sa.func.max(NOTIFICATIONS.c.id))
            .where(NOTIFICATIONS.c.consumed_at.is_(None))
            .group_by(NOTIFICATIONS.c.module)
        )
        return {str(module): Pending(int(count), int(newest)) for module, count, newest in rows}


@dataclass
class Batch:
    """What a module's pending notifications ask for: ids to read again, deletions to mark."""

    module: str
    rows: list[int] = field(default_factory=list)
    """The notifications' row ids, to mark consumed with the write."""
    changed: list[str] = field(default_factory=list)
    """Ids created or edited (each once, in the order first notified): read again by ``ids=``."""
    deleted: dict[str, datetime] = field(default_factory=dict)
    """Deleted ids with the latest ``server_time`` that reported them: marked deleted at once."""
    received: int = 0
    """Ids named by the notifications, duplicates included."""


def take_batch(engine: sa.Engine, module: str, limit: int = MAX_BATCH) -> Batch:
    """The oldest ``limit`` pending notifications of ``module``, folded into one :class:`Batch`.

    Nothing is locked or changed: the rows are marked consumed by :func:`mark_consumed`, in the transaction
    that writes their records. Two runs that take the same rows write the same records (newest wins) and both
    mark them, which changes nothing the second time.
    """
    batch = Batch(module)
    seen: set[str] = set()
    with engine.connect() as conn:
        if not _exists(conn, "notifications"):
            return batch
        rows = conn.execute(
            sa.select(
                NOTIFICATIONS.c.id,
                NOTIFICATIONS.c.operation,
                NOTIFICATIONS.c.ids,
                NOTIFICATIONS.c.server_time,
            )
            .where(NOTIFICATIONS.c.module == module, NOTIFICATIONS.c.consumed_at.is_(None))
            .order_by(NOTIFICATIONS.c.id)
            .limit(limit)
        )
        for row_id, operation, ids, server_time in rows:
            batch.rows.append(int(row_id))
            batch.received += len(ids)
            for record_id in ids:
                if operation == "delete":
                    known = batch.deleted.get(record_id)
                    batch.deleted[record_id] = server_time if known is None else max(known, server_time)
                elif record_id not in seen:
                    seen.add(record_id)
                    batch.changed.append(record_id)
    return batch


def mark_consumed(conn: sa.Connection, rows: Sequence[int], run_id: str) -> int:
    """Mark ``rows`` consumed by ``run_id`` in ``conn``'s transaction; returns how many were still pending."""
    if not rows:
        return 0
    result = conn.execute(
        sa.update(NOTIFICATIONS)
        .where(NOTIFICATIONS.c.id.in_(list(rows)), NOTIFICATIONS.c.consumed_at.is_(None))
        .values(consumed_at=sa.func.now(), consumed_by=run_id)
    )
    return int(result.rowcount or 0)


def discard_modules(engine: sa.Engine, modules: Iterable[str], reason: str) -> int:
    """Mark the pending notifications of ``modules`` consumed with ``reason`` (streams no longer synced)."""
    names = sorted(set(modules))
    if not names:
        return 0
    with engine.begin() as conn:
        if not _exists(conn, "notifications"):
            return 0
        return int(
            conn.execute(
                sa.update(NOTIFICATIONS)
                .where(NOTIFICATIONS.c.module.in_(names), NOTIFICATIONS.c.consumed_at.is_(None))
                .values(consumed_at=sa.func.now(), consumed_by=reason)
            ).rowcount
            or 0
        )


def prune(engine: sa.Engine, older_than: timedelta = KEEP_CONSUMED) -> int:
    """Delete the consumed notifications received more than ``older_than`` ago; returns how many."""
    with engine.begin() as conn:
        if not _exists(conn, "notifications"):
            return 0
        cutoff = sa.func.now() - sa.literal(older_than)
        return int(
            conn.execute(
                sa.delete(NOTIFICATIONS).where(
                    NOTIFICATIONS.c.consumed_at.is_not(None), NOTIFICATIONS.c.received_at < cutoff
                )
            ).rowcount
            or 0
        )


@dataclass(frozen=True)
class StoredChannel:
    """A channel as ``subscribe`` last left it."""

    channel_id: str
    stream: str
    module: str
    notify_url: str
    expires_at: datetime


def channels(engine: sa.Engine) -> dict[str, StoredChannel]:
    """The stored channels by id."""
    with engine.connect() as conn:
        if not _exists(conn, "notification_channels"):
            return {}
        rows = conn.execute(
            sa.select(
                CHANNELS.c.channel_id,
                CHANNELS.c.stream,
                CHANNELS.c.module,
                CHANNELS.c.notify_url,
                CHANNELS.c.expires_at,
            )
        )
        return {str(row[0]): StoredChannel(*row) for row in rows}


def save_channels(engine: sa.Engine, saved: Iterable[StoredChannel]) -> None:
    """Insert or replace the given channels."""
    values = [
        {
            "channel_id": c.channel_id,
            "stream": c.stream,
            "module": c.module,
            "notify_url": c.notify_url,
            "expires_at": c.expires_at,
        }
        for c in saved
    ]
    if not values:
        return
    statement = pg.insert(CHANNELS).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["channel_id"],
        set_={
            "stream": statement.excluded.stream,
            "module": statement.excluded.module,
            "notify_url": statement.excluded.notify_url,
            "expires_at": statement.excluded.expires_at,
            "updated_at": sa.func.now(),
        },
    )
    with engine.begin() as conn:
        conn.execute(statement)


def forget_channels(engine: sa.Engine, channel_ids: Iterable[str]) -> None:
    """Delete the given channels' rows."""
    ids = list(channel_ids)
    if ids:
        with engine.begin() as conn:
            conn.execute(sa.delete(CHANNELS).where(CHANNELS.c.channel_id.in_(ids)))


def counts(engine: sa.Engine) -> Mapping[str, int]:
    """Rows of the notifications table: ``pending`` and ``consumed`` (for ``notifications status``)."""
    with engine.connect() as conn:
        if not _exists(conn, "notifications"):
            return {"pending": 0, "consumed": 0}
        pending_rows, consumed_rows = conn.execute(
            sa.select(
                sa.func.count().filter(NOTIFICATIONS.c.consumed_at.is_(None)),
                sa.func.count().filter(NOTIFICATIONS.c.consumed_at.is_not(None)),
            )
        ).one()
        return {"pending": int(pending_rows), "consumed": int(consumed_rows)}
