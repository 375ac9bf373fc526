"""One way to turn a database URL into a SQLAlchemy engine, and one sentence when the database is unreachable.

SQLAlchemy 2.1 maps a bare ``postgresql://`` URL to psycopg 3, while dagster-postgres (and this package, for
COPY) use psycopg2; every URL goes through :func:`sqlalchemy_url` so that one driver serves both.

A wrong port, host, database name, user or password surfaces wherever a connection is first opened (the
token cache, the IO manager, the checks, the demo); psycopg2's own text names none of the settings. Every
engine made here therefore turns a failed connection into :class:`DatabaseConnectionError`, whose text names
the server (password hidden), libpq's reason and the variable to fix; psycopg2's error stays its cause.
"""

from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy import event

from zoho_dagster.environment import DATABASE_URL_VARIABLE

_PSYCOPG2 = "postgresql+psycopg2://"


class DatabaseConnectionError(Exception):
    """No connection to the database could be opened: the message is one sentence naming the fix."""


def sqlalchemy_url(database_url: str) -> str:
    """``database_url`` with the psycopg2 driver named, whatever Postgres scheme it was written with."""
    for scheme in ("postgresql+psycopg2://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if database_url.startswith(scheme):
            return _PSYCOPG2 + database_url[len(scheme) :]
    raise ValueError(
        f"The database URL must start with postgresql:// (got {database_url.split(':', 1)[0]}://...); "
        f"set {DATABASE_URL_VARIABLE} to a PostgreSQL URL."
    )


def libpq_url(database_url: str) -> str:
    """``database_url`` as libpq (psycopg2.connect, psql) accepts it: without a SQLAlchemy driver name."""
    return "postgresql://" + sqlalchemy_url(database_url)[len(_PSYCOPG2) :]


def shown_url(database_url: str) -> str:
    """``database_url`` fit for a message: libpq's form, the password replaced by ``***``."""
    try:
        url = sa.make_url(sqlalchemy_url(database_url)).set(drivername="postgresql")
    except (ValueError, sa.exc.ArgumentError):
        return "the database URL"
    return url.render_as_string(hide_password=True)


def _reason(error: BaseException) -> str:
    """libpq's reason in a few words: its first line, less the ``connection to server at ... failed:``."""
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else type(error).__name__
    reason = first.split(" failed: ", 1)[-1].replace("FATAL:", "").strip()
    return " ".join(reason.split()).rstrip(".")


def connection_error(database_url: str, error: BaseException) -> DatabaseConnectionError:
    """The sentence for a connection to ``database_url`` that failed with ``error``."""
    return DatabaseConnectionError(
        f"Cannot connect to the PostgreSQL database {shown_url(database_url)} ({_reason(error)}); check "
        f"{DATABASE_URL_VARIABLE} (host, port, database name, user and password) and that the server is "
        "running."
    )


def _name_the_variable_on_connect_failure(engine: sa.Engine, database_url: str) -> None:
    """Failed connects (SQLAlchemy's ``handle_error`` without a connection) raise the sentence instead."""

    @event.listens_for(engine, "handle_error")
    def _connect_failed(context: sa.engine.ExceptionContext) -> None:
        if context.connection is None and isinstance(context.original_exception, Exception):
            raise connection_error(database_url, context.original_exception)


@lru_cache(maxsize=16)
def make_engine(database_url: str) -> sa.Engine:
    """A pooled engine per URL and process; cached because engines own connection pools."""
    engine = sa.create_engine(sqlalchemy_url(database_url), pool_pre_ping=True, future=True)
    _name_the_variable_on_connect_failure(engine, database_url)
    return engine
