"""The Zoho CRM v6 client: shared-token auth, manners (limits, retries), complete record windows."""

from zoho_dagster.client.auth import Credentials
from zoho_dagster.client.client import ClientConfig, ZohoClient
from zoho_dagster.client.errors import (
    ZohoAPIError,
    ZohoAuthError,
    ZohoConfigError,
    ZohoCreditsExhausted,
    ZohoError,
    ZohoPermissionError,
    ZohoTransientError,
)
from zoho_dagster.client.policy import RetryPolicy
from zoho_dagster.client.regions import REGIONS, Region
from zoho_dagster.client.timeutil import parse_datetime

__all__ = [
    "REGIONS",
    "ClientConfig",
    "Credentials",
    "Region",
    "RetryPolicy",
    "ZohoAPIError",
    "ZohoAuthError",
    "ZohoClient",
    "ZohoConfigError",
    "ZohoCreditsExhausted",
    "ZohoError",
    "ZohoPermissionError",
    "ZohoTransientError",
    "parse_datetime",
]
