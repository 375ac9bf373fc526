"""One way to turn a database URL into a SQLAlchemy engine.

SQLAlchemy 2.1 maps a bare ``postgresql://`` URL to psycopg 3, while dagster-postgres (and this package, for
COPY) use psycopg2; every URL goes through :func:`sqlalchemy_url` so that one driver serves both.
"""

from functools import lru_cache

import sqlalchemy as sa

_PSYCOPG2 = "postgresql+psycopg2://"


def sqlalchemy_url(database_url: str) -> str:
    """``database_url`` with the psycopg2 driver named, whatever Postgres scheme it was written with."""
    for scheme in ("postgresql+psycopg2://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if database_url.startswith(scheme):
            return _PSYCOPG2 + database_url[len(scheme) :]
    raise ValueError(
        f"The database URL must start with postgresql:// (got {database_url.split(':', 1)[0]}://...); "
        "set ZOHO_DAGSTER_DATABASE_URL to a PostgreSQL URL."
    )


def libpq_url(database_url: str) -> str:
    """``database_url`` as libpq (psycopg2.connect, psql) accepts it: without a SQLAlchemy driver name."""
    return "postgresql://" + sqlalchemy_url(database_url)[len(_PSYCOPG2) :]


@lru_cache(maxsize=16)
def make_engine(database_url: str) -> sa.Engine:
    """A pooled engine per URL and process; cached because engines own connection pools."""
    return sa.create_engine(sqlalchemy_url(database_url), pool_pre_ping=True, future=True)
