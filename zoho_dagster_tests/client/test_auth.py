"""Tokens: one per (accounts server, client, org) across processes, sealed at rest, refreshed, explained."""

import json
import subprocess
import sys
import time
from typing import Any

import pytest
import sqlalchemy as sa

from zoho_dagster.client import ZohoAuthError
from zoho_dagster.client.auth import Credentials, TokenMinter
from zoho_dagster.client.policy import FAST_TEST_POLICY
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster_tests.client.conftest import ClientFactory, org_client


def test_twenty_processes_mint_one_token(simulator: Any, database_url: str, project_root: Any) -> None:
    start_at = time.time() + 4.0
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zoho_dagster_tests.client._mint_worker",
                json.dumps(simulator.primary),
                database_url,
                str(start_at),
            ],
            cwd=project_root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(20)
    ]
    outcomes = [worker.communicate(timeout=120) for worker in workers]
    assert [w.returncode for w in workers] == [0] * 20, [err[-500:] for _, err in outcomes]
    assert simulator.control.stats()["token_grants"] == 1


def test_token_is_cached_sealed_and_reused(
    simulator: Any, make_client: ClientFactory, database_url: str
) -> None:
    first = make_client()
    first.list_modules()
    token = first.tokens.token().value
    make_client().list_modules()  # a second client (another step) reuses the row
    assert simulator.control.stats()["token_grants"] == 1
    with make_engine(database_url).connect() as connection:
        rows = [
            dict(r._mapping) for r in connection.execute(sa.text("SELECT * FROM zoho_dagster.oauth_tokens"))
        ]
    assert len(rows) == 1
    dump = json.dumps(rows, default=str)
    assert token not in dump
    assert simulator.primary["client_id"] not in dump and simulator.primary["soid"] not in dump


def test_invalid_token_is_refreshed_once_and_the_call_succeeds(
    simulator: Any, make_client: ClientFactory
) -> None:
    client = make_client()
    client.list_modules()
    simulator.control.set_faults(schedule=[{"at_request": 1, "kind": "expire_token"}])
    assert client.list_fields("Leads")
    assert simulator.control.stats()["token_grants"] == 2


def test_refresh_token_grant(simulator: Any, make_client: ClientFactory) -> None:
    assert make_client(grant="refresh_token").list_modules()


@pytest.mark.parametrize(
    ("override", "code", "variable"),
    [
        ({"client_secret": "not-the-secret-0000"}, "invalid_client_secret", "ZOHO_CRM_CLIENT_SECRET"),
        ({"client_id": "1000.UNKNOWN"}, "invalid_client", "ZOHO_CRM_REGION"),
    ],
)
def test_token_refusals_name_the_fix(
    make_client: ClientFactory, override: dict[str, str], code: str, variable: str
) -> None:
    with pytest.raises(ZohoAuthError) as caught:
        make_client(**override).list_modules()
    assert caught.value.code == code and variable in str(caught.value)


def test_wrong_refresh_token_is_invalid_code(make_client: ClientFactory) -> None:
    with pytest.raises(ZohoAuthError) as caught:
        make_client(grant="refresh_token", refresh_token="1000.revoked.token.value").list_modules()
    assert caught.value.code == "invalid_code" and "ZOHO_CRM_REFRESH_TOKEN" in str(caught.value)


def test_token_throttle_waits_then_fails_clearly(simulator: Any, database_url: str) -> None:
    extra = simulator.control.add_client(scopes=["ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL"])
    org = simulator.primary
    credentials = Credentials(
        client_id=extra["client_id"],
        client_secret=extra["client_secret"],
        accounts_url=org["accounts_url"],
        refresh_token=extra["refresh_token"],
    )
    import requests

    minter = TokenMinter(credentials, FAST_TEST_POLICY, requests.Session())
    for _ in range(10):  # Zoho allows ten tokens per ten minutes per client (docs/zoho-crm-api.md §1.5)
        minter.mint()
    with pytest.raises(ZohoAuthError) as caught:
        minter.mint()
    assert caught.value.code == "Access Denied" and "10 tokens per 10 minutes" in str(caught.value)
    assert simulator.control.stats()["token_grants"] == 10


def test_client_of_another_org_is_refused(simulator: Any, database_url: str) -> None:
    orgs = {org["region"]: org for org in simulator.connection["orgs"]}
    client = org_client(orgs["US"], database_url, soid=orgs["EU"]["soid"])
    with pytest.raises(ZohoAuthError):
        client.list_modules()
