"""Shared fixtures: a real Postgres (the CI server or the embedded one) and the simulator on a real port."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from zoho_dagster.postgres.engine import make_engine, sqlalchemy_url

TEST_DATABASE_VARIABLE = "ZOHO_DAGSTER_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server we may create databases on: ``$ZOHO_DAGSTER_TEST_DATABASE_URL`` or the embedded one."""
    configured = os.environ.get(TEST_DATABASE_VARIABLE)
    if configured:
        yield configured
        return
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


def _with_database(server_url: str, name: str) -> str:
    url = sa.make_url(sqlalchemy_url(server_url))
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh empty database for one test, dropped afterwards (with whatever sessions still hold it)."""
    name = f"zd_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(sqlalchemy_url(postgres_server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = _with_database(postgres_server_url, name)
    try:
        yield url
    finally:
        make_engine.cache_clear()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def _session_simulator() -> Iterator[object]:
    from zoho_dagster.simulator import run_simulator

    with run_simulator() as simulator:
        yield simulator


@pytest.fixture
def simulator(_session_simulator: object) -> object:
    """The session's simulator, reset to its seeded state (no faults, limits, stats or tokens)."""
    _session_simulator.control.reset()  # type: ignore[attr-defined]
    return _session_simulator


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent
