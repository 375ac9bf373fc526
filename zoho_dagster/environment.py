"""The one reader of the project's own ``ZOHO_DAGSTER_*`` variables.

Zoho's variables (``ZOHO_CRM_*``) are the connection and belong to :mod:`zoho_dagster.settings`; these are the
project's knobs: where the tables and Dagster's storage live, which streams to sync, and how often. Reading
them here, and nowhere else, keeps their names, defaults and error sentences in one place
(docs/design.md §1 lists them for users). Each function reads the variable when called, never at import, so a
test or a command that sets a variable sees the new value.
"""

import os
from collections.abc import Mapping
from pathlib import Path

DATABASE_URL_VARIABLE = "ZOHO_DAGSTER_DATABASE_URL"
STORAGE_URL_VARIABLE = "ZOHO_DAGSTER_DAGSTER_STORAGE_URL"
EMBEDDED_PGDATA_VARIABLE = "ZOHO_DAGSTER_EMBEDDED_PGDATA"
REPLICATION_VARIABLE = "ZOHO_DAGSTER_REPLICATION"
DISCOVERY_VARIABLE = "ZOHO_DAGSTER_DISCOVERY"
AUTOMATION_VARIABLE = "ZOHO_DAGSTER_AUTOMATION"
FRESHNESS_VARIABLE = "ZOHO_DAGSTER_FRESHNESS_MINUTES"
SENSOR_INTERVAL_VARIABLE = "ZOHO_DAGSTER_SENSOR_SECONDS"
NOTIFY_URL_VARIABLE = "ZOHO_DAGSTER_NOTIFY_URL"
NOTIFY_SECRET_VARIABLE = "ZOHO_DAGSTER_NOTIFY_SECRET"
NOTIFY_SENSOR_VARIABLE = "ZOHO_DAGSTER_NOTIFY_SENSOR_SECONDS"

DEFAULT_EMBEDDED_PGDATA = Path(".zoho_dagster") / "pgdata"
DEFAULT_DISCOVERY_FILE = "zoho_crm_discovery.yaml"
DEFAULT_FRESHNESS_MINUTES = 60
DEFAULT_SENSOR_SECONDS = 300
DEFAULT_NOTIFY_SENSOR_SECONDS = 10

_ON = {"on", "true", "1", "yes", "running"}
_OFF = {"", "off", "false", "0", "no", "stopped"}


class AutomationConfigError(ValueError):
    """A bad automation setting; the message names the variable and the fix."""


def _text(variable: str, environ: Mapping[str, str] | None = None) -> str | None:
    value = str((os.environ if environ is None else environ).get(variable, "")).strip()
    return value or None


def database_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``ZOHO_DAGSTER_DATABASE_URL`` (from ``environ``, default the process's): the Postgres of the synced
    tables and the shared token cache, if set."""
    return _text(DATABASE_URL_VARIABLE, environ)


def export_database_url(url: str) -> None:
    """Set ``ZOHO_DAGSTER_DATABASE_URL`` for this process and the Dagster processes it starts."""
    os.environ[DATABASE_URL_VARIABLE] = url


def dagster_storage_url() -> str | None:
    """``ZOHO_DAGSTER_DAGSTER_STORAGE_URL``: where Dagster keeps runs and events, if set apart."""
    return _text(STORAGE_URL_VARIABLE)


def export_dagster_storage_url(url: str) -> None:
    """Set ``ZOHO_DAGSTER_DAGSTER_STORAGE_URL``: run workers rebuild the same storage from the environment."""
    os.environ[STORAGE_URL_VARIABLE] = url


def embedded_data_dir() -> Path:
    """The embedded server's data: ``$ZOHO_DAGSTER_EMBEDDED_PGDATA`` or ``./.zoho_dagster/pgdata``."""
    return Path(_text(EMBEDDED_PGDATA_VARIABLE) or DEFAULT_EMBEDDED_PGDATA).resolve()


def replication_file() -> Path | None:
    """The replication file named by ``$ZOHO_DAGSTER_REPLICATION``, or ``None`` when it is unset."""
    value = _text(REPLICATION_VARIABLE)
    return Path(value) if value else None


def discovery_file() -> Path:
    """The discovery file: ``$ZOHO_DAGSTER_DISCOVERY`` or ``./zoho_crm_discovery.yaml``."""
    return Path(_text(DISCOVERY_VARIABLE) or DEFAULT_DISCOVERY_FILE)


def automation_enabled() -> bool:
    """Whether ``ZOHO_DAGSTER_AUTOMATION`` asks for the schedules and the sensor to start running."""
    value = (_text(AUTOMATION_VARIABLE) or "").lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise AutomationConfigError(
        f"{AUTOMATION_VARIABLE} is {value!r}; "
        "set it to 'on' to start the schedule and sensor or 'off' (the default)."
    )


def _positive_int(variable: str, default: int) -> int:
    raw = _text(variable)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise AutomationConfigError(f"{variable} is {raw!r}; set it to a whole number greater than 0.")
    return value


def freshness_minutes_setting() -> int:
    """``ZOHO_DAGSTER_FRESHNESS_MINUTES`` as a positive number (the schedule checks it divides a day)."""
    return _positive_int(FRESHNESS_VARIABLE, DEFAULT_FRESHNESS_MINUTES)


def sensor_interval_seconds() -> int:
    """``ZOHO_DAGSTER_SENSOR_SECONDS``: the least time between two of the sensor's look-ups."""
    return _positive_int(SENSOR_INTERVAL_VARIABLE, DEFAULT_SENSOR_SECONDS)


def notify_url() -> str | None:
    """``ZOHO_DAGSTER_NOTIFY_URL``: the public URL Zoho posts change notifications to, if set (checked by
    :mod:`zoho_dagster.notifications.config`)."""
    return _text(NOTIFY_URL_VARIABLE)


def notify_secret() -> str | None:
    """``ZOHO_DAGSTER_NOTIFY_SECRET``: the secret the notification channels' ids and tokens derive from."""
    return _text(NOTIFY_SECRET_VARIABLE)


def notify_sensor_seconds() -> int:
    """``ZOHO_DAGSTER_NOTIFY_SENSOR_SECONDS``: the least time between two looks of the notification sensor."""
    return _positive_int(NOTIFY_SENSOR_VARIABLE, DEFAULT_NOTIFY_SENSOR_SECONDS)


EVENT_BATCH_VARIABLE = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 1000
"""Events written to Dagster's storage in one go. A single-run backfill of a stream-year records one
materialization per day: one insert each cost 30 to 40 s per stream-year on Postgres (measured, README
"Benchmarks"); batched they cost a few. Dagster reads the variable (``dagster._core.instance.utils``)."""


def batch_dagster_events() -> None:
    """Ask Dagster to write events in batches, unless the user set ``DAGSTER_EVENT_BATCH_SIZE`` themselves.

    Called where the definitions load, so every process that executes a step (the CLI's, a run worker's, a
    code server's) sees it before it writes an event.
    """
    os.environ.setdefault(EVENT_BATCH_VARIABLE, str(EVENT_BATCH_SIZE))
