"""Dagster's own storage (runs, event logs, schedules) in Postgres, found the same way as the synced tables.

Why not dagster-postgres' ``storage: postgres: postgres_url: {env: ...}`` directly: every ``dagster`` command
run in the project directory without ``DAGSTER_HOME`` reads ``./dagster.yaml``, and an unset variable there
fails even ``dagster definitions validate``. This class picks, in order, ``postgres_url`` from its config,
``$ZOHO_DAGSTER_DAGSTER_STORAGE_URL``, ``$ZOHO_DAGSTER_DATABASE_URL``, else the embedded Postgres, names the
psycopg2 driver (SQLAlchemy 2.1 would pick psycopg 3 for a bare ``postgresql://``), exports the result as
``ZOHO_DAGSTER_DAGSTER_STORAGE_URL`` so that run workers inherit it, and hands over to dagster-postgres.

One part is swapped in: the run storage is :class:`~zoho_dagster.postgres.run_liveness.LivenessRunStorage`,
dagster-postgres' own plus a Postgres session held for each run this process executes, which is how the
daemon's run monitoring tells a run whose process died (:mod:`zoho_dagster.postgres.run_launcher`).
"""

import dagster as dg
import yaml
from dagster._core.storage.runs import RunStorage
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage

from zoho_dagster import environment
from zoho_dagster.postgres.database import resolve_database_url
from zoho_dagster.postgres.engine import sqlalchemy_url
from zoho_dagster.postgres.run_liveness import LivenessRunStorage

STORAGE_URL_VARIABLE = environment.STORAGE_URL_VARIABLE


def dagster_storage_url(configured: str | None = None) -> str:
    """The storage URL with the psycopg2 driver named; see the module docstring for the order of sources."""
    url = configured or environment.dagster_storage_url() or resolve_database_url()
    return sqlalchemy_url(url)


class ZohoDagsterStorage(DagsterPostgresStorage):
    """``storage: custom`` entry of ``dagster.yaml``: dagster-postgres' storage, liveness inside."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        super().__init__(postgres_url, should_autocreate_tables, inst_data)
        # The tables exist now (the parent's run storage made them): this one only opens connections later.
        self._liveness_run_storage = LivenessRunStorage(postgres_url, should_autocreate_tables=False)

    @property
    def run_storage(self) -> RunStorage:
        return self._liveness_run_storage

    @classmethod
    def config_type(cls) -> dict:
        return {
            "postgres_url": dg.Field(dg.StringSource, is_required=False),
            "should_autocreate_tables": dg.Field(bool, is_required=False, default_value=True),
        }

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict
    ) -> "ZohoDagsterStorage":
        url = dagster_storage_url(config_value.get("postgres_url"))
        environment.export_dagster_storage_url(url)
        # Other processes rebuild the storages from this data: they read the URL from the environment, so no
        # password is written into a serialised instance reference.
        # They rebuild it through this class, so that their storages keep connections open too.
        data = ConfigurableClassData(
            __name__, cls.__name__, yaml.safe_dump({"postgres_url": {"env": STORAGE_URL_VARIABLE}})
        )
        storage = cls(
            postgres_url=url,
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            inst_data=data,
        )
        keep_connections_open(storage)
        return storage


def keep_connections_open(storage: DagsterPostgresStorage) -> None:
    """Let each of the three storages keep one connection open between statements.

    Why: dagster-postgres opens a new connection for every statement it runs outside the webserver
    (SQLAlchemy's NullPool), and stores each event with two of them. A single-run backfill of a stream-year
    writes one planned and one materialization event per daily partition, so about 1,600 connections were
    opened and closed per run: seconds of a benchmark's wall time (README, Benchmarks). This is the pooled
    engine the webserver gets from the same storages (``optimize_for_webserver``): one connection held per
    storage, more opened for concurrent threads and closed when returned, connections recycled hourly, and no
    statement timeout (0), since a run's own queries may legitimately be long (docs/dagster.md §2).
    """
    for part in (storage.run_storage, storage.event_log_storage, storage.schedule_storage):
        part.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=10)
