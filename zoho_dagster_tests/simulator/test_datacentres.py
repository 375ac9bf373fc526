"""Data centres (docs/zoho-crm-api.md §1.9): one org per region, tokens only valid on their own API domain."""

from __future__ import annotations

import pytest

from zoho_dagster.simulator import RunningSimulator

from .helpers import error, get, token

REGIONS = ["US", "EU", "IN", "AU", "JP", "CN", "CA", "SA"]


def test_connection_json(sim: RunningSimulator) -> None:
    orgs = sim.connection["orgs"]
    assert [o["region"] for o in orgs] == REGIONS
    for org in orgs:
        assert set(org) == {
            "region",
            "accounts_url",
            "api_domain",
            "client_id",
            "client_secret",
            "soid",
            "refresh_token",
            "org_id",
        }
        dc = org["region"].lower()
        assert org["accounts_url"] == f"{sim.base_url}/{dc}/accounts"
        assert org["api_domain"] == f"{sim.base_url}/{dc}/api"
        assert org["soid"] == f"ZohoCRM.{org['org_id']}"
    assert sim.primary["region"] == "US"


@pytest.mark.parametrize("region", REGIONS)
def test_token_works_only_in_its_dc(sim: RunningSimulator, region: str) -> None:
    orgs = {o["region"]: o for o in sim.connection["orgs"]}
    org = orgs[region]
    tok = token(org)
    resp = get(org, "/crm/v6/Leads", tok, {"fields": "Last_Name"})
    assert resp.status_code == 200 and resp.json()["data"]
    other = orgs["EU" if region == "US" else "US"]
    wrong = get(other, "/crm/v6/Leads", tok, {"fields": "Last_Name"})
    assert wrong.status_code == 401
    assert error(wrong)["code"] == "INVALID_TOKEN"


def test_primary_org_is_big_and_others_small(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    # Contacts: the count covers what the list API shows by default, and a third of the Leads are converted.
    big = get(sim.primary, "/crm/v6/Contacts/actions/count", tok).json()["count"]
    jp = sim.connection["orgs"][4]
    small = get(jp, "/crm/v6/Contacts/actions/count", token(jp)).json()["count"]
    assert big > 2000 and 0 < small < 100
