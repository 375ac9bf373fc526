"""Which Postgres to use, and the one place that starts the embedded one (the ``pgserver`` wheel).

Whoever needs a database and was given no URL — a run's IO manager or resource, the demo, ``dev``, the checks,
Dagster's storage — calls :func:`resolve_database_url`; only there is the embedded server started, and it says
so in the log, so that a missing ``ZOHO_DAGSTER_DATABASE_URL`` on a production host is visible rather than
silently filling a local directory. Loading the definitions never calls it.

A database that cannot be reached is reported by
:class:`~zoho_dagster.postgres.engine.DatabaseConnectionError` (one sentence naming
``ZOHO_DAGSTER_DATABASE_URL``) wherever a connection is first opened;
:func:`check_database` opens one on purpose, for ``zoho-dagster check`` and the demo.

The server is left running when this process exits (``cleanup_mode=None``) because ``dagster dev`` runs steps
in other processes that must reach the same database; a later call with the same data directory reuses it.
"""

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from zoho_dagster import environment
from zoho_dagster.postgres.engine import make_engine

log = logging.getLogger(__name__)


def embedded_database_url(
    data_dir: Path | None = None, announce: Callable[[str], object] | None = None
) -> str:
    """Start (or reuse) the embedded server in ``data_dir``; its ``postgresql://`` URL (a Unix socket).

    ``announce`` receives the sentence saying so (a Dagster ``context.log.info``); default: this module's log.
    """
    directory = (data_dir or environment.embedded_data_dir()).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    variable = environment.DATABASE_URL_VARIABLE
    (announce or log.info)(
        f"{variable} is unset: using the embedded PostgreSQL in {directory} (set {variable} to use your "
        "own server)."
    )
    with warnings.catch_warnings():
        # platformdirs, under pgserver, warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to
        # /tmp on its own: noise for the demo's output, nothing for the user to do.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver  # imported late: starting Python with it is not free and most callers never need it

        server = pgserver.get_server(directory, cleanup_mode=None)
    return server.get_uri()


def resolve_database_url(
    database_url: str | None = None, announce: Callable[[str], object] | None = None
) -> str:
    """The explicit URL, else ``$ZOHO_DAGSTER_DATABASE_URL``, else the embedded server's (started here)."""
    return database_url or environment.database_url() or embedded_database_url(announce=announce)


def check_database(database_url: str) -> None:
    """Open one connection to ``database_url``: nothing, or the ``DatabaseConnectionError`` sentence."""
    with make_engine(database_url).connect() as connection:
        connection.execute(sa.text("SELECT 1"))
