"""Fixtures of the client tests: clients for the simulator's orgs, with fast retry timings."""

from collections.abc import Callable
from typing import Any

import pytest

from zoho_dagster.client import ClientConfig, Credentials, ZohoClient
from zoho_dagster.client.policy import FAST_TEST_POLICY, RetryPolicy
from zoho_dagster.postgres.token_cache import PostgresTokenCache

ClientFactory = Callable[..., ZohoClient]


def org_client(
    org: dict[str, Any],
    database_url: str,
    *,
    grant: str = "client_credentials",
    policy: RetryPolicy = FAST_TEST_POLICY,
    requests_per_second: float | None = 200.0,
    max_concurrency: int | None = 3,
    concurrency_share: int = 1,
    **credential_overrides: Any,
) -> ZohoClient:
    """A client of one simulated org, pointed at its hosts by the explicit overrides (as a user would)."""
    values: dict[str, Any] = {
        "client_id": org["client_id"],
        "client_secret": org["client_secret"],
        "accounts_url": org["accounts_url"],
        "region": org["region"],
    }
    if grant == "client_credentials":
        values["soid"] = org["soid"]
    else:
        values["refresh_token"] = org["refresh_token"]
    values.update(credential_overrides)
    credentials = Credentials(**values)
    token_cache = PostgresTokenCache(
        database_url, credentials.client_id, credentials.client_secret, credentials.refresh_token
    )
    return ZohoClient(
        ClientConfig(
            credentials=credentials,
            token_cache=token_cache,
            api_domain=org["api_domain"],
            requests_per_second=requests_per_second,
            max_concurrency=max_concurrency,
            concurrency_share=concurrency_share,
            policy=policy,
        )
    )


@pytest.fixture
def make_client(simulator: Any, database_url: str) -> ClientFactory:
    """``make_client(org=None, **options)``: a client of the primary org (or ``org``) on a fresh database."""

    def build(org: dict[str, Any] | None = None, **options: Any) -> ZohoClient:
        return org_client(org or simulator.primary, database_url, **options)

    return build
