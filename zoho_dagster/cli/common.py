"""What the commands share: pointing at the simulator, the database, a client from the environment."""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zoho_dagster import environment
from zoho_dagster.postgres.database import resolve_database_url
from zoho_dagster.settings import SECRET_VARIABLES

SIMULATOR_KEYS = ("client_id", "client_secret", "soid", "region", "accounts_url", "api_domain")
STATE_DIR = Path(".zoho_dagster")


def point_at_simulator(primary: dict[str, Any]) -> None:
    """Export the simulator's primary org as the ZOHO_CRM_* variables (a refresh token would compete)."""
    for key in SIMULATOR_KEYS:
        os.environ[SECRET_VARIABLES[key]] = str(primary[key])
    os.environ.pop(SECRET_VARIABLES["refresh_token"], None)
    os.environ.pop("ZOHO_CRM", None)


def shared_database_url() -> str:
    """``ZOHO_DAGSTER_DATABASE_URL`` or the embedded server's, exported so Dagster's processes share it."""
    url = resolve_database_url(announce=print)
    environment.export_database_url(url)
    return url


@contextlib.contextmanager
def simulator(records: int, seed: int, latency_ms: int) -> Iterator[Any]:
    """The bundled simulator in a subprocess, for the demo, ``dev`` and the benchmarks."""
    from zoho_dagster.simulator import run_simulator

    with run_simulator(seed=seed, records=records, latency_ms=latency_ms) as running:
        yield running


def zoho_client() -> Any:
    """A client configured from the environment, as the definitions' resource would make it."""
    from zoho_dagster.resource import ZohoCRMResource

    return ZohoCRMResource.from_env().process_config_and_initialize().get_client()
