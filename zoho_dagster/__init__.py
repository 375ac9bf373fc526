"""zoho-dagster: a Postgres copy of a Zoho CRM organisation, kept by Dagster.

The public API, as Dagster's own integrations export theirs::

    from zoho_dagster import DagsterZohoTranslator, build_definitions

    defs = build_definitions(translator=MyTranslator())

or, in a ``dg`` project, as a component: ``dg scaffold defs zoho_dagster.ZohoCRMComponent zoho_crm``
(:class:`~zoho_dagster.component.ZohoCRMComponent`; this package is its ``dagster_dg_cli.registry_modules``
entry point).

Names are imported on first use (PEP 562): ``zoho_dagster.simulator`` and ``zoho_dagster.client`` are
imported by processes that never load Dagster (the simulator's server, the client benchmark), and importing
this package must not make them pay for it. Importing it never builds the project's ``Definitions`` (that is
:mod:`zoho_dagster.definitions`), reads the replication file or starts a database.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "CATALOG": "zoho_dagster.streams",
    "DagsterZohoTranslator": "zoho_dagster.translator",
    "PostgresIOManager": "zoho_dagster.postgres.io_manager",
    "RecordStream": "zoho_dagster.record_stream",
    "ReplicatedStream": "zoho_dagster.replication",
    "StreamSpec": "zoho_dagster.streams",
    "TableName": "zoho_dagster.postgres.tables",
    "ZohoCRMComponent": "zoho_dagster.component",
    "ZohoCRMResource": "zoho_dagster.resource",
    "ZohoClient": "zoho_dagster.client",
    "ZohoError": "zoho_dagster.client",
    "build_automation": "zoho_dagster.automation",
    "build_checks": "zoho_dagster.checks",
    "build_definitions": "zoho_dagster.builder",
    "build_freshness_check_schedule": "zoho_dagster.checks",
    "build_stream_asset": "zoho_dagster.assets",
    "build_stream_assets": "zoho_dagster.assets",
    "load_replication": "zoho_dagster.replication",
    "zoho_errors_as_failures": "zoho_dagster.failures",
}

__all__ = [
    "CATALOG",
    "DagsterZohoTranslator",
    "PostgresIOManager",
    "RecordStream",
    "ReplicatedStream",
    "StreamSpec",
    "TableName",
    "ZohoCRMComponent",
    "ZohoCRMResource",
    "ZohoClient",
    "ZohoError",
    "build_automation",
    "build_checks",
    "build_definitions",
    "build_freshness_check_schedule",
    "build_stream_asset",
    "build_stream_assets",
    "load_replication",
    "zoho_errors_as_failures",
]

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from zoho_dagster.assets import build_stream_asset, build_stream_assets
    from zoho_dagster.automation import build_automation
    from zoho_dagster.builder import build_definitions
    from zoho_dagster.checks import build_checks, build_freshness_check_schedule
    from zoho_dagster.client import ZohoClient, ZohoError
    from zoho_dagster.component import ZohoCRMComponent
    from zoho_dagster.failures import zoho_errors_as_failures
    from zoho_dagster.postgres.io_manager import PostgresIOManager
    from zoho_dagster.postgres.tables import TableName
    from zoho_dagster.record_stream import RecordStream
    from zoho_dagster.replication import ReplicatedStream, load_replication
    from zoho_dagster.resource import ZohoCRMResource
    from zoho_dagster.streams import CATALOG, StreamSpec
    from zoho_dagster.translator import DagsterZohoTranslator


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zoho_dagster' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
