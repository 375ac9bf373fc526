"""The embedded PostgreSQL (the ``pgserver`` wheel): the default where ``ZOHO_DAGSTER_DATABASE_URL`` is unset.

The server is left running when this process exits (``cleanup_mode=None``) because ``dagster dev`` runs steps
in other processes that must reach the same database; a later call with the same data directory reuses it.
"""

import os
from pathlib import Path

DEFAULT_DATA_DIR = Path(".zoho_dagster") / "pgdata"
DATA_DIR_VARIABLE = "ZOHO_DAGSTER_EMBEDDED_PGDATA"


def embedded_data_dir() -> Path:
    """The embedded server's data: ``$ZOHO_DAGSTER_EMBEDDED_PGDATA`` or ``./.zoho_dagster/pgdata``."""
    return Path(os.environ.get(DATA_DIR_VARIABLE) or DEFAULT_DATA_DIR).resolve()


def embedded_database_url(data_dir: Path | None = None) -> str:
    """Start (or reuse) the embedded server in ``data_dir``; its ``postgresql://`` URL (a Unix socket)."""
    import pgserver  # imported late: starting Python with it is not free and most callers never need it

    directory = (data_dir or embedded_data_dir()).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(directory, cleanup_mode=None)
    return server.get_uri()


def resolve_database_url(database_url: str | None = None) -> str:
    """The explicit URL, else ``$ZOHO_DAGSTER_DATABASE_URL``, else the embedded server's."""
    return database_url or os.environ.get("ZOHO_DAGSTER_DATABASE_URL") or embedded_database_url()
