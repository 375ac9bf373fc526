"""The Zoho CRM v6 client: shared-token auth, manners (limits, retries), complete record windows.

This package is the bottom layer: it imports nothing else from ``zoho_dagster`` (no Dagster, no Postgres).
What other layers may use is exported here; the submodules are its internals.
"""

from zoho_dagster.client.auth import DEFAULT_SCOPES, Credentials
from zoho_dagster.client.bulk import BulkReader, BulkUnavailable, bulk_exportable
from zoho_dagster.client.children import ChildField, ChildReader, child_fields
from zoho_dagster.client.client import (
    LIST_UNSUPPORTED_TYPES,
    ClientConfig,
    ZohoClient,
    listable_fields,
    record_fields,
)
from zoho_dagster.client.coql import coql_cost, same_shape_fields
from zoho_dagster.client.errors import (
    ZohoAPIError,
    ZohoAuthError,
    ZohoConfigError,
    ZohoCreditsExhausted,
    ZohoError,
    ZohoPermissionError,
    ZohoTransientError,
)
from zoho_dagster.client.limiter import MAX_EDITION_CONCURRENCY
from zoho_dagster.client.policy import RetryPolicy
from zoho_dagster.client.records import FieldPass, plan_passes
from zoho_dagster.client.redact import mask, redact, register_secret
from zoho_dagster.client.regions import REGIONS, Region, hosts
from zoho_dagster.client.stats import CallStats
from zoho_dagster.client.timeutil import parse_datetime
from zoho_dagster.client.token_cache import InMemoryTokenCache, StoredToken, TokenCache, TokenSlot

__all__ = [
    "DEFAULT_SCOPES",
    "LIST_UNSUPPORTED_TYPES",
    "MAX_EDITION_CONCURRENCY",
    "REGIONS",
    "BulkReader",
    "BulkUnavailable",
    "CallStats",
    "ChildField",
    "ChildReader",
    "ClientConfig",
    "Credentials",
    "FieldPass",
    "InMemoryTokenCache",
    "Region",
    "RetryPolicy",
    "StoredToken",
    "TokenCache",
    "TokenSlot",
    "ZohoAPIError",
    "ZohoAuthError",
    "ZohoClient",
    "ZohoConfigError",
    "ZohoCreditsExhausted",
    "ZohoError",
    "ZohoPermissionError",
    "ZohoTransientError",
    "bulk_exportable",
    "child_fields",
    "coql_cost",
    "hosts",
    "listable_fields",
    "mask",
    "parse_datetime",
    "plan_passes",
    "record_fields",
    "redact",
    "register_secret",
    "same_shape_fields",
]
