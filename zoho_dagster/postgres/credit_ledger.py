"""The credit ledger: what each run spent, so the next run knows what is left of the daily budget.

Why a table: Zoho counts credits over a rolling 24-hour window (docs/zoho-crm-api.md §6.1) and tells a client
what is left only once half the day's credits are gone (§6.2), so the credit budget
(:mod:`zoho_dagster.budget`) needs its own memory of the last 24 hours, shared by every process and host that
syncs into this database. One row per run and stream in ``zoho_dagster.credit_ledger``, appended when the run
ends, failed runs included, in a transaction of its own (the run's may have rolled back). It only knows this
package's runs: credits spent by other integrations of the org are not in it.
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import sqlalchemy as sa

log = logging.getLogger(__name__)

SCHEMA = "zoho_dagster"
TABLE = "credit_ledger"
WINDOW = timedelta(hours=24)
"""Zoho's credit window (docs/zoho-crm-api.md §6.1)."""
_DDL_LOCK_KEY = 0x7A645F6C6564676B  # an arbitrary constant: serialises the CREATE ... IF NOT EXISTS below
_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.{TABLE} (
        at timestamptz NOT NULL DEFAULT now(),
        run_id text NOT NULL,
        stream text NOT NULL,
        credits integer NOT NULL
    )""",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_at ON {SCHEMA}.{TABLE} (at)",
)

_LEDGER = sa.Table(
    TABLE,
    sa.MetaData(),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("run_id", sa.Text()),
    sa.Column("stream", sa.Text()),
    sa.Column("credits", sa.Integer()),
    schema=SCHEMA,
)


def _ensure(conn: sa.Connection) -> None:
    if not sa.inspect(conn).has_table(TABLE, schema=SCHEMA):
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_DDL_LOCK_KEY)))
        for statement in _DDL:
            conn.exec_driver_sql(statement)


def record(engine: sa.Engine, run_id: str, stream: str, credits: int) -> None:
    """Append what ``run_id`` spent on ``stream`` (nothing when it spent nothing)."""
    if credits <= 0:
        return
    with engine.begin() as conn:
        _ensure(conn)
        conn.execute(sa.insert(_LEDGER).values(run_id=run_id, stream=stream, credits=int(credits)))


def spent_since(engine: sa.Engine, since: datetime | None = None) -> int:
    """Credits recorded since ``since`` (default: the last 24 hours by the database's clock)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(TABLE, schema=SCHEMA):
            return 0
        start = since if since is not None else sa.func.now() - sa.literal_column("interval '24 hours'")
        total = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(_LEDGER.c.credits), 0)).where(_LEDGER.c.at > start)
        ).scalar_one()
    return int(total)


@contextmanager
def recorded(
    engine: Callable[[], sa.Engine], run_id: str, stream: str, credits: Callable[[], int]
) -> Iterator[None]:
    """Record ``credits()`` when the block ends, whether it succeeded or raised.

    A ledger that cannot be written must not hide the run's own outcome (nor fail a run that succeeded):
    the failure is logged and the block's result stands.
    """
    try:
        yield
    finally:
        try:
            record(engine(), run_id, stream, credits())
        except Exception as error:  # the run's own error, if any, is the one to see
            log.warning("The credits of run %s (%s) could not be recorded: %s", run_id, stream, error)
