"""Data centres: the table matches Zoho's hostnames, each simulated org is reachable, a wrong DC is
explained."""

from typing import Any

import pytest

from zoho_dagster.client import REGIONS, Credentials, ZohoAuthError, ZohoConfigError
from zoho_dagster.client.regions import hosts, region
from zoho_dagster_tests.client.conftest import org_client
from zoho_dagster_tests.client.helpers import shown_by_default

# Literal hostnames of docs/zoho-crm-api.md §1.9.
REFERENCE_HOSTS = {
    "US": ("https://accounts.zoho.com", "https://www.zohoapis.com"),
    "EU": ("https://accounts.zoho.eu", "https://www.zohoapis.eu"),
    "IN": ("https://accounts.zoho.in", "https://www.zohoapis.in"),
    "AU": ("https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
    "JP": ("https://accounts.zoho.jp", "https://www.zohoapis.jp"),
    "CN": ("https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
    "CA": ("https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
    "SA": ("https://accounts.zoho.sa", "https://www.zohoapis.sa"),
}


def test_region_table_matches_the_reference() -> None:
    assert {code: (r.accounts_url, r.api_domain) for code, r in REGIONS.items()} == REFERENCE_HOSTS
    assert region(None).code == "US"
    assert region("eu").code == "EU"


def test_explicit_hosts_override_the_region() -> None:
    chosen = hosts("EU", accounts_url="http://proxy:1/acc/", api_domain=None)
    assert (chosen.accounts_url, chosen.api_domain) == ("http://proxy:1/acc", "https://www.zohoapis.eu")


def test_unknown_region_names_the_variable() -> None:
    with pytest.raises(ZohoConfigError, match=r"ZOHO_CRM_REGION .*US, EU, IN, AU, JP, CN, CA, SA"):
        region("UK")


def test_every_simulated_region_is_reachable_with_overrides(simulator: Any, database_url: str) -> None:
    orgs = simulator.connection["orgs"]
    assert {org["region"] for org in orgs} == set(REFERENCE_HOSTS)
    for org in orgs:
        client = org_client(org, database_url)
        assert client.list_modules(), org["region"]
        truth = simulator.control.truth("Leads", org=org["org_id"])
        assert client.count("Leads") == len(shown_by_default(truth))  # the strict count (ref. §10)


def test_eu_client_at_the_us_accounts_server_gets_the_region_hint(simulator: Any, database_url: str) -> None:
    orgs = {org["region"]: org for org in simulator.connection["orgs"]}
    eu, us = orgs["EU"], orgs["US"]
    client = org_client(eu, database_url, accounts_url=us["accounts_url"], region="US")
    with pytest.raises(ZohoAuthError) as caught:
        client.list_modules()
    text = str(caught.value)
    assert "accounts server for US" in text and "invalid_client" in text
    assert "ZOHO_CRM_REGION" in text and "EU" in text and "ZOHO_CRM_ACCOUNTS_URL" in text


def test_credentials_need_a_grant() -> None:
    with pytest.raises(ZohoConfigError, match="ZOHO_CRM_SOID"):
        Credentials(client_id="1000.X", client_secret="s" * 20, accounts_url="https://accounts.zoho.com")
